// NoteStore: the demo's users and notes in SQLite, and the attachments'
// bytes in files under the data directory. SQLite calls block, so every one
// runs on the store's own single-thread executor: the one connection is
// used from that thread only, one call at a time, and the loop never waits.
// Call the methods on the loop thread; their Futures resolve there.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "squall/core/executor.hpp"
#include "squall/core/future.hpp"

namespace demo {

/// A file attached to a note. The bytes live in `<data dir>/attachments/<stored_name>`.
struct Attachment {
  std::string filename{};      // as uploaded (shown to users, never used as a path)
  std::string content_type{};  // as uploaded
  std::string stored_name{};   // random hex
  std::int64_t size{0};
};

struct Note {
  std::int64_t id{0};
  std::string author{};
  std::string body{};
  std::int64_t created_at{0};  // Unix time, seconds
  std::optional<Attachment> attachment{};
};

/// An upload to store with a new note.
struct NewAttachment {
  std::string filename{};
  std::string content_type{};
  std::string data{};
};

class NoteStore {
 public:
  /// Opens (creating if needed) the database at `db_path` and the
  /// directory `data_dir`/attachments. Blocking: call at startup, before
  /// the loop serves. Throws std::runtime_error if either cannot be opened.
  NoteStore(const std::string& db_path, const std::string& data_dir);
  /// Waits for queued calls, then closes the database.
  ~NoteStore();
  NoteStore(const NoteStore&) = delete;
  NoteStore& operator=(const NoteStore&) = delete;

  /// Adds a user; resolves false if the name is taken.
  squall::Future<bool> create_user(std::string username, std::string password_hash);
  /// The stored password hash of `username`, or nullopt for no such user.
  squall::Future<std::optional<std::string>> password_hash(std::string username);
  /// Stores a note (and its attachment's bytes) and resolves with it.
  squall::Future<Note> add_note(std::string author, std::string body, std::optional<NewAttachment> attachment);
  /// The newest notes first, at most `limit`.
  squall::Future<std::vector<Note>> recent_notes(int limit);
  /// One note, or nullopt.
  squall::Future<std::optional<Note>> note(std::int64_t id);
  /// The bytes of a note's attachment. Throws std::runtime_error if the
  /// file is gone.
  squall::Future<std::string> read_attachment(Attachment attachment);

 private:
  struct Db;
  std::unique_ptr<Db> db_;
  std::string attachments_dir_;
  // Declared last, destroyed first: its worker is joined before db_ closes.
  squall::ThreadPoolExecutor executor_{1};
};

}  // namespace demo
