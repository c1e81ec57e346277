#include "squall/websocket/connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "squall/core/log.hpp"

namespace squall::websocket {

namespace {

using EventKind = MessageReader::EventKind;

/// A failed Future whose failure is not logged if nobody looks (a
/// fire-and-forget broadcast to a client that left is not an error).
Future<void> closed_failure() {
  Future<void> f;
  f.set_exception(std::make_exception_ptr(WebSocketClosedError()));
  (void)f.exception();
  return f;
}

std::unique_ptr<DeflateCompressor> make_compressor(Role role, const std::optional<DeflateParameters>& p,
                                                   const CompressionOptions& c) {
  if (!p) return nullptr;
  int bits = role == Role::kServer ? p->server_max_window_bits : p->client_max_window_bits;
  bool no_takeover = role == Role::kServer ? p->server_no_context_takeover : p->client_no_context_takeover;
  // zlib cannot compress with an 8-bit raw window: such a connection sends
  // its messages uncompressed, which RFC 7692 allows.
  if (bits < 9) return nullptr;
  return std::make_unique<DeflateCompressor>(bits, no_takeover, c.compression_level, c.mem_level);
}

std::unique_ptr<DeflateDecompressor> make_decompressor(Role role, const std::optional<DeflateParameters>& p) {
  if (!p) return nullptr;
  int bits = role == Role::kServer ? p->client_max_window_bits : p->server_max_window_bits;
  bool no_takeover = role == Role::kServer ? p->client_no_context_takeover : p->server_no_context_takeover;
  return std::make_unique<DeflateDecompressor>(bits, no_takeover);
}

/// Payloads at least this big are written as their own chunk after the
/// header instead of being copied behind it.
constexpr std::size_t kZeroCopyThreshold = 16 * 1024;

}  // namespace

PreparedMessage::PreparedMessage(std::string_view payload, bool binary) : binary_(binary) {
  auto frame = std::make_shared<std::string>();
  frame->reserve(kMaxFrameHeader + payload.size());
  append_frame_header(*frame, binary ? Opcode::kBinary : Opcode::kText, true, false, payload.size());
  header_ = frame->size();
  frame->append(payload);
  frame_ = std::move(frame);
}

WebSocketConnection::WebSocketConnection(std::unique_ptr<net::IOStream> stream, Role role, WebSocketOptions options,
                                         std::optional<DeflateParameters> deflate,
                                         const CompressionOptions& compression)
    : WebSocketConnection(*stream, role, options, deflate, compression) {
  owned_ = std::move(stream);
}

WebSocketConnection::WebSocketConnection(net::IOStream& stream, Role role, WebSocketOptions options,
                                         std::optional<DeflateParameters> deflate,
                                         const CompressionOptions& compression)
    : stream_(&stream),
      loop_(&stream.io_loop()),
      role_(role),
      options_(options),
      deflate_(deflate),
      compressor_(make_compressor(role, deflate, compression)),
      decompressor_(make_decompressor(role, deflate)),
      reader_(role, options.max_message_size, decompressor_.get()),
      writer_(role, compressor_.get()) {
  // Messages are small and latency matters: no Nagle (Tornado does the same).
  if (!stream_->closed()) {
    try {
      stream_->set_nodelay(true);
    } catch (const std::exception&) {
      // A unix socket has no Nagle to turn off.
    }
  }
}

WebSocketConnection::~WebSocketConnection() { cancel_timers(); }

void WebSocketConnection::start(ConnectionDelegate* delegate) {
  loop_->assert_in_loop_thread();
  if (started_) throw std::logic_error("WebSocketConnection::start called twice");
  started_ = true;
  delegate_ = delegate;
  last_received_ = loop_->time();
  if (owned_) {
    // The stream's close callback is deferred and may outlive us: it finds
    // its way back through a weak reference.
    stream_->set_close_callback([w = weak_from_this()] {
      if (auto self = w.lock()) self->stream_closed();
    });
  }
  schedule_ping();
  run(shared_from_this());
}

// --- reading ------------------------------------------------------------------------------------

// `self` keeps the connection alive for as long as the loop runs.
Future<void> WebSocketConnection::run([[maybe_unused]] std::shared_ptr<WebSocketConnection> self) {
  for (;;) {
    if (stream_->closed()) break;
    if (draining_ || close_received_) {
      // After the close frame (or a protocol error) nothing more is read:
      // input is dropped until TCP closes, by us (server, failure) or by
      // the server (client), or the close timer gives up.
      stream_->consume(stream_->buffered().size());
      bool ended = false;
      try {
        co_await stream_->read_more();
      } catch (const std::exception&) {
        ended = true;  // end of input or a reset: reported below
      }
      if (ended) break;
      continue;
    }
    MessageReader::Event e = reader_.feed(stream_->buffered());
    stream_->consume(e.consumed);
    switch (e.kind) {
      case EventKind::kNeedMore: {
        bool ended = false;
        try {
          co_await stream_->read_more();
        } catch (const std::exception&) {
          ended = true;  // end of input or a reset: reported below
        }
        if (ended) goto done;
        break;
      }
      case EventKind::kMessage: {
        last_received_ = loop_->time();
        Message message = reader_.take_message();
        if (!delegate_) break;
        std::exception_ptr error;
        try {
          pending_message_ = delegate_->on_message(std::move(message));
        } catch (...) {
          error = std::current_exception();
        }
        if (!error && pending_message_.valid()) {
          try {
            co_await pending_message_;
          } catch (const CancelledError&) {
            // The connection closed while the handler was busy (see on_stream_closed).
          } catch (...) {
            error = std::current_exception();
          }
        }
        pending_message_ = Future<void>(nullptr);
        if (error) {
          // Tornado's _run_callback: log and drop the connection.
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& ex) {
            log::app().error("Uncaught exception in WebSocket on_message: {}", ex.what());
          } catch (...) {
            log::app().error("Uncaught exception in WebSocket on_message");
          }
          abort();
        }
        break;
      }
      case EventKind::kPing:
        last_received_ = loop_->time();
        if (!close_sent_) {
          std::string pong;
          writer_.frame_control(pong, Opcode::kPong, e.text);
          send(std::move(pong));
        }
        if (delegate_) call_delegate([&](ConnectionDelegate& d) { d.on_ping(e.text); }, "on_ping");
        break;
      case EventKind::kPong:
        last_received_ = loop_->time();
        if (delegate_) call_delegate([&](ConnectionDelegate& d) { d.on_pong(e.text); }, "on_pong");
        break;
      case EventKind::kClose:
        last_received_ = loop_->time();
        close_received_ = true;
        if (e.code != close_code::kNoStatus) close_code_ = e.code;
        close_reason_.assign(e.text);
        if (!close_sent_) {
          // Echo the code (RFC 6455 section 5.5.1), or an empty close.
          close_sent_ = true;
          std::string frame;
          writer_.frame_close(frame, close_code_, {});
          send(std::move(frame));
        }
        if (role_ == Role::kServer) {
          close_after_flush();
        } else {
          arm_close_timer();  // the server closes TCP; we wait for it, not forever
        }
        break;
      case EventKind::kError:
        log::general().info("WebSocket protocol error from {}: {} (closing with {})", peer(), e.text, e.code);
        fail(e.code, e.text);
        break;
    }
  }
done:
  finish_close();
}

void WebSocketConnection::stream_closed() {
  // A handler still busy with a message learns it at its current co_await
  // (DESIGN: handler coroutines whose client left are cancelled); run()
  // then ends and reports the close, so on_message and on_connection_close
  // never overlap.
  if (pending_message_.valid() && !pending_message_.done()) pending_message_.cancel();
}

template <class F>
void WebSocketConnection::call_delegate(F&& fn, const char* what) {
  try {
    fn(*delegate_);
  } catch (const std::exception& ex) {
    log::app().error("Uncaught exception in WebSocket {}: {}", what, ex.what());
  }
}

std::string WebSocketConnection::peer() const {
  if (!stream_) return "peer";
  try {
    return stream_->peer_name();
  } catch (const std::exception&) {
    return "peer";
  }
}

void WebSocketConnection::finish_close() {
  if (closed_) return;
  closed_ = true;
  cancel_timers();
  if (!stream_->closed()) stream_->close();
  if (!owned_) stream_ = nullptr;  // its owner may destroy it from now on
  ConnectionDelegate* d = delegate_;
  delegate_ = nullptr;
  if (d) {
    try {
      d->on_connection_close();
    } catch (const std::exception& ex) {
      log::app().error("Uncaught exception in WebSocket on_close: {}", ex.what());
    }
  }
  if (closed_future_.valid() && !closed_future_.done()) closed_future_.set_result();
}

Future<void> WebSocketConnection::wait_closed() {
  if (closed_) return make_ready_future();
  if (!closed_future_.valid()) closed_future_ = Future<void>();
  return closed_future_;
}

// --- writing ------------------------------------------------------------------------------------

bool WebSocketConnection::is_closing() const noexcept {
  return close_sent_ || close_received_ || draining_ || closed_ || !stream_open();
}

Future<void> WebSocketConnection::track(Future<void> write) {
  if (write.done()) {
    if (write.exception()) return closed_failure();
    return write;
  }
  last_write_ = write;
  // Report a connection lost while the frame waited as WebSocketClosedError
  // (a plain Future and a callback: no coroutine frame per write).
  Future<void> out;
  write.add_done_callback([out](Future<void> done) mutable {
    if (out.done()) return;
    if (done.exception()) {
      out.set_exception(std::make_exception_ptr(WebSocketClosedError()));
      (void)out.exception();
    } else {
      out.set_result();
    }
  });
  return out;
}

Future<void> WebSocketConnection::send(std::string frame) {
  if (!stream_open()) return closed_failure();
  return track(stream_->write(std::move(frame)));
}

Future<void> WebSocketConnection::write_message(std::string_view message, bool binary) {
  loop_->assert_in_loop_thread();
  if (is_closing()) return closed_failure();
  std::string frame;
  writer_.frame_message(frame, message, binary);
  return send(std::move(frame));
}

Future<void> WebSocketConnection::write_message(std::string&& message, bool binary) {
  loop_->assert_in_loop_thread();
  if (is_closing()) return closed_failure();
  if (role_ == Role::kServer && !compressor_ && message.size() >= kZeroCopyThreshold) {
    // The header and the payload go out as two chunks of one writev.
    std::string header;
    append_frame_header(header, binary ? Opcode::kBinary : Opcode::kText, true, false, message.size());
    stream_->write(std::move(header));
    return send(std::move(message));
  }
  std::string frame;
  writer_.frame_message(frame, message, binary);
  return send(std::move(frame));
}

Future<void> WebSocketConnection::write_message(const PreparedMessage& message) {
  loop_->assert_in_loop_thread();
  if (role_ != Role::kServer) throw std::logic_error("a PreparedMessage is for server connections");
  if (is_closing()) return closed_failure();
  if (compressor_) {
    std::string frame;
    writer_.frame_message(frame, message.payload(), message.binary());
    return send(std::move(frame));
  }
  return track(stream_->write(message.frame()));
}

Future<void> WebSocketConnection::ping(std::string_view data) {
  loop_->assert_in_loop_thread();
  if (data.size() > kMaxControlPayload) throw std::invalid_argument("ping payload longer than 125 bytes");
  if (is_closing()) return closed_failure();
  std::string frame;
  writer_.frame_control(frame, Opcode::kPing, data);
  return send(std::move(frame));
}

// --- closing ------------------------------------------------------------------------------------

void WebSocketConnection::close(std::optional<int> code, std::string_view reason) {
  loop_->assert_in_loop_thread();
  if (code && !is_valid_close_code(*code)) {
    throw std::invalid_argument("invalid WebSocket close code " + std::to_string(*code));
  }
  if (reason.size() > kMaxCloseReason) throw std::invalid_argument("close reason longer than 123 bytes");
  if (!code && !reason.empty()) throw std::invalid_argument("a close reason needs a close code");
  if (closed_ || !stream_open()) return;
  if (!close_sent_) {
    close_sent_ = true;
    std::string frame;
    writer_.frame_close(frame, code, reason);
    send(std::move(frame));
  }
  if (close_received_ && role_ == Role::kServer) {
    close_after_flush();
  } else {
    arm_close_timer();
  }
}

void WebSocketConnection::fail(int code, std::string_view why) {
  draining_ = true;
  if (!close_sent_ && stream_open()) {
    close_sent_ = true;
    std::string frame;
    writer_.frame_close(frame, code, why.substr(0, std::min(why.size(), kMaxCloseReason)));
    send(std::move(frame));
  }
  close_after_flush();
}

void WebSocketConnection::abort() {
  if (stream_open()) stream_->close();  // run() sees it and winds down
}

void WebSocketConnection::close_after_flush() {
  if (!stream_open()) return;
  arm_close_timer();  // in case the peer never reads what is queued
  if (!stream_->writing()) {
    stream_->close();
    return;
  }
  // Writes complete in order: once the last one is out, everything is.
  // Closed from a fresh callback, not inside the stream's own flush.
  last_write_.add_done_callback([w = weak_from_this()] {
    auto self = w.lock();
    if (!self) return;
    self->loop_->add_callback([w] {
      if (auto s = w.lock()) s->abort();
    });
  });
}

void WebSocketConnection::arm_close_timer() {
  if (close_timer_.valid() || closed_) return;
  close_timer_ = loop_->call_later(options_.close_timeout, [w = weak_from_this()] {
    auto self = w.lock();
    if (!self) return;
    self->close_timer_ = {};
    self->abort();
  });
}

// --- keep-alive ---------------------------------------------------------------------------------

void WebSocketConnection::schedule_ping() {
  if (options_.ping_interval <= Duration::zero() || closed_) return;
  ping_timer_ = loop_->call_later(options_.ping_interval, [w = weak_from_this()] {
    auto self = w.lock();
    if (!self) return;
    self->ping_timer_ = {};
    self->on_ping_timer();
  });
}

void WebSocketConnection::on_ping_timer() {
  if (is_closing()) return;
  TimePoint now = loop_->time();
  Duration interval = options_.ping_interval;
  Duration timeout = options_.ping_timeout > Duration::zero()
                         ? options_.ping_timeout
                         : std::max<Duration>(3 * interval, std::chrono::seconds(30));
  // Tornado's periodic_ping: the previous ping must be recent (the loop was
  // not just stalled) for silence since then to count against the peer.
  if (last_ping_ != TimePoint{} && now - last_ping_ < 2 * interval && now - last_received_ > timeout) {
    log::general().info("WebSocket peer {} did not answer pings for {} ms; closing", peer(),
                        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_received_).count());
    close();
    return;
  }
  ping();
  last_ping_ = now;
  schedule_ping();
}

void WebSocketConnection::cancel_timers() noexcept {
  if (close_timer_.valid()) {
    loop_->remove_timeout(close_timer_);
    close_timer_ = {};
  }
  if (ping_timer_.valid()) {
    loop_->remove_timeout(ping_timer_);
    ping_timer_ = {};
  }
}

}  // namespace squall::websocket
