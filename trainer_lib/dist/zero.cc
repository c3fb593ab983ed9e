#include "trainer_lib/dist/zero.h"

#include <cerrno>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/model_math.h"
#include "common/train_config.h"
#include "trainer_lib/state/archive_file.h"

namespace ablate::train::dist {
namespace {

namespace fs = std::filesystem;

// Where the ranks leave their shards for rank 0's checkpoint; ".tmp-" makes the checkpoint
// folder's pruning clear a leftover.
fs::path Staging(const fs::path& checkpoint_dir) {
  return checkpoint_dir / ".tmp-optimizer-shards";
}

std::string ShardName(int rank) { return absl::StrCat("optimizer-", rank, ".pt"); }
constexpr char kOwnersName[] = "optimizer-owners.txt";
constexpr char kWholeName[] = "optimizer.pt";  // one process's, as OptimizerState writes it

// A saved layout: how many shards, and which one holds each parameter's state.
struct Layout {
  int world_size = 1;
  std::map<std::string, int> owner;  // by parameter name; empty: all in the one shard
};

absl::StatusOr<Layout> ReadLayout(const fs::path& dir) {
  Layout layout;
  if (!fs::exists(dir / kOwnersName)) return layout;
  std::string text;
  if (absl::Status s = ReadTextFile(dir / kOwnersName, text); !s.ok()) return s;
  std::istringstream in(text);
  std::string word;
  if (!(in >> word >> layout.world_size) || word != "world" || layout.world_size < 1) {
    return absl::DataLossError(absl::StrCat((dir / kOwnersName).string(), ": malformed"));
  }
  std::string name;
  int owner = 0;
  while (in >> name >> owner) {
    if (owner < 0 || owner >= layout.world_size) {
      return absl::DataLossError(
          absl::StrCat((dir / kOwnersName).string(), ": ", name, " has owner ", owner));
    }
    layout.owner[name] = owner;
  }
  return layout;
}

}  // namespace

absl::StatusOr<bool> ShardsOptimizerState(const v1::TrainConfig& config,
                                          const v1::ModelConfig& model,
                                          int64_t device_memory_bytes) {
  if (WorldSize(config) <= 1) return false;
  const std::string& sharding = config.optimizer_sharding();
  if (sharding == "zero1") return true;
  if (sharding == "none" || device_memory_bytes <= 0) return false;
  absl::StatusOr<MemoryPlan> plan = PlanMemory(model, RankWorkOf(config));
  if (!plan.ok()) return plan.status();
  return static_cast<double>(plan->total()) > 0.9 * static_cast<double>(device_memory_bytes);
}

std::vector<int> AssignOwners(const std::vector<NamedParameter>& parameters, int world_size) {
  std::vector<size_t> order(parameters.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return parameters[a].tensor.numel() > parameters[b].tensor.numel();
  });
  std::vector<int64_t> load(world_size, 0);
  std::vector<int> owners(parameters.size(), 0);
  for (const size_t i : order) {
    const int rank = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owners[i] = rank;
    load[rank] += parameters[i].tensor.numel();
  }
  return owners;
}

class ShardedOptimizer::Piece : public Stateful {
 public:
  Piece(ShardedOptimizer& owner, fs::path staging, c10::Device device)
      : owner_(owner), staging_(std::move(staging)), device_(device) {}

  std::string Name() const override { return "optimizer"; }

  absl::Status Save(const fs::path& dir) override {
    if (owner_.world_size_ == 1) {
      torch::serialize::OutputArchive archive;
      owner_.local_->save(archive);
      return WriteArchive(archive, dir / kWholeName);
    }
    std::string owners = absl::StrCat("world ", owner_.world_size_, "\n");
    for (size_t i = 0; i < owner_.parameters_.size(); ++i) {
      absl::StrAppend(&owners, owner_.parameters_[i].name, " ", owner_.owners_[i], "\n");
    }
    if (absl::Status s = WriteTextFile(dir / kOwnersName, owners); !s.ok()) return s;
    for (int r = 0; r < owner_.world_size_; ++r) {
      if (std::rename((staging_ / ShardName(r)).c_str(), (dir / ShardName(r)).c_str()) != 0) {
        return FileError("rename into", dir / ShardName(r), errno);
      }
    }
    std::error_code error;
    fs::remove(staging_, error);  // empty now
    return absl::OkStatus();
  }

  absl::Status Load(const fs::path& dir) override {
    absl::StatusOr<Layout> layout = ReadLayout(dir);
    if (!layout.ok()) return layout.status();
    for (int shard = 0; shard < layout->world_size; ++shard) {
      if (absl::Status s = LoadShard(dir, *layout, shard); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  // Moves the states of the parameters this rank owns out of saved shard `shard`.
  absl::Status LoadShard(const fs::path& dir, const Layout& layout, int shard) {
    std::vector<NamedParameter> saved;  // the shard's parameters, in model order
    bool needed = false;
    for (size_t i = 0; i < owner_.parameters_.size(); ++i) {
      const NamedParameter& p = owner_.parameters_[i];
      int saved_owner = 0;
      if (!layout.owner.empty()) {
        auto it = layout.owner.find(p.name);
        if (it == layout.owner.end()) {
          return absl::DataLossError(
              absl::StrCat((dir / kOwnersName).string(), " lacks parameter ", p.name));
        }
        saved_owner = it->second;
      }
      if (saved_owner != shard) continue;
      saved.push_back(p);
      needed |= owner_.owners_[i] == owner_.rank_;
    }
    if (!needed) return absl::OkStatus();
    const fs::path path = dir / (layout.owner.empty() ? std::string(kWholeName) : ShardName(shard));
    absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> reader =
        MakeOptimizer(owner_.config_, saved);
    if (!reader.ok()) return reader.status();
    torch::serialize::InputArchive archive;
    if (absl::Status s = ReadArchive(path, device_, archive); !s.ok()) return s;
    try {
      (*reader)->load(archive);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      return absl::DataLossError(absl::StrCat(
          path.string(), " does not fit this optimizer: ", what.substr(0, what.find('\n'))));
    }
    auto& from = (*reader)->state();
    auto& to = owner_.local_->state();
    for (size_t i = 0; i < owner_.parameters_.size(); ++i) {
      if (owner_.owners_[i] != owner_.rank_) continue;
      void* key = owner_.parameters_[i].tensor.unsafeGetTensorImpl();
      auto it = from.find(key);
      if (it != from.end()) to[key] = std::move(it->second);
    }
    return absl::OkStatus();
  }

  ShardedOptimizer& owner_;
  const fs::path staging_;
  const c10::Device device_;
};

absl::StatusOr<std::unique_ptr<ShardedOptimizer>> ShardedOptimizer::Make(
    const v1::TrainConfig& config, std::vector<NamedParameter> parameters, ProcessGroup* group) {
  const int world_size = group == nullptr ? 1 : group->size();
  std::vector<int> owners = AssignOwners(parameters, world_size);
  if (static_cast<int>(parameters.size()) < world_size) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer state of ", parameters.size(),
                                                   " parameters cannot be sharded over ",
                                                   world_size, " ranks"));
  }
  std::unique_ptr<ShardedOptimizer> sharded(
      new ShardedOptimizer(config, std::move(parameters), group, std::move(owners)));
  std::vector<NamedParameter> owned;
  for (size_t i = 0; i < sharded->parameters_.size(); ++i) {
    if (sharded->owners_[i] == sharded->rank_) owned.push_back(sharded->parameters_[i]);
  }
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> local = MakeOptimizer(config, owned);
  if (!local.ok()) return local.status();
  sharded->local_ = *std::move(local);
  return sharded;
}

ShardedOptimizer::ShardedOptimizer(const v1::TrainConfig& config,
                                   std::vector<NamedParameter> parameters, ProcessGroup* group,
                                   std::vector<int> owners)
    : config_(config),
      parameters_(std::move(parameters)),
      group_(group),
      rank_(group == nullptr ? 0 : group->rank()),
      world_size_(group == nullptr ? 1 : group->size()),
      owners_(std::move(owners)) {}

void ShardedOptimizer::BroadcastUpdated() {
  if (group_ == nullptr) return;
  torch::NoGradGuard no_grad;
  for (int owner = 0; owner < world_size_; ++owner) {
    std::vector<torch::Tensor> flat;
    std::vector<torch::Tensor> targets;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (owners_[i] != owner) continue;
      flat.push_back(parameters_[i].tensor.detach().reshape(-1));
      targets.push_back(parameters_[i].tensor);
    }
    torch::Tensor buffer = torch::cat(flat);
    group_->Broadcast(buffer, owner);
    if (owner == rank_) continue;  // its own values are already in place
    int64_t offset = 0;
    for (torch::Tensor& p : targets) {
      p.detach().copy_(buffer.narrow(0, offset, p.numel()).view_as(p));
      offset += p.numel();
    }
  }
}

absl::Status ShardedOptimizer::StageShard(const fs::path& checkpoint_dir) {
  if (group_ == nullptr) return absl::OkStatus();
  absl::Status written = WriteShard(Staging(checkpoint_dir));
  if (group_->Max(written.ok() ? 0 : 1) == 0) return absl::OkStatus();
  if (!written.ok()) return written;
  return absl::InternalError("another rank failed to write its optimizer shard");
}

absl::Status ShardedOptimizer::WriteShard(const fs::path& staging) {
  std::error_code error;
  fs::create_directories(staging, error);
  if (error) return FileError("mkdir", staging, error.value());
  torch::serialize::OutputArchive archive;
  local_->save(archive);
  const fs::path path = staging / ShardName(rank_);
  if (absl::Status s = WriteArchive(archive, path); !s.ok()) return s;
  return SyncPath(path, /*directory=*/false);
}

std::unique_ptr<Stateful> ShardedOptimizer::State(const fs::path& checkpoint_dir,
                                                  const c10::Device& device) {
  return std::make_unique<Piece>(*this, Staging(checkpoint_dir), device);
}

}  // namespace ablate::train::dist
