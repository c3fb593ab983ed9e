#include "coordinator/scheduler/pending_queue.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <set>
#include <utility>

#include "coordinator/scheduler/worker_roots.h"

namespace ablate::coordinator {

PendingQueue::GroupKey PendingQueue::KeyOf(const v1::JobSpec& spec) {
  const SlotNeed need = SlotNeedOf(spec);
  RootedPaths paths = RootedPathsOf(spec);
  return {static_cast<int>(need.kind),
          need.count,
          need.memory_bytes,
          need.host_memory_bytes,
          CheckpointFolder(paths.checkpoint_dir),
          std::move(paths.dataset)};
}

SlotNeed PendingQueue::NeedOf(const GroupKey& key) {
  return {static_cast<v1::DeviceKind>(std::get<0>(key)), std::get<1>(key), std::get<2>(key),
          std::get<3>(key)};
}

PendingQueue::Sweep& PendingQueue::SweepOf(const v1::JobSpec& spec) {
  auto [it, inserted] = sweeps_.try_emplace(spec.sweep_id());
  if (inserted) {
    it->second.priority = spec.priority();
    it->second.order = next_order_++;
  }
  return it->second;
}

void PendingQueue::DropIfIdle(const std::string& sweep_id) {
  auto it = sweeps_.find(sweep_id);
  if (it != sweeps_.end() && it->second.groups.empty() && it->second.placed == 0) {
    sweeps_.erase(it);
  }
}

void PendingQueue::Add(v1::JobSpec spec) {
  const GroupKey key = KeyOf(spec);
  if (!where_.try_emplace(spec.job_id(), Where{spec.sweep_id(), key, spec.index()}).second) return;
  Group& group = SweepOf(spec).groups[key];
  group.message_stale = group.message_stale || !group.message.empty();
  const uint32_t index = spec.index();
  // A sweep's jobs arrive in index order, so each goes last: the hint saves the tree's search.
  group.jobs.emplace_hint(group.jobs.end(), index, std::move(spec));
}

PendingQueue::Staged::Staged(const std::vector<v1::JobSpec>& jobs) {
  where_.reserve(jobs.size());
  slots_.reserve(jobs.size());
  // A sweep's jobs come together and mostly share a group: look each up once per run of them.
  Sweep* sweep = nullptr;
  const std::string* sweep_id = nullptr;
  std::map<GroupKey, Group>::iterator group;
  for (const v1::JobSpec& spec : jobs) {
    GroupKey key = KeyOf(spec);
    if (sweep_id == nullptr || *sweep_id != spec.sweep_id()) {
      auto [it, inserted] = sweeps_.try_emplace(spec.sweep_id());
      if (inserted) {
        it->second.priority = spec.priority();
        it->second.order = sweeps_.size() - 1;  // first seen first, as Add would order them
      }
      sweep = &it->second;
      sweep_id = &it->first;
      group = sweep->groups.end();
    }
    if (group == sweep->groups.end() || group->first != key) {
      group = sweep->groups.try_emplace(key).first;
    }
    auto job = group->second.jobs.try_emplace(group->second.jobs.end(), spec.index());
    slots_.push_back(&job->second);
    where_.emplace_back(spec.job_id(), Where{spec.sweep_id(), std::move(key), spec.index()});
  }
}

void PendingQueue::Staged::Take(std::vector<v1::JobSpec> jobs) {
  for (size_t i = 0; i < jobs.size(); ++i) *slots_[i] = std::move(jobs[i]);
}

void PendingQueue::Splice(Staged staged) {
  where_.reserve(where_.size() + staged.where_.size());
  for (auto& [job_id, where] : staged.where_) {
    if (where_.try_emplace(std::move(job_id), std::move(where)).second) continue;
    // Queued already: it stays as it is.
    staged.sweeps_[where.sweep_id].groups[where.group].jobs.erase(where.index);
  }
  std::vector<std::pair<const std::string, Sweep>*> in_order;
  for (auto& entry : staged.sweeps_) in_order.push_back(&entry);
  std::sort(in_order.begin(), in_order.end(),
            [](const auto* a, const auto* b) { return a->second.order < b->second.order; });
  for (auto* entry : in_order) {
    Sweep* sweep = nullptr;
    for (auto& [key, group] : entry->second.groups) {
      if (group.jobs.empty()) continue;
      if (sweep == nullptr) {
        auto [it, inserted] = sweeps_.try_emplace(entry->first);
        if (inserted) {
          it->second.priority = entry->second.priority;
          it->second.order = next_order_++;
        }
        sweep = &it->second;
      }
      auto [to, inserted] = sweep->groups.try_emplace(key, std::move(group));
      if (inserted) continue;
      to->second.message_stale = to->second.message_stale || !to->second.message.empty();
      to->second.jobs.merge(group.jobs);
    }
  }
}

bool PendingQueue::Remove(const std::string& job_id) {
  auto it = where_.find(job_id);
  if (it == where_.end()) return false;
  const Where where = std::move(it->second);
  where_.erase(it);
  Sweep& sweep = sweeps_[where.sweep_id];
  auto group = sweep.groups.find(where.group);
  group->second.jobs.erase(where.index);
  if (group->second.jobs.empty()) sweep.groups.erase(group);
  DropIfIdle(where.sweep_id);
  return true;
}

void PendingQueue::CountPlaced(const v1::JobSpec& spec) { ++SweepOf(spec).placed; }

void PendingQueue::CountUnplaced(const std::string& sweep_id) {
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end() || it->second.placed == 0) return;
  --it->second.placed;
  DropIfIdle(sweep_id);
}

int PendingQueue::Place(absl::FunctionRef<bool(const v1::JobSpec&, const SlotNeed&)> try_place,
                        int limit) {
  using Entry = std::pair<const std::string*, Sweep*>;
  std::map<int32_t, std::vector<Entry>, std::greater<>> levels;  // highest priority first
  for (auto& [id, sweep] : sweeps_) {
    if (!sweep.groups.empty()) levels[sweep.priority].emplace_back(&id, &sweep);
  }
  // Free slots only shrink during a pass, so a group whose first job found none stays skipped,
  // and every group of the same key, in any sweep: its jobs fit the same workers.
  std::set<GroupKey> unfit;
  int placed = 0;
  for (auto& [priority, members] : levels) {
    // The sweep with the fewest placed jobs on top, the older one on a tie.
    auto after = [](const Entry& a, const Entry& b) {
      return std::tie(a.second->placed, a.second->order) >
             std::tie(b.second->placed, b.second->order);
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(after)> turn(after, std::move(members));
    while (!turn.empty() && placed < limit) {
      auto [id, sweep] = turn.top();
      turn.pop();
      while (true) {
        // Of the sweep's groups not skipped, the one whose next job comes first.
        auto next = sweep->groups.end();
        for (auto it = sweep->groups.begin(); it != sweep->groups.end(); ++it) {
          if (unfit.contains(it->first)) continue;
          if (next == sweep->groups.end() ||
              it->second.jobs.begin()->first < next->second.jobs.begin()->first) {
            next = it;
          }
        }
        if (next == sweep->groups.end()) break;  // nothing of this sweep fits: it sits out
        auto job = next->second.jobs.begin();
        if (!try_place(job->second, NeedOf(next->first))) {
          unfit.insert(next->first);
          continue;
        }
        where_.erase(job->second.job_id());
        next->second.jobs.erase(job);
        if (next->second.jobs.empty()) sweep->groups.erase(next);
        ++sweep->placed;
        ++placed;
        if (!sweep->groups.empty()) turn.push({id, sweep});
        break;
      }
    }
    if (placed >= limit) break;
  }
  return placed;
}

void PendingQueue::ForEachGroup(
    absl::FunctionRef<void(const std::string& sweep_id, const SlotNeed&, Group&)> visit) {
  for (auto& [id, sweep] : sweeps_) {
    for (auto& [key, group] : sweep.groups) visit(id, NeedOf(key), group);
  }
}

}  // namespace ablate::coordinator
