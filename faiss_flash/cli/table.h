// Aligned text tables for the summaries the subcommands print.

#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace faiss_flash {
namespace cli {

/// printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// A table of text cells, columns as wide as their widest cell.
class Table {
   public:
    enum class Layout {
        Columns,    ///< first column left-aligned, the others right-aligned
        KeyValue,   ///< every column left-aligned
    };

    explicit Table(std::vector<std::string> header, Layout layout = Layout::Columns);

    /// A row of exactly as many cells as the header.
    void add_row(std::vector<std::string> cells);

    /// Header, a rule, then the rows.
    void print(FILE* out) const;

   private:
    Layout layout_;
    std::vector<std::vector<std::string>> rows_; ///< rows_[0] is the header
};

} // namespace cli
} // namespace faiss_flash
