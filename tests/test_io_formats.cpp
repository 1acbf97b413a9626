// The vector file formats: round trips, numpy's own files, and every kind
// of bad file giving a FaissException that names the file and the problem.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <faiss/impl/FaissException.h>

#include <faiss_flash/io/vector_formats.h>

#include "file_utils.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

/// The message of the FaissException thrown by f, or "" if none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        return e.msg;
    }
    return "";
}

/// Expects f to throw a FaissException naming `path` and containing `problem`.
#define EXPECT_FILE_ERROR(f, path, problem)                          \
    do {                                                             \
        const std::string msg = error_of([&] { f; });                \
        EXPECT_NE(msg.find(path), std::string::npos) << msg;         \
        EXPECT_NE(msg.find(problem), std::string::npos) << msg;      \
    } while (0)

/// A .npy file with any header content and payload.
std::string npy_bytes(
        const std::string& descr,
        const std::string& shape,
        const std::string& payload,
        const std::string& fortran = "False") {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': " +
            fortran + ", 'shape': " + shape + ", }";
    header.append(63 - (10 + header.size()) % 64, ' ');
    header += '\n';
    const uint16_t len = header.size();
    return std::string("\x93NUMPY\x01\x00", 8) + bytes_of(len) + header + payload;
}

/// .fvecs records of dimension d (or the given per-record dimensions).
std::string fvecs_bytes(const std::vector<std::vector<float>>& rows) {
    std::string s;
    for (const auto& r : rows) {
        s += bytes_of(int32_t(r.size())) + bytes_of(r.data(), r.size());
    }
    return s;
}

TEST(VectorFormats, FvecsAndNpyRoundTrip) {
    ScratchDir dir;
    const int64_t n = 37, d = 13;
    const std::vector<float> x = randn(n * d, fresh_seed());
    for (const char* name : {"x.fvecs", "x.npy"}) {
        SCOPED_TRACE(name);
        write_vectors(dir / name, n, d, x.data());
        const FloatMatrix m = read_vectors(dir / name);
        EXPECT_EQ(m.n, n);
        EXPECT_EQ(m.d, d);
        EXPECT_EQ(m.data, x);
    }
    // .fvecs is 4 + 4d bytes a record; .npy headers are padded to 64 bytes
    EXPECT_EQ(read_bytes(dir / "x.fvecs").size(), size_t(n * (4 + 4 * d)));
    EXPECT_EQ(read_bytes(dir / "x.npy").size(), size_t(128 + n * d * 4));
}

TEST(VectorFormats, LabelsRoundTrip) {
    ScratchDir dir;
    const std::vector<int64_t> labels = {0, 5, -1, int64_t(1) << 40, 3};
    write_npy_labels(dir / "l.npy", labels.size(), labels.data());
    EXPECT_EQ(read_npy_labels(dir / "l.npy"), labels);
    EXPECT_FILE_ERROR(read_npy(dir / "l.npy"), "l.npy", "expected a 2-D array");
}

TEST(VectorFormats, BvecsAreConvertedToFloat) {
    ScratchDir dir;
    const uint8_t row0[3] = {0, 128, 255}, row1[3] = {1, 2, 3};
    write_bytes(dir / "x.bvecs", bytes_of(int32_t(3)) + bytes_of(row0, 3) +
                        bytes_of(int32_t(3)) + bytes_of(row1, 3));
    const FloatMatrix m = read_vectors(dir / "x.bvecs");
    EXPECT_EQ(m.n, 2);
    EXPECT_EQ(m.d, 3);
    EXPECT_EQ(m.data, std::vector<float>({0, 128, 255, 1, 2, 3}));
}

TEST(VectorFormats, NpyFloat64AndUint8AreConverted) {
    ScratchDir dir;
    const double f64[4] = {0.1, -2.5, 1e10, 3};
    write_bytes(dir / "f8.npy", npy_bytes("<f8", "(2, 2)", bytes_of(f64, 4)));
    FloatMatrix m = read_npy(dir / "f8.npy");
    EXPECT_EQ(m.data, std::vector<float>({0.1f, -2.5f, 1e10f, 3.f}));
    const uint8_t u8[6] = {0, 1, 2, 253, 254, 255};
    write_bytes(dir / "u1.npy", npy_bytes("|u1", "(3, 2)", bytes_of(u8, 6)));
    m = read_npy(dir / "u1.npy");
    EXPECT_EQ(m.n, 3);
    EXPECT_EQ(m.d, 2);
    EXPECT_EQ(m.data, std::vector<float>({0, 1, 2, 253, 254, 255}));
}

TEST(VectorFormats, FvecsErrors) {
    ScratchDir dir;
    const std::string path = dir / "bad.fvecs";
    auto read = [&] { read_fvecs(path); };

    write_bytes(path, "");
    EXPECT_FILE_ERROR(read(), path, "is empty");
    // wrong magic: a negative / absurd first dimension
    write_bytes(path, bytes_of(int32_t(-3)) + std::string(12, '\0'));
    EXPECT_FILE_ERROR(read(), path, "is not a .fvecs file");
    write_bytes(path, bytes_of(int32_t(1000)) + std::string(12, '\0'));
    EXPECT_FILE_ERROR(read(), path, "is not a .fvecs file");
    write_bytes(path, npy_bytes("<f4", "(1, 1)", std::string(4, '\0')));
    EXPECT_FILE_ERROR(read(), path, "is a .npy file");
    // truncated inside the components, then inside a dimension field
    std::string good = fvecs_bytes({{1, 2, 3}, {4, 5, 6}});
    write_bytes(path, good.substr(0, good.size() - 2));
    EXPECT_FILE_ERROR(read(), path, "is truncated: record 1 has 10 of its 12 bytes");
    write_bytes(path, good + std::string("\x03\x00", 2));
    EXPECT_FILE_ERROR(read(), path, "is truncated: record 2 has 2 of the 4 bytes");
    // the dimension changes between records
    write_bytes(path, fvecs_bytes({{1, 2, 3}, {4, 5, 6}, {7, 8}}));
    EXPECT_FILE_ERROR(read(), path, "record 2 has dimension 2, record 0 has 3");
    // non-finite values, with their position
    write_bytes(path, fvecs_bytes({{1, 2, 3}, {4, NAN, 6}}));
    EXPECT_FILE_ERROR(read(), path, "vector 1, component 1 is NaN");
    write_bytes(path, fvecs_bytes({{1, 2, -INFINITY}}));
    EXPECT_FILE_ERROR(read(), path, "vector 0, component 2 is Inf");
}

TEST(VectorFormats, BvecsErrors) {
    ScratchDir dir;
    const std::string path = dir / "bad.bvecs";
    write_bytes(path, bytes_of(int32_t(0)) + "abcd");
    EXPECT_FILE_ERROR(read_bvecs(path), path, "is not a .bvecs file");
    write_bytes(path, bytes_of(int32_t(4)) + "abcd" + bytes_of(int32_t(4)) + "ab");
    EXPECT_FILE_ERROR(read_bvecs(path), path, "is truncated: record 1");
    write_bytes(path, bytes_of(int32_t(4)) + "abcd" + bytes_of(int32_t(2)) + "ab");
    EXPECT_FILE_ERROR(read_bvecs(path), path, "record 1 has dimension 2");
}

TEST(VectorFormats, NpyErrors) {
    ScratchDir dir;
    const std::string path = dir / "bad.npy";
    auto read = [&] { read_npy(path); };
    const float f4[6] = {1, 2, 3, 4, 5, 6};

    write_bytes(path, fvecs_bytes({{1, 2}}));
    EXPECT_FILE_ERROR(read(), path, "is not a .npy file");
    write_bytes(path, std::string("\x93NUMPY\x01\x00\x50", 9));
    EXPECT_FILE_ERROR(read(), path, "truncated inside its .npy header");
    write_bytes(path, npy_bytes("<f4", "(2, 3)", bytes_of(f4, 5)));
    EXPECT_FILE_ERROR(read(), path, "is truncated: shape (2, 3) of <f4 needs 24 bytes");
    write_bytes(path, npy_bytes("<f4", "(2, 3)", bytes_of(f4, 6) + "xyz"));
    EXPECT_FILE_ERROR(read(), path, "3 bytes follow the data");
    write_bytes(path, npy_bytes("<i4", "(2, 3)", bytes_of(f4, 6)));
    EXPECT_FILE_ERROR(read(), path, "unsupported dtype '<i4'");
    write_bytes(path, npy_bytes(">f4", "(2, 3)", bytes_of(f4, 6)));
    EXPECT_FILE_ERROR(read(), path, "unsupported dtype '>f4'");
    write_bytes(path, npy_bytes("<f4", "(6,)", bytes_of(f4, 6)));
    EXPECT_FILE_ERROR(read(), path, "expected a 2-D array of shape (n, d), got shape (6,)");
    write_bytes(path, npy_bytes("<f4", "(1, 2, 3)", bytes_of(f4, 6)));
    EXPECT_FILE_ERROR(read(), path, "got shape (1, 2, 3)");
    write_bytes(path, npy_bytes("<f4", "(2, 3)", bytes_of(f4, 6), "True"));
    EXPECT_FILE_ERROR(read(), path, "Fortran order");
    write_bytes(path, npy_bytes("<f4", "(2, 0)", ""));
    EXPECT_FILE_ERROR(read(), path, "unsupported shape (2, 0)");
    const float with_nan[2] = {1, NAN};
    write_bytes(path, npy_bytes("<f4", "(1, 2)", bytes_of(with_nan, 2)));
    EXPECT_FILE_ERROR(read(), path, "vector 0, component 1 is NaN");
    // finite in float64, infinite once converted
    const double huge[2] = {1, 1e300};
    write_bytes(path, npy_bytes("<f8", "(2, 1)", bytes_of(huge, 2)));
    EXPECT_FILE_ERROR(read(), path, "vector 1, component 0 is Inf");
}

TEST(VectorFormats, FileErrors) {
    ScratchDir dir;
    const float x[2] = {1, 2};
    EXPECT_FILE_ERROR(read_vectors(dir / "missing.npy"), "missing.npy", "cannot open");
    EXPECT_FILE_ERROR(read_vectors(dir / "x.csv"), "x.csv", "unknown vector file format");
    EXPECT_FILE_ERROR(write_vectors(dir / "x.txt", 1, 2, x), "x.txt", "unknown output format");
    EXPECT_FILE_ERROR(write_npy(dir / "no/such/dir.npy", 1, 2, x), "dir.npy",
                      "cannot open");
    EXPECT_FILE_ERROR(read_npy_labels(dir / "missing.npy"), "missing.npy", "cannot open");
}

// numpy itself reads what we write and writes what we read.
TEST(VectorFormats, NumpyInterop) {
    if (!python_has("numpy")) {
        GTEST_SKIP() << "/usr/bin/python3 has no numpy";
    }
    ScratchDir dir;
    const std::vector<float> x = {1.5f, -2, 3, 4, 5, 6};
    const std::vector<int64_t> labels = {3, 1, 4};
    write_npy(dir / "ours.npy", 3, 2, x.data());
    write_npy_labels(dir / "labels.npy", 3, labels.data());
    const std::string script =
            "import numpy as np\n"
            "x = np.load('" + dir / "ours.npy" + "')\n"
            "assert x.dtype == np.float32 and x.shape == (3, 2), x\n"
            "assert (x.ravel() == [1.5, -2, 3, 4, 5, 6]).all(), x\n"
            "l = np.load('" + dir / "labels.npy" + "')\n"
            "assert l.dtype == np.int64 and list(l) == [3, 1, 4], l\n"
            "y = np.arange(12).reshape(4, 3)\n"
            "np.save('" + dir / "f4.npy" + "', y.astype(np.float32))\n"
            "np.save('" + dir / "f8.npy" + "', y.astype(np.float64))\n"
            "np.save('" + dir / "u1.npy" + "', y.astype(np.uint8))\n"
            "np.save('" + dir / "fortran.npy" + "', np.asfortranarray(y.astype(np.float32)))\n"
            "np.save('" + dir / "t.npy" + "', y.astype(np.float32).T)\n";
    write_bytes(dir / "interop.py", script);
    const CommandResult r = run_command("/usr/bin/python3 " + dir / "interop.py", dir);
    ASSERT_EQ(r.status, 0) << r.err;

    std::vector<float> y(12);
    for (int i = 0; i < 12; i++) {
        y[i] = i;
    }
    for (const char* name : {"f4.npy", "f8.npy", "u1.npy"}) {
        SCOPED_TRACE(name);
        const FloatMatrix m = read_npy(dir / name);
        EXPECT_EQ(m.n, 4);
        EXPECT_EQ(m.d, 3);
        EXPECT_EQ(m.data, y);
    }
    // a Fortran-ordered 2-D array is refused, not misread
    EXPECT_FILE_ERROR(read_npy(dir / "fortran.npy"), "fortran.npy", "Fortran order");
    EXPECT_FILE_ERROR(read_npy(dir / "t.npy"), "t.npy", "Fortran order");
}

} // namespace
