// A thin RAII layer over SQLite for the coordinator's durable state: a database handle, cached
// prepared statements with typed binding, and KILN_SQLITE_CHECK, which throws kiln::Error with
// SQLite's own message. Not thread-safe: one thread (the durable writer) uses a Db at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"

// KILN_SQLITE_CHECK(db, call, "fmt", ...): `call` must return SQLITE_OK (or the codes listed in
// the caller's own check); the error carries the statement, file:line and SQLite's message.
#define KILN_SQLITE_CHECK(db, call, ...)                                                          \
  do {                                                                                            \
    int kiln_sqlite_rc_ = (call);                                                                 \
    if (kiln_sqlite_rc_ != SQLITE_OK) [[unlikely]] {                                              \
      ::kiln::throw_error(                                                                        \
          ::fmt::format(__VA_ARGS__) + ": " + ::kiln::coord::sqlite_message(db, kiln_sqlite_rc_), \
          #call, __FILE__, __LINE__);                                                             \
    }                                                                                             \
  } while (0)

namespace kiln::coord {

std::string sqlite_message(sqlite3* db, int rc);

// A prepared statement, reset after each use. Parameters are 1-based as in SQLite.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, int64_t v);
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v);
  Statement& bind(int i, std::string_view v);
  Statement& bind_blob(int i, std::string_view v);
  Statement& bind_null(int i);
  // Advances to the next row; false when done. Throws on errors.
  bool step();
  // Runs a statement that returns no rows, then resets it.
  void run();
  void reset();

  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class Db {
 public:
  // Opens (creating) the database file with WAL and synchronous=FULL.
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(std::string_view sql);
  // The cached statement for `sql` (prepared on first use), reset and ready to bind.
  Statement& prepare(const std::string& sql);
  int64_t last_insert_rowid() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> cache_;
};

}  // namespace kiln::coord
