// Typed views of C-contiguous Python buffers (numpy arrays, bytes) for the
// faiss-free module: what faiss.swig_ptr gives the faiss-facing module, but
// checked (element type, contiguity, writability) and without faiss.

#pragma once

#include <Python.h>

namespace faiss_flash {
namespace python {

enum class ElementType { Float32, Float64, Int64, UInt8 };

/// A buffer held for the duration of one wrapped call (a local of the SWIG
/// `in` typemap), released on destruction.
class BufferView {
   public:
    BufferView() = default;
    BufferView(const BufferView&) = delete;
    BufferView& operator=(const BufferView&) = delete;
    ~BufferView();

    /** Views `obj` as a C-contiguous buffer of `type` (writable if asked).
     * None gives a null pointer when `optional`. On failure returns false
     * with a Python exception naming `name` set.
     */
    bool acquire(PyObject* obj,
                 ElementType type,
                 bool writable,
                 bool optional,
                 const char* name);

    void* data() const {
        return held_ ? view_.buf : nullptr;
    }

   private:
    Py_buffer view_{};
    bool held_ = false;
};

} // namespace python
} // namespace faiss_flash
