// Whether a path lies under a root, judged from their spelling alone: both are normalized
// ("a/./b/../c" is "a/c", a trailing slash is dropped), and the path is under the root when it
// is the root or names something inside it, so "/data2" is not under "/data" and
// "/data/../etc" is not either. Nothing is read from a filesystem: symbolic links are not
// followed and relative paths are compared as spelled. A worker resolves both sides on its
// own machine first (worker/job_paths.h); the coordinator, which cannot see that machine,
// compares the roots a worker reported with a job's paths (coordinator/scheduler/worker_roots.h).
//
// Stateless; safe from any thread.
#ifndef ABLATE_COMMON_LEXICAL_PATH_H_
#define ABLATE_COMMON_LEXICAL_PATH_H_

#include <filesystem>

namespace ablate {

bool LexicallyWithin(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace ablate

#endif  // ABLATE_COMMON_LEXICAL_PATH_H_
