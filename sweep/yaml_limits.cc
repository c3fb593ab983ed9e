#include "sweep/yaml_limits.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/parser.h"

namespace ablate::sweep {
namespace {

// Thrown by the handler to stop the parser at the first limit passed; caught below.
struct LimitPassed {
  YAML::Mark mark;
  std::string problem;
};

// Counts nodes as the parser reports them. Each open map or list is a frame; a closed one
// adds its count to its parent and, when it carries an anchor, is remembered by that anchor so
// an alias to it counts all of its nodes again.
class LimitCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Leaf(mark, anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    // An alias to an anchor still open (a recursive structure) has no finite expansion.
    if (it == sizes_.end()) {
      throw LimitPassed{mark, "an alias refers to a node that contains it"};
    }
    Leaf(mark, 0, it->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    if (value.size() > kMaxYamlScalarBytes) {
      throw LimitPassed{mark, absl::StrFormat("a value of %d bytes; the limit is %d", value.size(),
                                              kMaxYamlScalarBytes)};
    }
    Leaf(mark, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    YAML::Mark mark;
    YAML::anchor_t anchor;
    uint64_t nodes;
  };

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (open_.size() >= static_cast<size_t>(kMaxYamlDepth)) {
      throw LimitPassed{
          mark, absl::StrFormat("maps and lists nest deeper than %d levels", kMaxYamlDepth)};
    }
    open_.push_back({mark, anchor, 1});
  }

  void Close() {
    const Frame frame = open_.back();
    open_.pop_back();
    Leaf(frame.mark, frame.anchor, frame.nodes);
  }

  void Leaf(const YAML::Mark& mark, YAML::anchor_t anchor, uint64_t nodes) {
    if (anchor != 0) sizes_[anchor] = nodes;
    if (open_.empty()) return;
    // A frame's count never exceeds its parent's final count, so checking whichever frame
    // grows finds the root passing the limit at the first event that makes it so.
    uint64_t& parent = open_.back().nodes;
    parent += nodes;
    if (parent > kMaxYamlNodes) {
      throw LimitPassed{mark, absl::StrFormat("the file expands to more than %d nodes (aliases "
                                              "count every node they stand for); write the "
                                              "values out or use fewer aliases",
                                              kMaxYamlNodes)};
    }
  }

  std::vector<Frame> open_;
  absl::flat_hash_map<YAML::anchor_t, uint64_t> sizes_;  // closed anchored nodes' counts
};

}  // namespace

absl::Status CheckYamlLimits(absl::string_view yaml, absl::string_view source) {
  std::istringstream in{std::string(yaml)};
  LimitCounter counter;
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(counter);
  } catch (const LimitPassed& passed) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: %s", source, passed.mark.line + 1,
                                                      passed.mark.column + 1, passed.problem));
  } catch (const YAML::Exception&) {
    // The tree parser reads the same text next and reports the syntax error with its place.
  }
  return absl::OkStatus();
}

}  // namespace ablate::sweep
