// /ws/echo and /ws/chat (contract section 4) on squall's WebSocketHandler,
// which does the handshake checks (400/426/403/405), frame validation
// (1002/1007/1009), ping/pong and the close handshake. Both accept
// permessage-deflate when the client offers it.
#include <algorithm>
#include <optional>
#include <vector>

#include "conformance.hpp"
#include "squall/websocket/handler.hpp"

namespace conformance {
namespace {

using squall::Future;
using squall::websocket::Message;
using squall::websocket::WebSocketHandler;

/// A handler that accepts permessage-deflate.
class CompressingHandler : public WebSocketHandler {
 public:
  std::optional<squall::websocket::CompressionOptions> get_compression_options() override {
    return squall::websocket::CompressionOptions{};
  }
};

// 4.3: every message back, same type, empty ones included.
class EchoSocket : public CompressingHandler {
 public:
  Future<void> on_message(Message message) override {
    co_await write_message(std::move(message.data), message.binary);
  }
};

/// The members of the chat, in joining order. Loop-affine (the app has one
/// loop). A handler lives until after its on_close, so plain pointers are
/// safe between open() and on_close().
class ChatRoom {
 public:
  void join(WebSocketHandler* member) { members_.push_back(member); }
  void leave(WebSocketHandler* member) { std::erase(members_, member); }
  /// Queues `message` on every member's connection. The frames are queued
  /// at once, in call order, so one sender's messages reach everyone in
  /// order; a member that is gone fails its write, which nobody waits for.
  void broadcast(const Message& message) {
    squall::websocket::PreparedMessage prepared(message.data, message.binary);
    // A copy: the list must not change under the loop, whatever a write does.
    std::vector<WebSocketHandler*> members = members_;
    for (WebSocketHandler* member : members) {
      if (!member->is_closing()) (void)member->write_message(prepared);
    }
  }

 private:
  std::vector<WebSocketHandler*> members_;
};

ChatRoom& chat_room() {
  static ChatRoom room;
  return room;
}

// 4.4: a member from its handshake until it closes or drops.
class ChatSocket : public CompressingHandler {
 public:
  Future<void> open() override {
    chat_room().join(this);
    co_return;
  }
  Future<void> on_message(Message message) override {
    chat_room().broadcast(message);
    co_return;
  }
  void on_close() override { chat_room().leave(this); }
};

}  // namespace

std::vector<squall::web::Rule> websocket_rules() {
  using squall::web::handler;
  return {
      {"/ws/echo", handler<EchoSocket>()},
      {"/ws/chat", handler<ChatSocket>()},
  };
}

}  // namespace conformance
