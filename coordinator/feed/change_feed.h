// ChangeFeed carries what each store commit changed to whoever watches: WatchSweep streams,
// the HTTP event stream (/api/v1/sweeps/{id}/events) and the scheduler. The store's writer
// publishes once per commit; nobody re-reads the database to find out what changed.
//
// What a subscriber receives: per commit that touched its sweep, one v1::SweepSnapshot with
// delta = true, version = the store's version after that commit, `sweep` holding the sweep's
// id, created_at, counts and state (its spec left out: it never changes), `jobs` the rows that
// commit changed (full rows, as Store::GetJob reads them) and `metrics` the points it appended,
// per job, in the order they were reported. Applying deltas in version order to a snapshot of
// version V gives the sweep as of the last delta's version.
//
// Watching a sweep, without missing or repeating a change:
//   auto sub = feed.Subscribe(sweep_id);              // 1. subscribe first
//   v1::SweepSnapshot snap = store.Snapshot(...);     // 2. then read a full snapshot, version V
//   sub->SkipThrough(snap.version());                 // 3. drop queued deltas it already holds
//   send(snap); while (sub->Next(&delta, ...) == kDelta) send(delta);
// Resuming after a client's last version V (SSE's Last-Event-ID):
//   auto sub = feed.Resume(sweep_id, V);              // replays every delta after V, then live;
//   if (!sub.ok()) { ...take the fresh-watch path... } // OutOfRange: V is no longer replayable
//
// Bounds: each subscriber queues at most Options::subscriber_queue deltas; one that falls
// further behind is told so (Next returns kFellBehind) and its queue is dropped: it takes a
// new snapshot. Publish never blocks on a subscriber. The replay buffer keeps the newest
// Options::replay_commits commits' deltas (and at most Options::replay_points metric points).
// Deltas are only built for sweeps that someone watches, or watched within Options::linger
// (the store asks Wants()), so an unwatched fleet costs the writer nothing; a commit that
// changes more than Options::max_delta_jobs jobs of one sweep (a cancel of 100,000 jobs) is
// not sent as a delta: its subscribers fall behind and take a snapshot.
//
// Thread safety: every method may be called from any thread. Publish is called by the one
// writer, in version order. Notify callbacks and pending listeners run on the publishing
// thread, with no feed lock held: they must not block (set a flag, post to a queue, or wake a
// reactor), and must not call Publish.
#ifndef ABLATE_COORDINATOR_FEED_CHANGE_FEED_H_
#define ABLATE_COORDINATOR_FEED_CHANGE_FEED_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ablate::coordinator {

// What one commit changed, as the store's writer hands it to Publish.
struct Commit {
  int64_t version = 0;  // the store's version after this commit; grows with every Publish
  // Every sweep the commit changed, whether or not it carries a delta for it.
  absl::flat_hash_set<std::string> touched;
  // One delta per touched sweep that the feed Wants(), keyed by sweep id, filled as the header
  // comment describes (delta = true, version = `version`). A touched sweep without a delta
  // (unwanted when the writer asked, or more than Options::max_delta_jobs jobs changed) makes
  // its subscribers fall behind and ends its replayable history at this version.
  absl::flat_hash_map<std::string, v1::SweepSnapshot> deltas;
  // A job became PENDING (a new sweep, or an attempt lost and queued again): wakes the
  // pending listeners.
  bool job_became_pending = false;
};

struct ChangeFeedOptions {
  size_t subscriber_queue = 1024;             // deltas one subscriber may have waiting
  size_t replay_commits = 4096;               // commits the replay buffer keeps
  size_t replay_points = 1'000'000;           // metric points the replay buffer keeps, at most
  size_t max_delta_jobs = 2000;               // changed jobs of one sweep in one delta, at most
  absl::Duration linger = absl::Seconds(60);  // deltas kept built after the last subscriber
};

class ChangeFeed {
 public:
  using Delta = std::shared_ptr<const v1::SweepSnapshot>;  // shared by queues and the buffer

  // One subscriber's view of one sweep. Destroying it unsubscribes. Its methods may be called
  // from any thread, but Next is meant for one consumer.
  class Subscription {
   public:
    enum class Result {
      kDelta,       // *out holds the next delta
      kTimeout,     // nothing arrived within the timeout
      kFellBehind,  // deltas were lost (queue full, or a change too large): take a snapshot
                    // and subscribe again
      kClosed,      // the feed is shutting down
    };

    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    // The next delta, waiting up to `timeout` (zero: do not wait).
    Result Next(Delta* out, absl::Duration timeout);
    // Drops queued deltas with version <= `version` and ignores later ones that old (those
    // the snapshot read after Subscribe already holds).
    void SkipThrough(int64_t version);
    // Calls `notify` (on the publishing thread, no lock held) whenever a delta, a fall behind or
    // the feed's close is waiting for Next; for reactors that must not block. Replaces any
    // earlier callback; called once at once when something is already waiting.
    void SetNotify(std::function<void()> notify);

    const std::string& sweep_id() const { return sweep_id_; }

   private:
    friend class ChangeFeed;
    Subscription(ChangeFeed& feed, std::string sweep_id)
        : feed_(feed), sweep_id_(std::move(sweep_id)) {}
    // Queues `delta` or, when full, falls behind. Returns the callback to run, if any.
    std::function<void()> Offer(const Delta& delta) ABSL_LOCKS_EXCLUDED(mu_);
    std::function<void()> FallBehind() ABSL_LOCKS_EXCLUDED(mu_);
    std::function<void()> Close() ABSL_LOCKS_EXCLUDED(mu_);

    ChangeFeed& feed_;
    const std::string sweep_id_;
    absl::Mutex mu_;
    std::deque<Delta> queue_ ABSL_GUARDED_BY(mu_);
    int64_t skip_through_ ABSL_GUARDED_BY(mu_) = 0;
    bool fell_behind_ ABSL_GUARDED_BY(mu_) = false;
    bool closed_ ABSL_GUARDED_BY(mu_) = false;
    std::function<void()> notify_ ABSL_GUARDED_BY(mu_);
  };

  // `clock` (for the linger) must outlive the feed; so must every Subscription.
  explicit ChangeFeed(Clock& clock, ChangeFeedOptions options = {});
  ~ChangeFeed();  // Close()s
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // --- Subscribers -----------------------------------------------------------------------

  // Deltas of `sweep_id` from the next Publish on. The sweep need not exist yet.
  std::unique_ptr<Subscription> Subscribe(const std::string& sweep_id);
  // Deltas of `sweep_id` after `after_version` (replayed from the buffer), then live ones.
  // OutOfRange when the buffer no longer holds every delta of the sweep after that version
  // (too old, not watched then, or from before a restart) or the version is from the future:
  // the caller takes a snapshot instead.
  absl::StatusOr<std::unique_ptr<Subscription>> Resume(const std::string& sweep_id,
                                                       int64_t after_version);

  // Calls `listener` (on the publishing thread, no lock held) after each commit in which a
  // job became PENDING. For the scheduler: `listener` is typically its Kick(). Listeners are
  // never removed; add them before the store starts writing.
  void AddPendingListener(std::function<void()> listener);

  // Ends every subscription (Next returns kClosed) and refuses new ones. Idempotent.
  void Close();

  // --- The store's writer ------------------------------------------------------------------

  // Sets the version the next commit follows, when the store opens (versions survive
  // restarts, so an SSE Last-Event-ID from before one is never taken for a later change).
  void StartAt(int64_t version);
  // Whether commits touching `sweep_id` should carry deltas for it: it has a subscriber, or had
  // one within the linger.
  bool Wants(const std::string& sweep_id);
  // Hands `commit` to the subscribers of its sweeps, the replay buffer and, when a job became
  // PENDING, the pending listeners.
  void Publish(Commit commit);

  // The version of the newest Publish (or StartAt).
  int64_t version();
  const ChangeFeedOptions& options() const { return options_; }

 private:
  struct SweepState {
    absl::flat_hash_set<Subscription*> subscribers;
    // Deltas of this sweep are in the buffer for every commit after this version.
    int64_t complete_after = 0;
    absl::Time last_watched = absl::InfinitePast();
  };
  struct Retained {
    int64_t version = 0;
    std::vector<std::pair<std::string, Delta>> deltas;  // sweep id, delta
    size_t points = 0;
  };

  std::unique_ptr<Subscription> AddSubscriber(const std::string& sweep_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveSubscriber(Subscription* sub) ABSL_LOCKS_EXCLUDED(mu_);
  void Trim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Clock& clock_;
  const ChangeFeedOptions options_;

  absl::Mutex mu_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  // Versions at or before this are no longer (all) in the buffer.
  int64_t evicted_through_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Retained> buffer_ ABSL_GUARDED_BY(mu_);
  size_t buffered_points_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, SweepState> sweeps_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> pending_listeners_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_FEED_CHANGE_FEED_H_
