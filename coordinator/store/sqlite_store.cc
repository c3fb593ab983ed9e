// Opening the store, its transactions and version, sweeps, jobs and workers. The attempt
// lifecycle and metrics are in sqlite_store_attempts.cc.
#include "coordinator/store/sqlite_store.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/slot_need.h"
#include "coordinator/store/rows.h"
#include "coordinator/store/schema.h"

namespace ablate::coordinator {

using internal::Db;
using internal::Statement;

namespace {

constexpr char kInMemory[] = ":memory:";
constexpr int kBusyTimeoutMs = 5000;
// Page cache per connection, in KiB: a 100,000-job sweep is about 40 MB of table and index
// pages, and a transaction whose dirty pages outgrow the cache spills them to the WAL early and
// reads them back.
constexpr int kCacheKib = 64 * 1024;

// Asks for WAL mode and returns the journal mode the file got.
absl::StatusOr<std::string> UseWal(Db& db) {
  absl::StatusOr<Statement> wal = db.Prepare("PRAGMA journal_mode = WAL");
  if (!wal.ok()) return wal.status();
  absl::StatusOr<bool> row = wal->Step();
  if (!row.ok()) return row.status();
  return wal->Text(0);
}

absl::StatusOr<std::unique_ptr<Db>> OpenWriter(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  if ((*db)->ReadOnly()) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": the database file is read-only to this process (uid ", geteuid(),
                     "); the coordinator writes it, so give it a file it may write"));
  }
  absl::StatusOr<std::string> mode = UseWal(**db);
  if (!mode.ok()) return mode.status();
  if (*mode != "wal" && path != kInMemory) {
    ABLATE_LOG(WARNING) << "sqlite refused WAL mode; reads will wait for writes path=" << path
                        << " journal_mode=" << *mode;
  }
  absl::Status pragmas = (*db)->Exec(
      absl::StrCat("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = ",
                   kBusyTimeoutMs, "; PRAGMA cache_size = -", kCacheKib));
  if (!pragmas.ok()) return pragmas;
  // The writer checkpoints after answering a group's writes (GroupWriter).
  (*db)->DeferCheckpoints();
  if (absl::Status migrate = internal::Migrate(**db); !migrate.ok()) return migrate;
  return db;
}

absl::StatusOr<std::unique_ptr<Db>> OpenReader(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path, /*create=*/false);
  if (!db.ok()) return db.status();
  absl::Status pragmas =
      (*db)->Exec(absl::StrCat("PRAGMA query_only = ON; PRAGMA busy_timeout = ", kBusyTimeoutMs,
                               "; PRAGMA cache_size = -", kCacheKib));
  if (!pragmas.ok()) return pragmas;
  return db;
}

// A sweep from a row of (id, spec, created_at), with its counts, state and ended_at.
absl::StatusOr<v1::Sweep> SweepFromRow(Db& db, const Statement& row) {
  v1::Sweep sweep;
  sweep.set_id(row.Text(0));
  const absl::string_view spec = row.Blob(1);
  if (!sweep.mutable_spec()->ParseFromArray(spec.data(), static_cast<int>(spec.size()))) {
    return absl::DataLossError(absl::StrCat("sweep ", sweep.id(), ": stored spec does not parse"));
  }
  *sweep.mutable_created_at() = internal::TimestampOf(row.Int(2));
  if (absl::Status read = internal::ReadProgress(db, spec, sweep); !read.ok()) return read;
  return sweep;
}

absl::Status SweepExists(Db& db, const std::string& sweep_id) {
  absl::StatusOr<Statement> query = db.Prepare("SELECT 1 FROM sweeps WHERE id = ?1");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, sweep_id).Step();
  if (!found.ok()) return found.status();
  return *found ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("unknown sweep ", sweep_id));
}

// Runs `jobs` (selecting kJobColumns) and appends each row to `out`.
absl::Status ReadJobs(Statement& jobs, std::vector<v1::Job>& out) {
  return jobs.ForEachRow([&](const Statement& row) {
    absl::StatusOr<v1::Job> job = internal::JobFromRow(row);
    if (!job.ok()) return job.status();
    out.push_back(*std::move(job));
    return absl::OkStatus();
  });
}

// Appends the page of the sweep's jobs `query` asks for to `out`. Walks jobs_by_sweep from
// start_index, so a page costs its own rows (and the rows a state filter skips). Several
// states are one walk: the page is the first `limit` jobs in any of them.
absl::Status ReadJobPage(Db& db, const std::string& sweep_id, const JobQuery& query,
                         std::vector<v1::Job>& out) {
  constexpr int kFirstState = 4;  // the states' parameters: ?4, ?5, ...
  std::vector<std::string> states;
  for (size_t i = 0; i < query.states.size(); ++i) {
    states.push_back(absl::StrCat("?", kFirstState + i));
  }
  absl::StatusOr<Statement> jobs = db.Prepare(absl::StrCat(
      "SELECT ", internal::kJobColumns, " FROM jobs WHERE sweep_id = ?1 AND idx >= ?2",
      states.empty() ? "" : absl::StrCat(" AND state IN (", absl::StrJoin(states, ", "), ")"),
      " ORDER BY idx LIMIT ?3"));
  if (!jobs.ok()) return jobs.status();
  jobs->Bind(1, sweep_id)
      .Bind(2, int64_t{query.start_index})
      .Bind(3, query.limit > 0 ? int64_t{query.limit} : int64_t{-1});
  for (size_t i = 0; i < query.states.size(); ++i) {
    jobs->Bind(kFirstState + static_cast<int>(i), int64_t{query.states[i]});
  }
  return ReadJobs(*jobs, out);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, Clock& clock,
                                                   StoreOptions options) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path, clock, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(*std::move(store));
}

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               Clock& clock, StoreOptions options) {
  auto writer = std::make_unique<Connection>();
  absl::StatusOr<std::unique_ptr<Db>> writer_db = OpenWriter(path);
  if (!writer_db.ok()) return writer_db.status();
  writer->db = *std::move(writer_db);
  std::unique_ptr<Connection> reader;
  if (path != kInMemory) {
    reader = std::make_unique<Connection>();
    absl::StatusOr<std::unique_ptr<Db>> reader_db = OpenReader(path);
    if (!reader_db.ok()) return reader_db.status();
    reader->db = *std::move(reader_db);
  }
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(clock, options, std::move(writer), std::move(reader)));
  if (absl::Status loaded = store->writer_.LoadVersion(); !loaded.ok()) return loaded;
  return store;
}

SqliteStore::SqliteStore(Clock& clock, StoreOptions options, std::unique_ptr<Connection> writer,
                         std::unique_ptr<Connection> reader)
    : clock_(clock),
      options_(options),
      writer_connection_(std::move(writer)),
      owned_reader_(std::move(reader)),
      reader_(owned_reader_ != nullptr ? owned_reader_.get() : writer_connection_.get()),
      writer_(*writer_connection_, options_.feed, clock, options_.max_batch_rows,
              options_.checkpoint_pages) {}

SqliteStore::~SqliteStore() = default;

absl::Status SqliteStore::Read(absl::FunctionRef<absl::Status(Db&)> body) {
  absl::MutexLock lock(&reader_->mu);
  absl::StatusOr<internal::Transaction> transaction =
      internal::Transaction::Begin(*reader_->db, /*write=*/false);
  if (!transaction.ok()) return transaction.status();
  if (absl::Status status = body(*reader_->db); !status.ok()) return status;
  return transaction->Commit();
}

int64_t SqliteStore::NowMicros() const { return absl::ToUnixMicros(clock_.Now()); }

int64_t SqliteStore::Version() { return writer_.version(); }

int64_t SqliteStore::WaitForChange(int64_t seen, absl::Duration timeout) {
  return writer_.WaitForChange(seen, timeout);
}

// --- Sweeps and jobs ------------------------------------------------------------------------

absl::Status SqliteStore::CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                                      uint32_t max_attempts, absl::FunctionRef<void()> meanwhile) {
  const int64_t now = NowMicros();
  const int64_t created_at =
      sweep.has_created_at() ? absl::ToUnixMicros(FromProto(sweep.created_at())) : now;
  internal::SpecRows specs(jobs);
  return Write(
      [&](Db& db, internal::Changes& changes) -> absl::Status {
        // A job id already stored refuses the sweep after some rows went in: undo them.
        absl::StatusOr<internal::Savepoint> savepoint = internal::Savepoint::Begin(db);
        if (!savepoint.ok()) return savepoint.status();
        absl::StatusOr<Statement> insert_sweep =
            db.Prepare("INSERT INTO sweeps (id, name, spec, created_at) VALUES (?1, ?2, ?3, ?4)");
        if (!insert_sweep.ok()) return insert_sweep.status();
        absl::Status inserted = insert_sweep->Bind(1, sweep.id())
                                    .Bind(2, sweep.spec().name())
                                    .BindBlob(3, sweep.spec().SerializeAsString())
                                    .Bind(4, created_at)
                                    .Run();
        if (absl::IsAlreadyExists(inserted)) {
          return absl::AlreadyExistsError(absl::StrCat("sweep ", sweep.id(), " already exists"));
        }
        if (!inserted.ok()) return inserted;
        absl::Status jobs_inserted =
            internal::InsertPendingJobs(db, sweep.id(), jobs, specs, max_attempts, now, nullptr);
        if (!jobs_inserted.ok()) return jobs_inserted;
        if (absl::Status released = savepoint->Release(); !released.ok()) return released;
        changes.NewSweep(sweep.id());
        return absl::OkStatus();
      },
      static_cast<int64_t>(jobs.size()) + 1,
      [&] {
        specs.Serialize();
        meanwhile();
      });
}

absl::StatusOr<v1::Sweep> SqliteStore::GetSweep(const std::string& sweep_id) {
  v1::Sweep out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query =
        db.Prepare("SELECT id, spec, created_at FROM sweeps WHERE id = ?1");
    if (!query.ok()) return query.status();
    absl::StatusOr<bool> found = query->Bind(1, sweep_id).Step();
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(absl::StrCat("unknown sweep ", sweep_id));
    absl::StatusOr<v1::Sweep> sweep = SweepFromRow(db, *query);
    if (!sweep.ok()) return sweep.status();
    out = *std::move(sweep);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<v1::Sweep>> SqliteStore::ListSweeps() {
  std::vector<v1::Sweep> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    // Rowids follow insertion, so the newest sweep has the largest.
    absl::StatusOr<Statement> query =
        db.Prepare("SELECT id, spec, created_at FROM sweeps ORDER BY rowid DESC");
    if (!query.ok()) return query.status();
    return query->ForEachRow([&](const Statement& row) {
      absl::StatusOr<v1::Sweep> sweep = SweepFromRow(db, row);
      if (!sweep.ok()) return sweep.status();
      out.push_back(*std::move(sweep));
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::ListJobs(const std::string& sweep_id) {
  std::vector<v1::Job> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    if (absl::Status exists = SweepExists(db, sweep_id); !exists.ok()) return exists;
    absl::StatusOr<Statement> query = db.Prepare(absl::StrCat(
        "SELECT ", internal::kJobColumns, " FROM jobs WHERE sweep_id = ?1 ORDER BY idx"));
    if (!query.ok()) return query.status();
    query->Bind(1, sweep_id);
    return ReadJobs(*query, out);
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::ListJobs(const std::string& sweep_id,
                                                           const JobQuery& query) {
  std::vector<v1::Job> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    if (absl::Status exists = SweepExists(db, sweep_id); !exists.ok()) return exists;
    return ReadJobPage(db, sweep_id, query, out);
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<v1::SweepSnapshot> SqliteStore::Snapshot(const std::string& sweep_id,
                                                        const JobQuery& jobs) {
  v1::SweepSnapshot out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query =
        db.Prepare("SELECT id, spec, created_at FROM sweeps WHERE id = ?1");
    if (!query.ok()) return query.status();
    absl::StatusOr<bool> found = query->Bind(1, sweep_id).Step();
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(absl::StrCat("unknown sweep ", sweep_id));
    absl::StatusOr<v1::Sweep> sweep = SweepFromRow(db, *query);
    if (!sweep.ok()) return sweep.status();
    *out.mutable_sweep() = *std::move(sweep);
    query->Reset();
    std::vector<v1::Job> page;
    if (absl::Status read = ReadJobPage(db, sweep_id, jobs, page); !read.ok()) return read;
    for (v1::Job& job : page) *out.add_jobs() = std::move(job);
    absl::StatusOr<Statement> version = db.Prepare("SELECT version FROM meta WHERE id = 0");
    if (!version.ok()) return version.status();
    absl::StatusOr<bool> row = version->Step();
    if (!row.ok()) return row.status();
    out.set_version(*row ? version->Int(0) : 0);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<v1::Job> SqliteStore::GetJob(const std::string& job_id) {
  std::vector<v1::Job> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query =
        db.Prepare(absl::StrCat("SELECT ", internal::kJobColumns, " FROM jobs WHERE id = ?1"));
    if (!query.ok()) return query.status();
    query->Bind(1, job_id);
    return ReadJobs(*query, out);
  });
  if (!status.ok()) return status;
  if (out.empty()) return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
  return std::move(out.front());
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::PendingJobs(int limit) {
  std::vector<v1::Job> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    // Walks jobs_by_state, whose entries end in the rowid: oldest sweep first, then expansion
    // order, without a sort.
    absl::StatusOr<Statement> query = db.Prepare(absl::StrCat(
        "SELECT ", internal::kJobColumns, " FROM jobs WHERE state = ?1 ORDER BY rowid LIMIT ?2"));
    if (!query.ok()) return query.status();
    query->Bind(1, int64_t{v1::JOB_STATE_PENDING}).Bind(2, int64_t{limit});
    return ReadJobs(*query, out);
  });
  if (!status.ok()) return status;
  return out;
}

// --- Workers --------------------------------------------------------------------------------

SqliteStore::Body SqliteStore::UpsertWorkerBody(const v1::WorkerInfo& info, bool connected) {
  return [this, id = info.worker_id(), bytes = info.SerializeAsString(), connected](
             Db& db, internal::Changes&) -> absl::Status {
    // A disconnect keeps the slots last reported; a connect after a disconnect restarts
    // connected_at. SET reads the row's values from before the update.
    absl::StatusOr<Statement> upsert = db.Prepare(
        "INSERT INTO workers (id, info, connected, connected_at, last_seen) "
        "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO UPDATE SET "
        "info = CASE WHEN ?3 THEN excluded.info ELSE info END, "
        "connected_at = CASE WHEN ?3 AND NOT connected THEN excluded.connected_at "
        "ELSE connected_at END, "
        "connected = excluded.connected, last_seen = excluded.last_seen");
    if (!upsert.ok()) return upsert.status();
    return upsert->Bind(1, id)
        .BindBlob(2, bytes)
        .Bind(3, int64_t{connected})
        .Bind(4, NowMicros())
        .Run();
  };
}

absl::Status SqliteStore::UpsertWorker(const v1::WorkerInfo& info, bool connected) {
  return Write(UpsertWorkerBody(info, connected));
}

void SqliteStore::UpsertWorkerAsync(const v1::WorkerInfo& info, bool connected, WriteDone done) {
  writer_.Submit(UpsertWorkerBody(info, connected), 1, std::move(done));
}

void SqliteStore::TouchWorkerAsync(const std::string& worker_id, WriteDone done) {
  writer_.Submit(
      [this, worker_id](Db& db, internal::Changes&) -> absl::Status {
        absl::StatusOr<Statement> touch =
            db.Prepare("UPDATE workers SET last_seen = ?2 WHERE id = ?1");
        if (!touch.ok()) return touch.status();
        if (absl::Status run = touch->Bind(1, worker_id).Bind(2, NowMicros()).Run(); !run.ok()) {
          return run;
        }
        if (db.Changes() == 0)
          return absl::NotFoundError(absl::StrCat("unknown worker ", worker_id));
        return absl::OkStatus();
      },
      1, std::move(done));
}

absl::StatusOr<std::vector<v1::Worker>> SqliteStore::ListWorkers() {
  std::vector<v1::Worker> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    // Workers gone for longer than the retention are forgotten from the live view.
    absl::StatusOr<Statement> workers = db.Prepare(
        "SELECT id, info, connected, connected_at, last_seen FROM workers "
        "WHERE connected OR last_seen >= ?1 ORDER BY id");
    if (!workers.ok()) return workers.status();
    workers->Bind(1, absl::ToUnixMicros(clock_.Now() - options_.worker_retention));
    absl::flat_hash_map<std::string, size_t> index;
    absl::Status read = workers->ForEachRow([&](const Statement& row) {
      v1::Worker& worker = out.emplace_back();
      const absl::string_view info = row.Blob(1);
      if (!worker.mutable_info()->ParseFromArray(info.data(), static_cast<int>(info.size()))) {
        return absl::DataLossError(absl::StrCat("worker ", row.Text(0), ": info does not parse"));
      }
      worker.set_connected(row.Int(2) != 0);
      *worker.mutable_connected_at() = internal::TimestampOf(row.Int(3));
      *worker.mutable_last_seen() = internal::TimestampOf(row.Int(4));
      worker.set_free_slots(worker.info().slots_size());
      index[row.Text(0)] = out.size() - 1;
      return absl::OkStatus();
    });
    if (!read.ok()) return read;
    absl::StatusOr<Statement> jobs = db.Prepare(
        "SELECT worker_id, id, sweep_id, idx, spec FROM jobs WHERE state IN (?1, ?2) "
        "ORDER BY rowid");
    if (!jobs.ok()) return jobs.status();
    jobs->Bind(1, int64_t{v1::JOB_STATE_ASSIGNED}).Bind(2, int64_t{v1::JOB_STATE_RUNNING});
    return jobs->ForEachRow([&](const Statement& row) {
      auto it = index.find(row.Text(0));
      if (it == index.end()) return absl::OkStatus();
      v1::Worker& worker = out[it->second];
      worker.add_job_ids(row.Text(1));
      absl::StatusOr<v1::JobSpec> spec =
          internal::JobSpecFromRow(row.Blob(4), row.Text(1), row.Text(2), row.Int(3));
      if (!spec.ok()) return spec.status();
      const uint32_t held = SlotNeedOf(*spec).count;
      worker.set_free_slots(worker.free_slots() - std::min(held, worker.free_slots()));
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return out;
}

}  // namespace ablate::coordinator
