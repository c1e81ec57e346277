#include "demo/live.hpp"

#include "demo/context.hpp"
#include "squall/web/http_error.hpp"

namespace demo {

void LiveHub::publish(const nlohmann::json& note) {
  nlohmann::json message = {{"type", "note"}, {"note", note}};
  squall::websocket::PreparedMessage prepared(message.dump(), false);
  for (NotesSocket* socket : sockets_) {
    // A socket that is closing fails the write; nobody needs to hear about it.
    socket->write_message(prepared);
  }
}

std::optional<std::string> NotesSocket::get_current_user() { return get_signed_cookie("user"); }

squall::Future<void> NotesSocket::prepare() {
  // Before the handshake, so an anonymous page gets a plain 403, not a socket.
  if (!current_user()) throw squall::web::HTTPError(403);  // expected traffic: not logged
  co_return;
}

squall::Future<void> NotesSocket::open() {
  context_->hub.sockets_.insert(this);
  registered_ = true;
  co_return;
}

squall::Future<void> NotesSocket::on_message(squall::websocket::Message) { co_return; }

void NotesSocket::on_close() {
  if (registered_) context_->hub.sockets_.erase(this);
  registered_ = false;
}

}  // namespace demo
