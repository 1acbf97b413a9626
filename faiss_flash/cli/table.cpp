#include <faiss_flash/cli/table.h>

#include <algorithm>
#include <cstdarg>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace cli {

std::string format(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list again;
    va_copy(again, args);
    const int size = vsnprintf(nullptr, 0, fmt, args);
    va_end(args);
    std::string s(size, '\0');
    vsnprintf(s.data(), size + 1, fmt, again);
    va_end(again);
    return s;
}

Table::Table(std::vector<std::string> header, Layout layout) : layout_(layout) {
    rows_.push_back(std::move(header));
}

void Table::add_row(std::vector<std::string> cells) {
    FAISS_THROW_IF_NOT_FMT(
            cells.size() == rows_[0].size(),
            "table row of %zd cells, the header has %zd",
            cells.size(),
            rows_[0].size());
    rows_.push_back(std::move(cells));
}

void Table::print(FILE* out) const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_) {
        for (size_t c = 0; c < row.size(); c++) {
            width[c] = std::max(width[c], row[c].size());
        }
    }
    auto print_row = [&](const std::vector<std::string>& row) {
        for (size_t c = 0; c < row.size(); c++) {
            const bool left = c == 0 || layout_ == Layout::KeyValue;
            const int w = c + 1 == row.size() && left ? 0 : int(width[c]);
            fprintf(out, "%s%*s", c == 0 ? "" : "  ", left ? -w : w, row[c].c_str());
        }
        fprintf(out, "\n");
    };
    print_row(rows_[0]);
    size_t total = 0;
    for (size_t w : width) {
        total += w + 2;
    }
    fprintf(out, "%s\n", std::string(total - 2, '-').c_str());
    for (size_t r = 1; r < rows_.size(); r++) {
        print_row(rows_[r]);
    }
    fflush(out);
}

} // namespace cli
} // namespace faiss_flash
