// The notes board's application: its configuration and the factory that
// wires routes, settings, the store and the live-updates hub together.
// This is what main.cpp serves and what tests/apps/demo_test.cpp tests.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "demo/password.hpp"
#include "squall/web/application.hpp"

namespace demo {

/// The templates/ and static/ folders beside the demo's sources (found
/// through a compile definition, so the binary runs from any directory).
std::string default_template_path();
std::string default_static_path();

struct Config {
  /// The SQLite database file (created if missing).
  std::string db_path{"demo.db"};
  /// Uploaded attachments go to `<data_dir>/attachments/`.
  std::string data_dir{"demo-data"};
  std::string template_path{default_template_path()};
  std::string static_path{default_static_path()};
  /// The key of signed cookies and XSRF tokens; empty: a random one (every
  /// session ends when the process restarts).
  std::string cookie_secret{};
  /// PBKDF2 iterations of new password hashes (tests lower it).
  int password_iterations{kDefaultPasswordIterations};
  /// Largest attachment accepted; larger uploads get 413.
  std::size_t max_attachment_size{5 * 1024 * 1024};
  /// Newest notes shown on the page and returned by GET /api/notes.
  int page_size{50};
};

/// The Application serving `config`. Opens the store (blocking: call before
/// the loop serves, on the loop thread that will run it). The store and the
/// hub are shared by the Application's handlers and live as long as they do.
/// Routes:
///   GET  /signup, POST /signup      sign-up form
///   GET  /login,  POST /login       login form (?next=)
///   POST /logout
///   GET  /                          the notes page (logged in)
///   POST /notes                     new note from the form (multipart, optional attachment)
///   GET  /attachments/<id>          a note's attachment
///   GET  /api/notes, POST /api/notes  JSON API (X-XSRFToken header for POST)
///   GET  /ws/notes                  WebSocket: every new note, as JSON
///   /static/...                     style.css, app.js (versioned URLs)
std::unique_ptr<squall::web::Application> make_application(Config config);

/// A random 32-byte key, hex-encoded (the cookie secret when none is given).
std::string random_secret();

}  // namespace demo
