#include "cli/table.h"

#include <algorithm>
#include <utility>

namespace ablate::cli {

Table::Table(std::vector<std::string> headers)
    : headers_(std::move(headers)), align_(headers_.size(), Align::kLeft) {}

void Table::SetAlign(size_t column, Align align) {
  if (column < align_.size()) align_[column] = align;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::SetMinWidths(std::vector<size_t> widths) {
  widths.resize(headers_.size());
  min_widths_ = std::move(widths);
}

std::vector<size_t> Table::Widths() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = DisplayWidth(headers_[c]);
    if (c < min_widths_.size()) widths[c] = std::max(widths[c], min_widths_[c]);
  }
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  return widths;
}

std::string Table::Render(bool header) const {
  const std::vector<size_t> widths = Widths();

  std::string out;
  auto append_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) line.append(2, ' ');
      const size_t pad = widths[c] - DisplayWidth(cells[c]);
      if (align_[c] == Align::kRight) line.append(pad, ' ');
      line += cells[c];
      if (align_[c] == Align::kLeft) line.append(pad, ' ');
    }
    // Left-aligned last cells pad with spaces nobody needs.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  if (header) append_line(headers_);
  for (const auto& row : rows_) append_line(row);
  return out;
}

size_t DisplayWidth(absl::string_view text) {
  // Every byte except UTF-8 continuation bytes (10xxxxxx) starts a code point.
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char ch) {
    return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  }));
}

absl::string_view TruncateToWidth(absl::string_view text, size_t width) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (seen == width) return text.substr(0, i);
    ++seen;
  }
  return text;
}

}  // namespace ablate::cli
