#include "squall/websocket/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include "squall/websocket/frame.hpp"

namespace squall::websocket {

namespace {

constexpr std::string_view kExtensionName = "permessage-deflate";
constexpr char kTail[] = {'\x00', '\x00', '\xff', '\xff'};  // RFC 7692 section 7.2.1

bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

/// A recursive-descent reader over one header value.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;

  void skip_ows() noexcept {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  }
  bool eat(char c) noexcept {
    skip_ows();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool at_end() noexcept {
    skip_ows();
    return i >= s.size();
  }
  std::optional<std::string> token() {
    skip_ows();
    std::size_t start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    if (i == start) return std::nullopt;
    return std::string(s.substr(start, i - start));
  }
  std::optional<std::string> quoted() {
    // RFC 9110 quoted-string; RFC 6455 section 9.1 then wants a token inside.
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    ++i;
    std::string out;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        if (++i >= s.size()) return std::nullopt;
      }
      out.push_back(s[i++]);
    }
    if (i >= s.size()) return std::nullopt;
    ++i;
    if (out.empty() || !std::all_of(out.begin(), out.end(), is_tchar)) return std::nullopt;
    return out;
  }
};

/// A window-bits value: "8".."15", no leading zeros (RFC 7692 section 7.1.2).
std::optional<int> window_bits(const std::optional<std::string>& value) {
  if (!value || value->empty() || value->size() > 2) return std::nullopt;
  if ((*value)[0] == '0') return std::nullopt;
  int n = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return std::nullopt;
  return n;
}

int clamp_bits(int bits) noexcept { return std::clamp(bits, 9, 15); }

/// The parameters of a permessage-deflate element, checked for repeats and
/// unknown names. `need_value_for_client_bits` is true in responses.
struct Parsed {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool client_max_window_bits = false;       // present
  std::optional<int> client_max_window_bits_value;
};

std::optional<Parsed> parse_params(const ExtensionOffer& offer, bool response) {
  Parsed p;
  bool seen[4] = {};
  for (const auto& [name, value] : offer.params) {
    if (name == "server_no_context_takeover") {
      if (seen[0] || value) return std::nullopt;
      seen[0] = true;
      p.server_no_context_takeover = true;
    } else if (name == "client_no_context_takeover") {
      if (seen[1] || value) return std::nullopt;
      seen[1] = true;
      p.client_no_context_takeover = true;
    } else if (name == "server_max_window_bits") {
      if (seen[2]) return std::nullopt;
      seen[2] = true;
      p.server_max_window_bits = window_bits(value);
      if (!p.server_max_window_bits) return std::nullopt;
    } else if (name == "client_max_window_bits") {
      if (seen[3]) return std::nullopt;
      seen[3] = true;
      p.client_max_window_bits = true;
      if (value) {
        p.client_max_window_bits_value = window_bits(value);
        if (!p.client_max_window_bits_value) return std::nullopt;
      } else if (response) {
        return std::nullopt;  // a response must give the value
      }
    } else {
      return std::nullopt;
    }
  }
  return p;
}

}  // namespace

std::optional<std::vector<ExtensionOffer>> parse_extensions(std::string_view header) {
  std::vector<ExtensionOffer> out;
  Cursor c{header};
  for (;;) {
    if (c.at_end()) break;
    if (c.eat(',')) continue;  // empty list elements are allowed (RFC 9110 section 5.6.1)
    auto name = c.token();
    if (!name) return std::nullopt;
    ExtensionOffer offer;
    offer.name = std::move(*name);
    while (c.eat(';')) {
      auto pname = c.token();
      if (!pname) return std::nullopt;
      std::optional<std::string> value;
      if (c.eat('=')) {
        c.skip_ows();
        if (c.i < c.s.size() && c.s[c.i] == '"') {
          value = c.quoted();
        } else {
          value = c.token();
        }
        if (!value) return std::nullopt;
      }
      offer.params.emplace_back(std::move(*pname), std::move(value));
    }
    out.push_back(std::move(offer));
    if (c.at_end()) break;
    if (!c.eat(',')) return std::nullopt;
  }
  return out;
}

std::optional<DeflateAgreement> accept_deflate_offer(std::span<const ExtensionOffer> offers,
                                                     const CompressionOptions& options) {
  for (const ExtensionOffer& offer : offers) {
    if (offer.name != kExtensionName) continue;
    auto parsed = parse_params(offer, false);
    if (!parsed) continue;  // declined; maybe a later offer is acceptable
    DeflateAgreement a;
    DeflateParameters& p = a.params;
    a.response = kExtensionName;
    p.server_no_context_takeover = parsed->server_no_context_takeover || options.server_no_context_takeover;
    p.client_no_context_takeover = parsed->client_no_context_takeover || options.client_no_context_takeover;
    if (p.server_no_context_takeover) a.response += "; server_no_context_takeover";
    if (p.client_no_context_takeover) a.response += "; client_no_context_takeover";
    // Our window: at most what the client allows (RFC 7692 section 7.1.2.1).
    int ours = clamp_bits(options.server_max_window_bits);
    if (parsed->server_max_window_bits) ours = std::min(ours, *parsed->server_max_window_bits);
    p.server_max_window_bits = ours;
    if (parsed->server_max_window_bits || ours < 15) {
      a.response += "; server_max_window_bits=" + std::to_string(ours);
    }
    // Theirs: only when the client said it can honour a limit (7.1.2.2).
    if (parsed->client_max_window_bits) {
      int theirs = std::min(clamp_bits(options.client_max_window_bits), parsed->client_max_window_bits_value.value_or(15));
      p.client_max_window_bits = theirs;
      if (theirs < 15 || parsed->client_max_window_bits_value) {
        a.response += "; client_max_window_bits=" + std::to_string(theirs);
      }
    } else {
      p.client_max_window_bits = 15;
    }
    return a;
  }
  return std::nullopt;
}

std::string deflate_offer(const CompressionOptions& options) {
  std::string offer(kExtensionName);
  if (options.server_no_context_takeover) offer += "; server_no_context_takeover";
  if (options.client_no_context_takeover) offer += "; client_no_context_takeover";
  int server_bits = clamp_bits(options.server_max_window_bits);
  if (server_bits < 15) offer += "; server_max_window_bits=" + std::to_string(server_bits);
  int client_bits = clamp_bits(options.client_max_window_bits);
  offer += "; client_max_window_bits";
  if (client_bits < 15) offer += "=" + std::to_string(client_bits);
  return offer;
}

DeflateParameters accept_deflate_response(const ExtensionOffer& response, const CompressionOptions& options) {
  if (response.name != kExtensionName) throw WebSocketError("unexpected extension in the response: " + response.name);
  auto parsed = parse_params(response, true);
  if (!parsed) throw WebSocketError("invalid permessage-deflate parameters in the response");
  DeflateParameters p;
  p.server_no_context_takeover = parsed->server_no_context_takeover;
  p.client_no_context_takeover = parsed->client_no_context_takeover || options.client_no_context_takeover;
  int asked_server = clamp_bits(options.server_max_window_bits);
  if (parsed->server_max_window_bits) {
    if (asked_server < 15 && *parsed->server_max_window_bits > asked_server) {
      throw WebSocketError("server_max_window_bits larger than offered");
    }
    p.server_max_window_bits = *parsed->server_max_window_bits;
  } else {
    p.server_max_window_bits = asked_server < 15 ? asked_server : 15;
  }
  int offered_client = clamp_bits(options.client_max_window_bits);
  if (parsed->client_max_window_bits_value) {
    if (*parsed->client_max_window_bits_value > offered_client) {
      throw WebSocketError("client_max_window_bits larger than offered");
    }
    p.client_max_window_bits = *parsed->client_max_window_bits_value;
  } else {
    p.client_max_window_bits = offered_client;
  }
  return p;
}

// --- compressor -----------------------------------------------------------------------------

struct DeflateCompressor::State {
  z_stream z{};
  int window_bits;
  int level;
  int mem_level;
  bool initialised = false;
  ~State() {
    if (initialised) deflateEnd(&z);
  }
};

DeflateCompressor::DeflateCompressor(int window_bits, bool no_context_takeover, int level, int mem_level)
    : state_(std::make_unique<State>()), no_context_takeover_(no_context_takeover) {
  if (window_bits < 9 || window_bits > 15) throw std::invalid_argument("deflate window bits must be 9..15");
  if (level < -1 || level > 9) throw std::invalid_argument("compression level must be -1..9");
  if (mem_level < 1 || mem_level > 9) throw std::invalid_argument("mem level must be 1..9");
  state_->window_bits = window_bits;
  state_->level = level;
  state_->mem_level = mem_level;
}

DeflateCompressor::~DeflateCompressor() = default;

void DeflateCompressor::compress(std::string_view message, std::string& out) {
  State& s = *state_;
  if (!s.initialised) {
    // Lazily: a connection that never sends never pays for the state
    // (about 256 KiB at the default window and mem level).
    if (deflateInit2(&s.z, s.level, Z_DEFLATED, -s.window_bits, s.mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::bad_alloc();
    }
    s.initialised = true;
  }
  std::size_t start = out.size();
  s.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  s.z.avail_in = static_cast<uInt>(message.size());
  std::size_t step = message.size() + message.size() / 8 + 64;
  for (;;) {
    std::size_t old = out.size();
    out.resize(old + step);
    s.z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    s.z.avail_out = static_cast<uInt>(step);
    int rc = deflate(&s.z, Z_SYNC_FLUSH);
    out.resize(old + step - s.z.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
    if (s.z.avail_in == 0 && s.z.avail_out != 0) break;
    step = std::max<std::size_t>(step, 1024) * 2;
  }
  // A sync flush ends with an empty stored block, 00 00 ff ff: drop it.
  if (out.size() - start >= 4 && std::string_view(out).substr(out.size() - 4) == std::string_view(kTail, 4)) {
    out.resize(out.size() - 4);
  }
  // zlib emits nothing for a sync flush right after another one (an empty
  // message with context takeover): send the one-byte empty block instead,
  // which the receiver completes with the tail (RFC 7692 section 7.2.3.6).
  if (out.size() == start) out.push_back('\x00');
  if (no_context_takeover_) deflateReset(&s.z);
}

// --- decompressor ---------------------------------------------------------------------------

struct DeflateDecompressor::State {
  z_stream z{};
  int window_bits;
  bool initialised = false;
  ~State() {
    if (initialised) inflateEnd(&z);
  }
};

DeflateDecompressor::DeflateDecompressor(int window_bits, bool no_context_takeover)
    : state_(std::make_unique<State>()), no_context_takeover_(no_context_takeover) {
  state_->window_bits = std::clamp(window_bits, 8, 15);
}

DeflateDecompressor::~DeflateDecompressor() = default;

void DeflateDecompressor::reset() noexcept {
  if (state_->initialised) inflateReset(&state_->z);
  ended_ = false;
}

DeflateDecompressor::Status DeflateDecompressor::inflate_some(const char* data, std::size_t size, std::string& out,
                                                              std::size_t limit) {
  State& s = *state_;
  if (!s.initialised) {
    if (inflateInit2(&s.z, -s.window_bits) != Z_OK) throw std::bad_alloc();
    s.initialised = true;
  }
  if (size == 0) return Status::kOk;
  // After a final block (RFC 7692 section 7.2.3.4) the rest of the
  // message is padding toward the tail the sender dropped: ignored.
  if (ended_) return Status::kOk;
  s.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  s.z.avail_in = static_cast<uInt>(size);
  // Output room grows geometrically but never past limit + 1 bytes: one
  // byte more than allowed is enough to know the message is too big.
  std::size_t step = std::max<std::size_t>(256, size * 4);
  for (;;) {
    std::size_t room = limit >= out.size() ? limit - out.size() + 1 : 1;
    std::size_t give = std::min(step, room);
    std::size_t old = out.size();
    out.resize(old + give);
    s.z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    s.z.avail_out = static_cast<uInt>(give);
    int rc = inflate(&s.z, Z_SYNC_FLUSH);
    out.resize(old + give - s.z.avail_out);
    if (out.size() > limit) {
      out.resize(limit);
      return Status::kTooBig;
    }
    if (rc == Z_STREAM_END) {
      ended_ = true;
      return Status::kOk;
    }
    if (rc == Z_BUF_ERROR) {
      if (s.z.avail_in == 0) return Status::kOk;  // needs more input
      if (s.z.avail_out != 0) return Status::kError;
    } else if (rc != Z_OK) {
      return Status::kError;
    }
    if (s.z.avail_in == 0 && s.z.avail_out != 0) return Status::kOk;
    step *= 2;
  }
}

DeflateDecompressor::Status DeflateDecompressor::feed(std::string_view input, std::string& out, std::size_t limit) {
  return inflate_some(input.data(), input.size(), out, limit);
}

DeflateDecompressor::Status DeflateDecompressor::finish(std::string& out, std::size_t limit) {
  Status st = Status::kOk;
  if (ended_) {
    // The sender ended the DEFLATE stream inside the message (BFINAL): the
    // next message starts a new one.
    inflateReset(&state_->z);
    ended_ = false;
    return st;
  }
  st = inflate_some(kTail, sizeof kTail, out, limit);
  if (ended_ || no_context_takeover_) {
    inflateReset(&state_->z);
    ended_ = false;
  }
  return st;
}

}  // namespace squall::websocket
