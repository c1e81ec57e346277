#include "demo/store.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "squall/core/ioloop.hpp"

namespace demo {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  author TEXT NOT NULL REFERENCES users(username),
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attachment_filename TEXT,
  attachment_content_type TEXT,
  attachment_stored_name TEXT,
  attachment_size INTEGER
);
)sql";

constexpr const char* kNoteColumns =
    "SELECT id, author, body, created_at, attachment_filename, attachment_content_type, attachment_stored_name, "
    "attachment_size FROM notes ";

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : raw) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 0x0f];
  }
  return hex;
}

}  // namespace

/// The connection and its prepared-statement helper. Touched only from the
/// store's executor thread (and by the constructor before it starts).
struct NoteStore::Db {
  sqlite3* handle = nullptr;

  ~Db() { sqlite3_close_v2(handle); }

  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(handle));
  }

  void exec(std::string_view sql) const {
    char* error = nullptr;
    if (sqlite3_exec(handle, std::string(sql).c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error != nullptr ? error : "unknown error";
      sqlite3_free(error);
      throw std::runtime_error("sqlite: " + message);
    }
  }

  /// A prepared statement, finalized on scope exit.
  class Statement {
   public:
    Statement(const Db& db, std::string_view sql) : db_(db) {
      if (sqlite3_prepare_v2(db.handle, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK) {
        db.fail("prepare");
      }
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::string_view text) {
      check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
      return *this;
    }
    Statement& bind(int index, std::int64_t value) {
      check(sqlite3_bind_int64(stmt_, index, value));
      return *this;
    }
    Statement& bind_null(int index) {
      check(sqlite3_bind_null(stmt_, index));
      return *this;
    }
    /// SQLITE_ROW or SQLITE_DONE; anything else throws (SQLITE_CONSTRAINT
    /// is returned for the caller to handle).
    int step() {
      int rc = sqlite3_step(stmt_);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT) db_.fail("step");
      return rc;
    }
    std::string text(int column) const {
      const unsigned char* p = sqlite3_column_text(stmt_, column);
      return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, column));
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

    /// The note in the current row of a kNoteColumns query.
    Note note() const {
      Note n{.id = integer(0), .author = text(1), .body = text(2), .created_at = integer(3), .attachment = {}};
      if (!is_null(6)) {
        n.attachment = Attachment{.filename = text(4), .content_type = text(5), .stored_name = text(6), .size = integer(7)};
      }
      return n;
    }

   private:
    void check(int rc) const {
      if (rc != SQLITE_OK) db_.fail("bind");
    }
    const Db& db_;
    sqlite3_stmt* stmt_ = nullptr;
  };
};

NoteStore::NoteStore(const std::string& db_path, const std::string& data_dir)
    : db_(std::make_unique<Db>()), attachments_dir_((std::filesystem::path(data_dir) / "attachments").string()) {
  std::filesystem::create_directories(attachments_dir_);
  if (sqlite3_open_v2(db_path.c_str(), &db_->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    db_->fail("cannot open " + db_path);
  }
  // Another process on the same file (a second demo) waits briefly instead of failing.
  sqlite3_busy_timeout(db_->handle, 2000);
  db_->exec("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;");
  db_->exec(kSchema);
}

NoteStore::~NoteStore() { executor_.shutdown(true); }

squall::Future<bool> NoteStore::create_user(std::string username, std::string password_hash) {
  return squall::IOLoop::current().run_in_executor(&executor_, [db = db_.get(), username = std::move(username),
                                                                 password_hash = std::move(password_hash)] {
    Db::Statement insert(*db, "INSERT INTO users (username, password_hash) VALUES (?, ?)");
    insert.bind(1, username).bind(2, password_hash);
    return insert.step() == SQLITE_DONE;  // a constraint failure: the name is taken
  });
}

squall::Future<std::optional<std::string>> NoteStore::password_hash(std::string username) {
  return squall::IOLoop::current().run_in_executor(&executor_, [db = db_.get(), username = std::move(username)] {
    Db::Statement select(*db, "SELECT password_hash FROM users WHERE username = ?");
    select.bind(1, username);
    std::optional<std::string> hash;
    if (select.step() == SQLITE_ROW) hash = select.text(0);
    return hash;
  });
}

squall::Future<Note> NoteStore::add_note(std::string author, std::string body, std::optional<NewAttachment> attachment) {
  return squall::IOLoop::current().run_in_executor(
      &executor_, [db = db_.get(), dir = attachments_dir_, author = std::move(author), body = std::move(body),
                   attachment = std::move(attachment)] {
        std::optional<Attachment> stored;
        if (attachment) {
          // The uploaded name is only shown, never used as a path.
          stored = Attachment{.filename = attachment->filename,
                              .content_type = attachment->content_type,
                              .stored_name = random_hex(16),
                              .size = static_cast<std::int64_t>(attachment->data.size())};
          std::filesystem::path path = std::filesystem::path(dir) / stored->stored_name;
          std::ofstream out(path, std::ios::binary | std::ios::trunc);
          out.write(attachment->data.data(), static_cast<std::streamsize>(attachment->data.size()));
          out.close();
          if (!out) throw std::runtime_error("cannot write " + path.string());
        }
        auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
        Db::Statement insert(*db,
                             "INSERT INTO notes (author, body, created_at, attachment_filename, "
                             "attachment_content_type, attachment_stored_name, attachment_size) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)");
        insert.bind(1, author).bind(2, body).bind(3, static_cast<std::int64_t>(now.count()));
        if (stored) {
          insert.bind(4, stored->filename).bind(5, stored->content_type).bind(6, stored->stored_name).bind(7, stored->size);
        } else {
          insert.bind_null(4).bind_null(5).bind_null(6).bind_null(7);
        }
        if (insert.step() != SQLITE_DONE) db->fail("insert note");
        return Note{.id = sqlite3_last_insert_rowid(db->handle),
                    .author = author,
                    .body = body,
                    .created_at = now.count(),
                    .attachment = stored};
      });
}

squall::Future<std::vector<Note>> NoteStore::recent_notes(int limit) {
  return squall::IOLoop::current().run_in_executor(&executor_, [db = db_.get(), limit] {
    Db::Statement select(*db, std::string(kNoteColumns) + "ORDER BY id DESC LIMIT ?");
    select.bind(1, static_cast<std::int64_t>(limit));
    std::vector<Note> notes;
    while (select.step() == SQLITE_ROW) notes.push_back(select.note());
    return notes;
  });
}

squall::Future<std::optional<Note>> NoteStore::note(std::int64_t id) {
  return squall::IOLoop::current().run_in_executor(&executor_, [db = db_.get(), id] {
    Db::Statement select(*db, std::string(kNoteColumns) + "WHERE id = ?");
    select.bind(1, id);
    std::optional<Note> found;
    if (select.step() == SQLITE_ROW) found = select.note();
    return found;
  });
}

squall::Future<std::string> NoteStore::read_attachment(Attachment attachment) {
  return squall::IOLoop::current().run_in_executor(&executor_, [dir = attachments_dir_,
                                                                 name = std::move(attachment.stored_name)] {
    std::filesystem::path path = std::filesystem::path(dir) / name;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
}

}  // namespace demo
