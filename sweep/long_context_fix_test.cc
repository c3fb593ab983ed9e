// The rule a refusal of dense attention past 128K tokens ends with (long_context_fix.h): in the
// sweep file's own syntax, and one that, added to the file, makes it expand.
#include "sweep/long_context_fix.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

// The file's refusal, which the test expects.
std::string RefusalOf(const std::string& yaml) {
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  EXPECT_FALSE(expanded.ok());
  return expanded.ok() ? "" : std::string(expanded.status().message());
}

// `yaml` with the lines of the refusal's snippet (those after its "add to the file" line)
// appended, each two spaces out again as the file has it.
std::string WithTheFix(const std::string& yaml, const std::string& refusal) {
  std::string fixed = yaml;
  bool snippet = false;
  for (absl::string_view line : absl::StrSplit(refusal, '\n')) {
    if (snippet) absl::StrAppend(&fixed, absl::StripPrefix(line, "  "), "\n");
    snippet = snippet || absl::StrContains(line, ", add to the file");
  }
  return fixed;
}

// The jobs `yaml` expands to with the refusal's snippet added; 0 when it still does not expand.
size_t JobsWithTheFix(const std::string& yaml, const std::string& refusal) {
  absl::StatusOr<ExpandedSweepFile> fixed = ExpandSweepYaml(WithTheFix(yaml, refusal), "s.yaml");
  EXPECT_TRUE(fixed.ok()) << fixed.status();
  return fixed.ok() ? fixed->expansion.jobs.size() : 0;
}

TEST(LongContextFixTest, AnAttentionDimensionGetsTheConstraintThatLeavesDenseOut) {
  const std::string yaml = R"(name: t
grid:
  attention: [dense, nsa]
  context_length: [32K, 512K, 1M]
)";
  const std::string refusal = RefusalOf(yaml);
  EXPECT_THAT(refusal,
              EndsWith("\ndense attention takes at most 131072 tokens; to leave out its cells at "
                       "context_length 512K, 1M, add to the file:\n"
                       "  constraints:\n"
                       "    - when: {context_length: [512K, 1M]}\n"
                       "      require: {attention: [nsa]}"));
  EXPECT_EQ(JobsWithTheFix(yaml, refusal), 4u);  // the two dense cells past 128K left out
}

// A file with constraints of its own is told to add the rule to them.
TEST(LongContextFixTest, AFileWithConstraintsGetsTheRuleToAdd) {
  const std::string yaml = R"(name: t
grid:
  attention: [dense, nsa]
  context_length: [128, 512K]
constraints:
  - when: {context_length: [128]}
    require: {attention: [dense]}
)";
  const std::string refusal = RefusalOf(yaml);
  EXPECT_THAT(refusal, EndsWith("context_length 512K, add to the file's constraints:\n"
                                "    - when: {context_length: [512K]}\n"
                                "      require: {attention: [nsa]}"));
  EXPECT_EQ(JobsWithTheFix(yaml, refusal), 2u);
}

// Without an attention dimension no constraint can name it: the override that sets it does.
TEST(LongContextFixTest, WithoutAnAttentionDimensionTheOverrideSetsNsa) {
  const std::string yaml = "name: t\ngrid:\n  context_length: [128K, 1M]\nfixed:\n  steps: 10\n";
  const std::string refusal = RefusalOf(yaml);
  EXPECT_THAT(refusal, EndsWith("; to train the cells at context_length 1M with NSA instead, "
                                "add to the file:\n"
                                "  overrides:\n"
                                "    - when: {context_length: [1M]}\n"
                                "      set: {attention: nsa}"));
  EXPECT_EQ(JobsWithTheFix(yaml, refusal), 2u);
}

// A context past NSA's limit too gets no rule that sets NSA: the cells would be refused again.
TEST(LongContextFixTest, AContextPastNsasLimitGetsNoRule) {
  const std::string refusal = RefusalOf("name: t\ngrid:\n  context_length: [64, 2M]\n");
  EXPECT_THAT(refusal, HasSubstr("context_length"));
  EXPECT_THAT(refusal, Not(HasSubstr("add to the file")));
}

// A context the grid does not vary is the file's own setting: no rule over cells fixes it.
TEST(LongContextFixTest, AFixedContextGetsNoRule) {
  EXPECT_THAT(
      RefusalOf("name: t\ngrid:\n  attention: [dense, nsa]\nfixed:\n  context_length: 1M\n"),
      Not(HasSubstr("add to the file")));
  // Nor does another problem of a long cell.
  EXPECT_THAT(RefusalOf("name: t\ngrid:\n  attention: [nsa]\n  context_length: [1M]\n"
                        "fixed:\n  steps: 0\n"),
              Not(HasSubstr("add to the file")));
}

}  // namespace
}  // namespace ablate::sweep
