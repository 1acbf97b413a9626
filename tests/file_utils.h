// Helpers of the file-format and command-line tests: a scratch directory,
// raw file contents, and running a shell command.

#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace faiss_flash {
namespace testing {

/// A fresh directory, removed with its content at the end of the scope.
class ScratchDir {
   public:
    ScratchDir() {
        std::string tmpl =
                (std::filesystem::temp_directory_path() / "faiss_flash_XXXXXX")
                        .string();
        if (!mkdtemp(tmpl.data())) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    /// The path of `name` inside the directory.
    std::string operator/(const std::string& name) const {
        return (path_ / name).string();
    }

   private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// The bytes of a trivially copyable value, as they are in memory.
template <typename T>
std::string bytes_of(const T& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(T));
}

/// The bytes of n values.
template <typename T>
std::string bytes_of(const T* v, size_t n) {
    return std::string(reinterpret_cast<const char*>(v), sizeof(T) * n);
}

/// What a shell command did.
struct CommandResult {
    bool exited = false; ///< false when killed by a signal (a crash)
    int status = -1;     ///< exit status when exited
    std::string out;     ///< its stdout
    std::string err;     ///< its stderr
};

/// Runs `command` with sh, capturing stdout and stderr in `scratch`.
inline CommandResult run_command(const std::string& command, const ScratchDir& scratch) {
    const std::string out = scratch / "command.out";
    const std::string err = scratch / "command.err";
    const int raw = std::system((command + " >" + out + " 2>" + err).c_str());
    CommandResult r;
    r.exited = raw != -1 && WIFEXITED(raw);
    r.status = r.exited ? WEXITSTATUS(raw) : -1;
    r.out = read_bytes(out);
    r.err = read_bytes(err);
    return r;
}

/// Whether Debian's python3 can import all these modules (space separated).
inline bool python_has(const std::string& modules) {
    std::string imports;
    std::stringstream ss(modules);
    for (std::string m; ss >> m;) {
        imports += "import " + m + "; ";
    }
    const std::string cmd =
            "/usr/bin/python3 -c '" + imports + "' >/dev/null 2>&1";
    const int raw = std::system(cmd.c_str());
    return raw != -1 && WIFEXITED(raw) && WEXITSTATUS(raw) == 0;
}

} // namespace testing
} // namespace faiss_flash
