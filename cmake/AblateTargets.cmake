# Helpers every folder uses to declare its library, binary and tests the same way.

# Warnings are errors on our own code only; generated and third-party code is left alone. They
# are errors with the compiler CI builds with; a newer GCC (13 on the GPU machines) adds false
# positives of its own inside the standard library and LibTorch at -O3, so builds there turn
# ABLATE_WERROR off and keep the warnings.
option(ABLATE_WERROR "Treat warnings in Ablate's own code as errors" ON)
add_library(ablate_warnings INTERFACE)
target_compile_options(ablate_warnings INTERFACE -Wall -Wextra -Wpedantic
  $<$<BOOL:${ABLATE_WERROR}>:-Werror> -Wno-unused-parameter)

# Torch ships an old copy of Protobuf's headers in its include folder, which comes before the
# system's. A folder holding one link `google` -> the system's include/google, put first on a
# target's include path, makes every *.pb.h see the Protobuf it was generated for.
set(ABLATE_PROTOBUF_SHIM ${CMAKE_BINARY_DIR}/protobuf_shim)
file(MAKE_DIRECTORY ${ABLATE_PROTOBUF_SHIM})
file(CREATE_LINK ${Protobuf_INCLUDE_DIR}/google ${ABLATE_PROTOBUF_SHIM}/google SYMBOLIC)

function(ablate_use_torch target)
  target_include_directories(${target} BEFORE PRIVATE ${ABLATE_PROTOBUF_SHIM})
  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES})
  target_include_directories(${target} SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endfunction()

# ablate_test(NAME SOURCES... LIBS ... [LABELS ...]): one GoogleTest binary registered with ctest.
function(ablate_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
    ablate_warnings)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # An empty LABELS value would swallow the next property's name, so add it only when given.
  set(properties ENVIRONMENT "ABLATE_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  if(ARG_LABELS)
    list(APPEND properties LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    PROPERTIES ${properties}
    DISCOVERY_TIMEOUT 60)
endfunction()
