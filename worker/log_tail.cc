#include "worker/log_tail.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ablate::worker {
namespace {

constexpr std::streamoff kTailBytes = 4096;

}  // namespace

std::string LogTail(const std::filesystem::path& path, size_t lines, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - kTailBytes));
  std::string bytes(static_cast<size_t>(std::min(size, kTailBytes)), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::vector<absl::string_view> kept;
  for (absl::string_view line : absl::StrSplit(bytes, absl::ByAnyChar("\r\n"))) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) kept.push_back(line);
  }
  if (kept.size() > lines) kept.erase(kept.begin(), kept.end() - static_cast<ptrdiff_t>(lines));
  std::string tail = absl::StrJoin(kept, " | ");
  if (tail.size() > max_bytes) tail = "..." + tail.substr(tail.size() - max_bytes);
  // The 4 KiB window and the cut may each split a character.
  return ToValidUtf8(tail);
}

LogLines ReadLogLines(const std::filesystem::path& path, size_t max_lines, size_t max_bytes) {
  LogLines out;
  std::ifstream in(path, std::ios::binary);
  if (!in || max_lines == 0 || max_bytes == 0) return out;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const auto window = static_cast<std::streamoff>(max_bytes);
  const std::streamoff start = std::max<std::streamoff>(0, size - window);
  in.seekg(start);
  std::string bytes(static_cast<size_t>(size - start), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  absl::string_view text = bytes;
  out.truncated = start > 0;
  // The window's first line began before it, unless the byte before the window ended a line.
  if (start > 0) {
    in.clear();
    in.seekg(start - 1);
    const bool cut = in.get() != '\n';
    if (const size_t newline = text.find('\n'); cut && newline != absl::string_view::npos) {
      text.remove_prefix(newline + 1);
    }
  }
  if (absl::EndsWith(text, "\n")) text.remove_suffix(1);
  if (text.empty()) return out;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.size() > max_lines) {
    out.truncated = true;
    lines.erase(lines.begin(), lines.end() - static_cast<ptrdiff_t>(max_lines));
  }
  out.lines.reserve(lines.size());
  // The window may split a character only at its start, in a line kept whole only when it is
  // the window's only line.
  for (absl::string_view line : lines) {
    line = absl::StripSuffix(line, "\r");
    out.lines.push_back(ToValidUtf8(std::string_view(line.data(), line.size())));
  }
  return out;
}

std::string ToValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = 0;
    // The second byte's range, narrowed where the lead byte allows overlong forms or
    // surrogates.
    unsigned char low = 0x80, high = 0xBF;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      const unsigned char c = byte(i + k);
      valid = k == 1 ? (c >= low && c <= high) : (c >= 0x80 && c <= 0xBF);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

}  // namespace ablate::worker
