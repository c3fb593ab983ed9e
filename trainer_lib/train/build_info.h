// What build of the trainer is running, for a run's provenance. The definition is generated
// at every build (build_info.cmake) from the project's version and the git commit.
#ifndef ABLATE_TRAINER_LIB_TRAIN_BUILD_INFO_H_
#define ABLATE_TRAINER_LIB_TRAIN_BUILD_INFO_H_

namespace ablate::train {

// "0.1.0+1a2b3c4d5e6f": the version in CMakeLists.txt and the commit's short hash, with
// ".dirty" when tracked files differed from it; "+unknown" outside a git checkout.
extern const char kCodeVersion[];

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_BUILD_INFO_H_
