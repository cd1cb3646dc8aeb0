// RAII over SQLite handles and statements for the coordinator's state database.
#include "launcher/coordinator/sqlite_db.h"

#include "core/log.h"

namespace kiln::coord {

std::string sqlite_message(sqlite3* db, int rc) {
  const char* detail = db ? sqlite3_errmsg(db) : nullptr;
  return fmt::format("{} (SQLite code {}: {})", detail ? detail : sqlite3_errstr(rc), rc,
                     sqlite3_errstr(rc));
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db), sql_(sql) {
  KILN_SQLITE_CHECK(
      db_, sqlite3_prepare_v2(db_, sql_.data(), static_cast<int>(sql_.size()), &stmt_, nullptr),
      "cannot prepare SQL '{}'", sql_);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, int64_t v) {
  KILN_SQLITE_CHECK(db_, sqlite3_bind_int64(stmt_, i, v), "bind {} of '{}'", i, sql_);
  return *this;
}

Statement& Statement::bind(int i, double v) {
  KILN_SQLITE_CHECK(db_, sqlite3_bind_double(stmt_, i, v), "bind {} of '{}'", i, sql_);
  return *this;
}

Statement& Statement::bind(int i, std::string_view v) {
  KILN_SQLITE_CHECK(
      db_, sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT),
      "bind {} of '{}'", i, sql_);
  return *this;
}

Statement& Statement::bind_blob(int i, std::string_view v) {
  KILN_SQLITE_CHECK(
      db_, sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT),
      "bind {} of '{}'", i, sql_);
  return *this;
}

Statement& Statement::bind_null(int i) {
  KILN_SQLITE_CHECK(db_, sqlite3_bind_null(stmt_, i), "bind {} of '{}'", i, sql_);
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite_message(db_, rc);
  sqlite3_reset(stmt_);
  KILN_FAIL("SQL '{}' failed: {}", sql_, msg);
}

void Statement::run() {
  step();
  reset();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::real(int col) const { return sqlite3_column_double(stmt_, col); }
bool Statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::string Statement::text(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

Db::Db(const std::string& path) : path_(path) {
  int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = sqlite_message(db_, rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    KILN_FAIL(
        "cannot open the coordinator database {}: {}; check that the state folder is "
        "writable",
        path, msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  // WAL: readers never block the writer, and a commit appends to one file. synchronous=FULL
  // fsyncs the WAL at every commit, so an acknowledged write survives a power loss too, not only
  // a killed process; the durable writer groups concurrent requests into one commit to keep the
  // fsync count low.
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
}

Db::~Db() {
  cache_.clear();
  if (db_ && sqlite3_close_v2(db_) != SQLITE_OK) {
    KILN_LOG_WARN("coord", "closing {}: {}", path_, sqlite3_errmsg(db_));
  }
}

void Db::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    KILN_FAIL("SQL '{}' on {} failed: {} (code {})", s, path_, msg, rc);
  }
}

Statement& Db::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<Statement>(db_, sql)).first;
  } else {
    it->second->reset();
  }
  return *it->second;
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

}  // namespace kiln::coord
