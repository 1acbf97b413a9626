#include "buffer_view.h"

#include <cstring>

namespace faiss_flash {
namespace python {

namespace {

const char* type_name(ElementType type) {
    switch (type) {
        case ElementType::Float32:
            return "float32";
        case ElementType::Float64:
            return "float64";
        case ElementType::Int64:
            return "int64";
        case ElementType::UInt8:
            return "uint8";
    }
    return "?";
}

/// Whether a struct-module format string (numpy's buffer format) denotes
/// one native little-endian element of `type`.
bool format_matches(const char* format, Py_ssize_t itemsize, ElementType type) {
    if (format[0] == '@' || format[0] == '=' || format[0] == '<') {
        format++;
    }
    if (format[0] == '\0' || format[1] != '\0') {
        return false;
    }
    switch (type) {
        case ElementType::Float32:
            return format[0] == 'f';
        case ElementType::Float64:
            return format[0] == 'd';
        case ElementType::Int64:
            return itemsize == 8 && std::strchr("lq", format[0]);
        case ElementType::UInt8:
            return format[0] == 'B';
    }
    return false;
}

} // namespace

BufferView::~BufferView() {
    if (held_) {
        PyBuffer_Release(&view_);
    }
}

bool BufferView::acquire(
        PyObject* obj,
        ElementType type,
        bool writable,
        bool optional,
        const char* name) {
    if (obj == Py_None && optional) {
        return true;
    }
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
    if (writable) {
        flags |= PyBUF_WRITABLE;
    }
    if (PyObject_GetBuffer(obj, &view_, flags) != 0) {
        // Keep Python's reason (not contiguous, read-only, no buffer) but
        // say which argument and what was expected.
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        PyErr_Format(
                PyExc_ValueError,
                "%s: expected a C-contiguous%s %s array (%S)",
                name,
                writable ? " writable" : "",
                type_name(type),
                exc_value ? exc_value : Py_None);
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        return false;
    }
    held_ = true;
    if (!format_matches(view_.format, view_.itemsize, type)) {
        PyErr_Format(
                PyExc_TypeError,
                "%s: expected a %s array, got buffer format '%s'",
                name,
                type_name(type),
                view_.format);
        return false;
    }
    return true;
}

} // namespace python
} // namespace faiss_flash
