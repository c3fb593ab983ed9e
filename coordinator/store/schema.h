// The store's schema and its migrations. The database records its version in PRAGMA
// user_version; opening it runs, each in its own transaction, every migration past that
// version, so an older file is brought up to date and a newer one is refused.
#ifndef ABLATE_COORDINATOR_STORE_SCHEMA_H_
#define ABLATE_COORDINATOR_STORE_SCHEMA_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/store/sqlite_db.h"

namespace ablate::coordinator::internal {

// The version this binary writes: the number of migrations it knows.
int CurrentSchemaVersion();

// The version `db`'s file records (0 for a new file).
absl::StatusOr<int> SchemaVersion(Db& db);

// Brings `db` to CurrentSchemaVersion(). FailedPrecondition when the file's version is newer.
absl::Status Migrate(Db& db);
// Brings `db` to `to_version` only (at most CurrentSchemaVersion()), as an older release left
// its files: for tests of the migrations that follow.
absl::Status Migrate(Db& db, int to_version);

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_SCHEMA_H_
