// Live updates: the hub that knows every open notes page's WebSocket, and
// the handler of /ws/notes. A new note is framed once and pushed to all of
// them. Loop-affine: one hub per loop, used from its thread only.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "squall/websocket/handler.hpp"

namespace demo {

struct Context;
class NotesSocket;

class LiveHub {
 public:
  /// Sends `note` as {"type": "note", "note": {...}} to every open socket.
  void publish(const nlohmann::json& note);
  std::size_t size() const noexcept { return sockets_.size(); }

 private:
  friend class NotesSocket;
  // Plain pointers: a socket adds itself in open() and removes itself in
  // on_close(), and a WebSocketHandler lives until after on_close().
  std::set<NotesSocket*> sockets_;
};

/// GET /ws/notes: logged-in users only (the signed `user` cookie, checked
/// before the upgrade: 403 otherwise); the default same-origin check.
class NotesSocket : public squall::websocket::WebSocketHandler {
 public:
  void initialize(const std::shared_ptr<Context>& context) { context_ = context; }

  std::optional<std::string> get_current_user() override;
  squall::Future<void> prepare() override;
  squall::Future<void> open() override;
  /// Pages only listen; whatever they send is ignored.
  squall::Future<void> on_message(squall::websocket::Message message) override;
  void on_close() override;

 private:
  std::shared_ptr<Context> context_;
  bool registered_ = false;
};

}  // namespace demo
