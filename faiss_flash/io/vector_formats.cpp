#include <faiss_flash/io/vector_formats.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <faiss/impl/FaissAssert.h>

#include <faiss_flash/io/idx_format.h>

namespace faiss_flash {

// The formats are little-endian; so is every machine FAISS builds for here.
static_assert(
        __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
        "vector_formats.cpp reads and writes little-endian data in place");

namespace {

struct FileCloser {
    void operator()(FILE* f) const {
        fclose(f);
    }
};
using File = std::unique_ptr<FILE, FileCloser>;

File open_file(const std::string& path, const char* mode) {
    File f(fopen(path.c_str(), mode));
    FAISS_THROW_IF_NOT_FMT(
            f,
            "cannot open %s for %s: %s",
            path.c_str(),
            mode[0] == 'r' ? "reading" : "writing",
            strerror(errno));
    return f;
}

int64_t file_size(FILE* f, const std::string& path) {
    FAISS_THROW_IF_NOT_FMT(
            fseeko(f, 0, SEEK_END) == 0, "cannot seek in %s", path.c_str());
    const int64_t size = ftello(f);
    FAISS_THROW_IF_NOT_FMT(
            size >= 0 && fseeko(f, 0, SEEK_SET) == 0,
            "cannot seek in %s",
            path.c_str());
    return size;
}

/// Bytes actually read (fewer than `bytes` at the end of the file).
size_t read_some(FILE* f, void* dst, size_t bytes) {
    return fread(dst, 1, bytes, f);
}

/// Closes f, reporting a failed final flush (disk full, ...).
void close_written(File f, const std::string& path) {
    FAISS_THROW_IF_NOT_FMT(
            fclose(f.release()) == 0,
            "cannot write %s: %s",
            path.c_str(),
            strerror(errno));
}

void write_all(FILE* f, const void* src, size_t bytes, const std::string& path) {
    FAISS_THROW_IF_NOT_FMT(
            fwrite(src, 1, bytes, f) == bytes,
            "cannot write %s: %s",
            path.c_str(),
            strerror(errno));
}

/// Throws naming the first non-finite value of x (n×d) by row and column.
void check_finite_rows(
        const std::string& path,
        int64_t n,
        int64_t d,
        const float* x) {
    for (int64_t i = 0; i < n * d; i++) {
        if (!std::isfinite(x[i])) {
            FAISS_THROW_FMT(
                    "%s: vector %" PRId64 ", component %" PRId64
                    " is %s (the input must be finite float32)",
                    path.c_str(),
                    i / d,
                    i % d,
                    std::isnan(x[i]) ? "NaN" : "Inf");
        }
    }
}

bool ends_with(const std::string& s, const char* suffix) {
    const size_t len = strlen(suffix);
    return s.size() >= len && s.compare(s.size() - len, len, suffix) == 0;
}

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicLen = 6;

// ------------------------------------------------------------------ *vecs

/** Reads a .fvecs (Component = float) or .bvecs (uint8_t) file: records of
 * an int32 dimension and that many components, all of the same dimension.
 */
template <typename Component>
FloatMatrix read_vecs(const std::string& path, const char* format) {
    File f = open_file(path, "rb");
    const int64_t size = file_size(f.get(), path);
    FAISS_THROW_IF_NOT_FMT(size > 0, "%s is empty", path.c_str());

    char head[kNpyMagicLen] = {};
    read_some(f.get(), head, sizeof(head));
    FAISS_THROW_IF_NOT_FMT(
            memcmp(head, kNpyMagic, kNpyMagicLen) != 0,
            "%s is a .npy file, not a %s file: name it *.npy",
            path.c_str(),
            format);
    fseeko(f.get(), 0, SEEK_SET);

    FloatMatrix m;
    std::vector<Component> record;
    for (int64_t i = 0;; i++) {
        int32_t d = 0;
        const size_t got = read_some(f.get(), &d, sizeof(d));
        if (got == 0 && i > 0) {
            break;
        }
        FAISS_THROW_IF_NOT_FMT(
                got == sizeof(d),
                "%s is truncated: record %" PRId64
                " has %zd of the 4 bytes of its dimension",
                path.c_str(),
                i,
                got);
        const int64_t record_bytes = 4 + int64_t(d) * sizeof(Component);
        if (i == 0) {
            // The first dimension plays the role of a magic number.
            FAISS_THROW_IF_NOT_FMT(
                    d > 0 && record_bytes <= size,
                    "%s is not a %s file: its first record announces "
                    "dimension %d, which does not fit in its %" PRId64
                    " bytes",
                    path.c_str(),
                    format,
                    d,
                    size);
            m.d = d;
            m.data.reserve(size / record_bytes * d);
            record.resize(d);
        }
        FAISS_THROW_IF_NOT_FMT(
                d == m.d,
                "%s: record %" PRId64 " has dimension %d, record 0 has %" PRId64
                " (all vectors of a %s file have the same dimension)",
                path.c_str(),
                i,
                d,
                m.d,
                format);
        const size_t want = sizeof(Component) * d;
        const size_t got_components = read_some(f.get(), record.data(), want);
        FAISS_THROW_IF_NOT_FMT(
                got_components == want,
                "%s is truncated: record %" PRId64
                " has %zd of its %zd bytes of components",
                path.c_str(),
                i,
                got_components,
                want);
        m.data.insert(m.data.end(), record.begin(), record.end());
        m.n++;
    }
    check_finite_rows(path, m.n, m.d, m.data.data());
    return m;
}

// -------------------------------------------------------------------- npy

/// The parsed header of a .npy file.
struct NpyHeader {
    std::string descr;          ///< dtype, e.g. "<f4"
    bool fortran_order = false;
    std::vector<int64_t> shape;
    int64_t data_offset = 0;    ///< bytes before the array data
};

/// The value of 'key' in the header's dict literal, up to its delimiter.
std::string npy_field(
        const std::string& header,
        const char* key,
        const std::string& path) {
    const std::string quoted = std::string("'") + key + "'";
    size_t pos = header.find(quoted);
    FAISS_THROW_IF_NOT_FMT(
            pos != std::string::npos,
            "%s: the .npy header has no %s field",
            path.c_str(),
            quoted.c_str());
    pos = header.find(':', pos + quoted.size());
    FAISS_THROW_IF_NOT_FMT(
            pos != std::string::npos,
            "%s: malformed .npy header",
            path.c_str());
    pos = header.find_first_not_of(' ', pos + 1);
    FAISS_THROW_IF_NOT_FMT(
            pos != std::string::npos,
            "%s: malformed .npy header",
            path.c_str());
    size_t end;
    if (header[pos] == '\'') { // a string
        pos++;
        end = header.find('\'', pos);
    } else if (header[pos] == '(') { // a tuple
        pos++;
        end = header.find(')', pos);
    } else { // True / False
        end = header.find_first_of(",}", pos);
    }
    FAISS_THROW_IF_NOT_FMT(
            end != std::string::npos,
            "%s: malformed .npy header",
            path.c_str());
    return header.substr(pos, end - pos);
}

NpyHeader read_npy_header(FILE* f, const std::string& path) {
    unsigned char pre[kNpyMagicLen + 2];
    const size_t got = read_some(f, pre, sizeof(pre));
    FAISS_THROW_IF_NOT_FMT(
            got == sizeof(pre) && memcmp(pre, kNpyMagic, kNpyMagicLen) == 0,
            "%s is not a .npy file (it does not start with \\x93NUMPY)",
            path.c_str());
    const int major = pre[kNpyMagicLen];
    FAISS_THROW_IF_NOT_FMT(
            major >= 1 && major <= 3,
            "%s: unsupported .npy format version %d",
            path.c_str(),
            major);
    uint32_t header_len = 0;
    const size_t len_bytes = major == 1 ? 2 : 4;
    FAISS_THROW_IF_NOT_FMT(
            read_some(f, &header_len, len_bytes) == len_bytes,
            "%s is truncated inside its .npy header",
            path.c_str());
    std::string header(header_len, '\0');
    FAISS_THROW_IF_NOT_FMT(
            read_some(f, header.data(), header_len) == header_len,
            "%s is truncated inside its .npy header",
            path.c_str());

    NpyHeader h;
    h.data_offset = sizeof(pre) + len_bytes + header_len;
    h.descr = npy_field(header, "descr", path);
    const std::string order = npy_field(header, "fortran_order", path);
    FAISS_THROW_IF_NOT_FMT(
            order == "False" || order == "True",
            "%s: malformed .npy header (fortran_order: %s)",
            path.c_str(),
            order.c_str());
    h.fortran_order = order == "True";
    const std::string shape = npy_field(header, "shape", path);
    for (size_t pos = 0; pos < shape.size();) {
        const size_t end = std::min(shape.find(',', pos), shape.size());
        const std::string item = shape.substr(pos, end - pos);
        if (item.find_first_not_of(' ') != std::string::npos) {
            char* stop = nullptr;
            const long long v = strtoll(item.c_str(), &stop, 10);
            FAISS_THROW_IF_NOT_FMT(
                    v >= 0 && *stop == '\0',
                    "%s: malformed .npy shape (%s)",
                    path.c_str(),
                    shape.c_str());
            h.shape.push_back(v);
        }
        pos = end + 1;
    }
    return h;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); i++) {
        s += std::to_string(shape[i]);
        s += i + 1 < shape.size() || shape.size() == 1 ? "," : "";
        s += i + 1 < shape.size() ? " " : "";
    }
    return s + ")";
}

/// Checks the header's order and that the data part is exactly `count`
/// values of `itemsize` bytes.
void check_npy_payload(
        const NpyHeader& h,
        FILE* f,
        int64_t count,
        int64_t itemsize,
        const std::string& path) {
    FAISS_THROW_IF_NOT_FMT(
            !h.fortran_order || h.shape.size() < 2,
            "%s: the array is in Fortran order; save a C-ordered one "
            "(numpy.ascontiguousarray)",
            path.c_str());
    const int64_t data_bytes = file_size(f, path) - h.data_offset;
    FAISS_THROW_IF_NOT_FMT(
            data_bytes >= count * itemsize,
            "%s is truncated: shape %s of %s needs %" PRId64
            " bytes of data, the file has %" PRId64,
            path.c_str(),
            shape_string(h.shape).c_str(),
            h.descr.c_str(),
            count * itemsize,
            data_bytes);
    FAISS_THROW_IF_NOT_FMT(
            data_bytes == count * itemsize,
            "%s: %" PRId64 " bytes follow the data of shape %s",
            path.c_str(),
            data_bytes - count * itemsize,
            shape_string(h.shape).c_str());
    fseeko(f, h.data_offset, SEEK_SET);
}

/// Reads count values of type T and converts them to float, in blocks.
template <typename T>
void read_converted(FILE* f, int64_t count, float* dst, const std::string& path) {
    std::vector<T> block(std::min<int64_t>(count, 1 << 16));
    for (int64_t done = 0; done < count;) {
        const size_t todo = std::min<int64_t>(block.size(), count - done);
        FAISS_THROW_IF_NOT_FMT(
                read_some(f, block.data(), todo * sizeof(T)) ==
                        todo * sizeof(T),
                "cannot read %s",
                path.c_str());
        for (size_t i = 0; i < todo; i++) {
            dst[done + i] = static_cast<float>(block[i]);
        }
        done += todo;
    }
}

void write_npy_array(
        const std::string& path,
        const char* descr,
        const std::vector<int64_t>& shape,
        const void* data,
        size_t bytes) {
    std::string header = std::string("{'descr': '") + descr +
            "', 'fortran_order': False, 'shape': " + shape_string(shape) +
            ", }";
    // numpy's padding: magic, version, length and header fill a multiple
    // of 64 bytes, the header ending with '\n'.
    const size_t prefix = kNpyMagicLen + 2 + 2;
    header.append(63 - (prefix + header.size()) % 64, ' ');
    header += '\n';
    const uint16_t header_len = header.size();
    File f = open_file(path, "wb");
    write_all(f.get(), kNpyMagic, kNpyMagicLen, path);
    const unsigned char version[2] = {1, 0};
    write_all(f.get(), version, 2, path);
    write_all(f.get(), &header_len, 2, path);
    write_all(f.get(), header.data(), header.size(), path);
    write_all(f.get(), data, bytes, path);
    close_written(std::move(f), path);
}

} // namespace

FloatMatrix read_fvecs(const std::string& path) {
    return read_vecs<float>(path, ".fvecs");
}

FloatMatrix read_bvecs(const std::string& path) {
    return read_vecs<uint8_t>(path, ".bvecs");
}

FloatMatrix read_npy(const std::string& path) {
    File f = open_file(path, "rb");
    const NpyHeader h = read_npy_header(f.get(), path);
    FAISS_THROW_IF_NOT_FMT(
            h.shape.size() == 2,
            "%s: expected a 2-D array of shape (n, d), got shape %s",
            path.c_str(),
            shape_string(h.shape).c_str());
    FloatMatrix m;
    m.n = h.shape[0];
    m.d = h.shape[1];
    FAISS_THROW_IF_NOT_FMT(
            m.d > 0 && m.n <= INT64_MAX / 8 / m.d,
            "%s: unsupported shape %s",
            path.c_str(),
            shape_string(h.shape).c_str());
    const int64_t count = m.n * m.d;
    if (h.descr == "<f4") {
        check_npy_payload(h, f.get(), count, 4, path);
        m.data.resize(count);
        read_converted<float>(f.get(), count, m.data.data(), path);
    } else if (h.descr == "<f8") {
        check_npy_payload(h, f.get(), count, 8, path);
        m.data.resize(count);
        read_converted<double>(f.get(), count, m.data.data(), path);
    } else if (h.descr == "|u1" || h.descr == "<u1") {
        check_npy_payload(h, f.get(), count, 1, path);
        m.data.resize(count);
        read_converted<uint8_t>(f.get(), count, m.data.data(), path);
    } else {
        FAISS_THROW_FMT(
                "%s: unsupported dtype '%s'; expected float32 ('<f4'), "
                "float64 ('<f8') or uint8 ('|u1')",
                path.c_str(),
                h.descr.c_str());
    }
    check_finite_rows(path, m.n, m.d, m.data.data());
    return m;
}

std::vector<int64_t> read_npy_labels(const std::string& path) {
    File f = open_file(path, "rb");
    const NpyHeader h = read_npy_header(f.get(), path);
    FAISS_THROW_IF_NOT_FMT(
            h.shape.size() == 1 && h.descr == "<i8" &&
                    h.shape[0] <= INT64_MAX / 8,
            "%s: expected a 1-D int64 ('<i8') array, got shape %s of '%s'",
            path.c_str(),
            shape_string(h.shape).c_str(),
            h.descr.c_str());
    check_npy_payload(h, f.get(), h.shape[0], 8, path);
    std::vector<int64_t> labels(h.shape[0]);
    FAISS_THROW_IF_NOT_FMT(
            read_some(f.get(), labels.data(), labels.size() * 8) ==
                    labels.size() * 8,
            "cannot read %s",
            path.c_str());
    return labels;
}

FloatMatrix read_vectors(const std::string& path) {
    if (ends_with(path, ".fvecs")) {
        return read_fvecs(path);
    }
    if (ends_with(path, ".bvecs")) {
        return read_bvecs(path);
    }
    if (ends_with(path, ".npy")) {
        return read_npy(path);
    }
    if (ends_with(path, "idx3-ubyte") || ends_with(path, "idx3-ubyte.gz")) {
        IdxImages img = read_idx_images(path);
        return FloatMatrix{img.n, img.d, std::move(img.data)};
    }
    FAISS_THROW_FMT(
            "%s: unknown vector file format; the names understood are "
            "*.fvecs, *.bvecs, *.npy, *idx3-ubyte and *idx3-ubyte.gz",
            path.c_str());
}

void write_fvecs(const std::string& path, int64_t n, int64_t d, const float* x) {
    FAISS_THROW_IF_NOT_FMT(
            d > 0 && d <= INT32_MAX,
            "%s: cannot write dimension %" PRId64 " as .fvecs",
            path.c_str(),
            d);
    File f = open_file(path, "wb");
    const int32_t d32 = d;
    for (int64_t i = 0; i < n; i++) {
        write_all(f.get(), &d32, sizeof(d32), path);
        write_all(f.get(), x + i * d, sizeof(float) * d, path);
    }
    close_written(std::move(f), path);
}

void write_npy(const std::string& path, int64_t n, int64_t d, const float* x) {
    write_npy_array(path, "<f4", {n, d}, x, sizeof(float) * n * d);
}

void write_npy_labels(const std::string& path, int64_t n, const int64_t* labels) {
    write_npy_array(path, "<i8", {n}, labels, sizeof(int64_t) * n);
}

void check_vector_output_name(const std::string& path) {
    FAISS_THROW_IF_NOT_FMT(
            ends_with(path, ".fvecs") || ends_with(path, ".npy"),
            "%s: unknown output format; name the file *.npy or *.fvecs",
            path.c_str());
}

void write_vectors(const std::string& path, int64_t n, int64_t d, const float* x) {
    check_vector_output_name(path);
    if (ends_with(path, ".fvecs")) {
        write_fvecs(path, n, d, x);
    } else {
        write_npy(path, n, d, x);
    }
}

} // namespace faiss_flash
