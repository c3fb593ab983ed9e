// Limits on a sweep file's YAML, checked on the parser's event stream before any tree is built
// or walked. A YAML alias stands for a whole earlier subtree, so a file of a few hundred bytes
// can name billions of nodes ("a: &a [x, x]", "b: &b [*a, *a]", ...); yaml-cpp's tree shares
// the subtree, but every reader that walks it (the sweep reader, a printer) pays for each use.
// Counting the nodes each alias stands for, as the events arrive, refuses such a file in time
// linear in its size. Stateless; safe from any thread.
#ifndef ABLATE_SWEEP_YAML_LIMITS_H_
#define ABLATE_SWEEP_YAML_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ablate::sweep {

// The largest real sweep files have a few hundred nodes and four levels of nesting; the limits
// leave two orders of magnitude of room.
inline constexpr uint64_t kMaxYamlNodes = 100'000;         // after every alias is expanded
inline constexpr int kMaxYamlDepth = 32;                   // maps and lists inside one another
inline constexpr uint64_t kMaxYamlScalarBytes = 16 << 10;  // one key or value (a description)

// OK when the first document of `yaml` stays within the limits above. InvalidArgument naming
// `source`, the line and column where a limit was passed, the limit and what to change;
// a syntax error is left for the tree parser to report (OK here).
absl::Status CheckYamlLimits(absl::string_view yaml, absl::string_view source);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_YAML_LIMITS_H_
