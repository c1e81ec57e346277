// Notes: the page listing them (a template), posting one from the form
// (multipart, with an optional attachment) or from the JSON API, and
// serving attachments back. Every new note is also pushed to the live hub.
#pragma once

#include <nlohmann/json.hpp>

#include "demo/auth.hpp"
#include "demo/store.hpp"

namespace demo {

/// A note as the page, the API and the WebSocket show it:
/// {"id", "author", "body", "created" ("2026-01-31 12:00 UTC"),
///  "attachment": {"name", "url", "size"} or null}.
nlohmann::json note_json(const Note& note);

/// GET /: the notes page, newest first.
class NotesPageHandler : public BaseHandler {
 public:
  squall::Future<void> get() override;
};

/// POST /notes: a note from the page's form. Redirects back to /, or
/// answers 201 with the note's JSON when the request's Accept asks for
/// JSON (for a script posting the form with fetch()).
class NewNoteHandler : public BaseHandler {
 public:
  squall::Future<void> post() override;
};

/// GET /api/notes: {"notes": [...]}; POST /api/notes with a JSON body
/// {"body": "..."}: 201 and the note. Logged-in users only (403).
class NotesApiHandler : public BaseHandler {
 public:
  squall::Future<void> prepare() override;
  squall::Future<void> get() override;
  squall::Future<void> post() override;
};

/// GET /attachments/<note id>: the note's attachment, as uploaded.
class AttachmentHandler : public BaseHandler {
 public:
  squall::Future<void> get() override;
};

}  // namespace demo
