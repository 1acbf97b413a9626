# get_dataset_2 of FAISS's tests/common_faiss_tests.py (MIT license,
# Copyright (c) Facebook, Inc. and its affiliates), which FAISS's clustering
# tests use.

import numpy as np


def get_dataset_2(d, nt, nb, nq):
    """A dataset that is not completely gaussian i.i.d."""
    rs = np.random.RandomState(1338)
    d1 = 10  # intrinsic dimension (more or less)
    n = nb + nt + nq
    # Here the data is in a 10-dim space, rotated to d
    x = rs.normal(size=(n, d1))
    x = np.dot(x, rs.rand(d1, d))
    # now we have a pseudo-gaussian in d
    x = x * (rs.rand(d) * 4 + 0.1)
    x = np.sin(x)
    x = x.astype('float32')
    return x[:nt], x[nt:nt + nb], x[nt + nb:]
