#include "common/ids.h"

#include <cctype>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace ablate {

uint64_t StableHash64(absl::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string MessageHash(const google::protobuf::Message& message) {
  // Serialized into one buffer of the message's size, reused by the thread: a sweep hashes a
  // config per job, and growing a fresh string as the bytes come cost more than the hash.
  thread_local std::string bytes;
  bytes.resize(message.ByteSizeLong());
  {
    // Deterministic serialization orders map entries, so equal messages give equal bytes.
    google::protobuf::io::ArrayOutputStream raw(bytes.data(), static_cast<int>(bytes.size()));
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    message.SerializeWithCachedSizes(&coded);
  }
  // 16 lowercase hex digits, zero-padded (what "%016x" writes).
  uint64_t hash = StableHash64(bytes);
  std::string hex(16, '0');
  for (size_t i = hex.size(); i-- > 0; hash >>= 4) hex[i] = "0123456789abcdef"[hash & 0xf];
  return hex;
}

std::string Slug(absl::string_view name) {
  std::string out;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() == 40) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "sweep" : out;
}

}  // namespace ablate
