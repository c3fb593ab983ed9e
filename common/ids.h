// Stable identities: the same content gives the same id on every machine and in every run, so
// a sweep file always expands to the same sweep and job ids.
#ifndef ABLATE_COMMON_IDS_H_
#define ABLATE_COMMON_IDS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace ablate {

// FNV-1a, 64 bits: not cryptographic, only stable.
uint64_t StableHash64(absl::string_view bytes);

// 16 lower-case hex digits of StableHash64 over the message's deterministic serialization.
std::string MessageHash(const google::protobuf::Message& message);

// Lower-case letters, digits and '-' only, at most 40 characters ("Tiny Grid!" -> "tiny-grid").
std::string Slug(absl::string_view name);

}  // namespace ablate

#endif  // ABLATE_COMMON_IDS_H_
