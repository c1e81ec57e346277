#include "demo/notes.hpp"

#include <charconv>
#include <ctime>
#include <string>

#include "demo/context.hpp"
#include "squall/web/http_error.hpp"

namespace demo {

namespace {

constexpr std::size_t kMaxBody = 10'000;

std::string format_time(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
  return text;
}

/// The note text, checked: not blank and not huge (400 otherwise).
std::string checked_body(std::string body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) throw squall::web::HTTPError(400, "empty note");
  if (body.size() > kMaxBody) throw squall::web::HTTPError(400, "note too long");
  return body;
}

/// Content types shown in the browser; anything else is downloaded, so an
/// uploaded HTML or SVG file cannot run script on this site.
bool shown_inline(const std::string& content_type) {
  return content_type == "image/png" || content_type == "image/jpeg" || content_type == "image/gif" ||
         content_type == "text/plain";
}

/// The filename for Content-Disposition: printable ASCII without quotes or
/// backslashes (header injection and quoting are then impossible).
std::string header_filename(const std::string& name) {
  std::string out;
  for (char c : name) out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '_';
  return out.empty() ? "attachment" : out;
}

}  // namespace

nlohmann::json note_json(const Note& note) {
  nlohmann::json attachment = nullptr;
  if (note.attachment) {
    attachment = {{"name", note.attachment->filename},
                  {"url", "/attachments/" + std::to_string(note.id)},
                  {"size", note.attachment->size}};
  }
  return {{"id", note.id},
          {"author", note.author},
          {"body", note.body},
          {"created", format_time(note.created_at)},
          {"attachment", attachment}};
}

squall::Future<void> NotesPageHandler::get() {
  authenticated();
  std::vector<Note> notes = co_await context().store.recent_notes(context().config.page_size);
  nlohmann::json list = nlohmann::json::array();
  for (const Note& note : notes) list.push_back(note_json(note));
  nlohmann::json data = {{"notes", list}};
  render("notes.html", data);
}

squall::Future<void> NewNoteHandler::post() {
  authenticated();
  std::string body = checked_body(get_body_argument("body", "", /*strip=*/false));
  std::optional<NewAttachment> attachment;
  const squall::http::Files& uploads = files();
  auto upload = uploads.find("attachment");
  // A form posted without choosing a file sends an empty part with no filename.
  if (upload != uploads.end() && !upload->second.empty() && !upload->second.front().filename.empty()) {
    const squall::http::HTTPFile& file = upload->second.front();
    if (file.body.size() > context().config.max_attachment_size) throw squall::web::HTTPError(413, "attachment too big");
    attachment = NewAttachment{.filename = file.filename, .content_type = file.content_type, .data = file.body};
  }
  Note note = co_await context().store.add_note(*current_user(), std::move(body), std::move(attachment));
  nlohmann::json json = note_json(note);
  context().hub.publish(json);
  auto accept = request().headers.get("Accept");
  if (accept && accept->find("application/json") != std::string_view::npos) {
    set_status(201);
    write(json);
  } else {
    redirect("/");
  }
}

squall::Future<void> NotesApiHandler::prepare() {
  // An API answers 403, not a redirect to a login page.
  if (!current_user()) throw squall::web::HTTPError(403);  // expected traffic: not logged
  co_return;
}

squall::Future<void> NotesApiHandler::get() {
  std::vector<Note> notes = co_await context().store.recent_notes(context().config.page_size);
  nlohmann::json list = nlohmann::json::array();
  for (const Note& note : notes) list.push_back(note_json(note));
  nlohmann::json answer = {{"notes", list}};
  write(answer);
}

squall::Future<void> NotesApiHandler::post() {
  nlohmann::json input = get_json_body();
  if (!input.is_object() || !input.contains("body") || !input["body"].is_string()) {
    throw squall::web::HTTPError(400, "expected {\"body\": \"...\"}");
  }
  std::string body = checked_body(input["body"].get<std::string>());
  Note note = co_await context().store.add_note(*current_user(), std::move(body), std::nullopt);
  nlohmann::json json = note_json(note);
  context().hub.publish(json);
  set_status(201);
  write(json);
}

squall::Future<void> AttachmentHandler::get() {
  authenticated();
  const std::string& id_text = path_args().at(0);
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || end != id_text.data() + id_text.size()) throw squall::web::HTTPError(404);
  std::optional<Note> note = co_await context().store.note(id);
  if (!note || !note->attachment) throw squall::web::HTTPError(404);
  std::string data = co_await context().store.read_attachment(*note->attachment);
  const Attachment& file = *note->attachment;
  bool inline_ok = shown_inline(file.content_type);
  set_header("Content-Type", inline_ok ? file.content_type : "application/octet-stream");
  set_header("Content-Disposition",
             std::string(inline_ok ? "inline" : "attachment") + "; filename=\"" + header_filename(file.filename) + "\"");
  set_header("X-Content-Type-Options", "nosniff");
  write(data);
}

}  // namespace demo
