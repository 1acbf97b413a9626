#include <faiss_flash/io/idx_format.h>

#include <memory>

#include <zlib.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {

namespace {

struct GzCloser {
    void operator()(gzFile_s* f) const {
        gzclose(f);
    }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

/// gzread reads plain files too, so one path serves .gz and raw idx files.
GzFile open_idx(const std::string& path) {
    GzFile f(gzopen(path.c_str(), "rb"));
    FAISS_THROW_IF_NOT_FMT(f, "cannot open idx file %s", path.c_str());
    return f;
}

void read_exact(gzFile_s* f, void* dst, size_t bytes, const std::string& path) {
    size_t done = 0;
    while (done < bytes) {
        const unsigned chunk = unsigned(std::min<size_t>(bytes - done, 1u << 30));
        int got = gzread(f, static_cast<char*>(dst) + done, chunk);
        FAISS_THROW_IF_NOT_FMT(
                got > 0,
                "idx file %s is truncated: expected %zd bytes of payload, got %zd",
                path.c_str(),
                bytes,
                done);
        done += got;
    }
}

uint32_t read_be32(gzFile_s* f, const std::string& path) {
    unsigned char b[4];
    read_exact(f, b, 4, path);
    return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 |
            b[3];
}

} // namespace

IdxImages read_idx_images(const std::string& path) {
    GzFile f = open_idx(path);
    const uint32_t magic = read_be32(f.get(), path);
    FAISS_THROW_IF_NOT_FMT(
            magic == 0x803,
            "%s is not an idx3-ubyte image file (magic 0x%x, expected 0x803)",
            path.c_str(),
            magic);
    IdxImages img;
    img.n = read_be32(f.get(), path);
    img.d = int64_t(read_be32(f.get(), path)) * read_be32(f.get(), path);
    std::vector<unsigned char> pixels(img.n * img.d);
    read_exact(f.get(), pixels.data(), pixels.size(), path);
    img.data.assign(pixels.begin(), pixels.end());
    return img;
}

std::vector<int> read_idx_labels(const std::string& path) {
    GzFile f = open_idx(path);
    const uint32_t magic = read_be32(f.get(), path);
    FAISS_THROW_IF_NOT_FMT(
            magic == 0x801,
            "%s is not an idx1-ubyte label file (magic 0x%x, expected 0x801)",
            path.c_str(),
            magic);
    std::vector<unsigned char> raw(read_be32(f.get(), path));
    read_exact(f.get(), raw.data(), raw.size(), path);
    return std::vector<int>(raw.begin(), raw.end());
}

} // namespace faiss_flash
