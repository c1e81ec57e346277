// Query-string helpers: see query.hpp.
#include "query.hpp"

#include <charconv>

#include "squall/web/http_error.hpp"
#include "squall/websocket/frame.hpp"

namespace conformance {

std::optional<std::string> raw_query_argument(squall::web::RequestHandler& handler, std::string_view name) {
  const squall::http::QueryArguments& args = handler.query_arguments();
  auto it = args.find(std::string(name));
  if (it == args.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::int64_t int_argument(squall::web::RequestHandler& handler, std::string_view name, std::int64_t fallback,
                          std::int64_t min, std::int64_t max) {
  std::optional<std::string> text = raw_query_argument(handler, name);
  if (!text) return fallback;
  std::int64_t value = 0;
  const char* first = text->data();
  const char* last = first + text->size();
  // from_chars would take a leading '-': the contract wants digits only.
  bool digits = !text->empty() && text->find_first_not_of("0123456789") == std::string::npos;
  auto [end, ec] = std::from_chars(first, last, value);
  if (!digits || ec != std::errc() || end != last || value < min || value > max) {
    throw squall::web::HTTPError(400, "bad integer argument " + std::string(name));
  }
  return value;
}

bool valid_utf8(std::string_view text) noexcept { return squall::websocket::is_valid_utf8(text); }

}  // namespace conformance
