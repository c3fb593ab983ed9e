// Plain-text tables for the terminal: a header row and data rows, columns padded to their
// widest cell and separated by two spaces, with no trailing whitespace, so the output reads in
// a terminal and still splits on whitespace in scripts. Widths count UTF-8 code points, so a
// cell holding "—" or "·" lines up like one holding "-".
//
// A Table is a value: it owns copies of its cells. Not thread-safe; use one per thread.
#ifndef ABLATE_CLI_TABLE_H_
#define ABLATE_CLI_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ablate::cli {

class Table {
 public:
  enum class Align { kLeft, kRight };

  // One column per header; every column starts left-aligned.
  explicit Table(std::vector<std::string> headers);

  // Numbers read best right-aligned. Ignored for a column that does not exist.
  void SetAlign(size_t column, Align align);

  // A row shorter than the header is padded with empty cells; a longer one is cut to the
  // header's width.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // Columns at least this wide (one entry per column, as Widths() gives them), so tables
  // printed one after another, such as the pages of a long listing, line up.
  void SetMinWidths(std::vector<size_t> widths);
  // The width of each column as Render() lays it out.
  std::vector<size_t> Widths() const;

  // The header line (unless `header` is false), then one line per row, each ending in '\n'.
  std::string Render(bool header = true) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<size_t> min_widths_;
  std::vector<std::vector<std::string>> rows_;
};

// Code points in a UTF-8 string: how wide it shows in a terminal for the text we print.
size_t DisplayWidth(absl::string_view text);

// The longest prefix of `text` at most `width` code points wide, never splitting one.
absl::string_view TruncateToWidth(absl::string_view text, size_t width);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_TABLE_H_
