// Query-string helpers shared by the endpoints: the contract's "integer
// argument" and raw (untrimmed) argument values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "squall/web/request_handler.hpp"

namespace conformance {

/// The last value of query argument `name`, percent-decoded but otherwise
/// as sent (not trimmed, control characters kept), or nullopt.
std::optional<std::string> raw_query_argument(squall::web::RequestHandler& handler, std::string_view name);

/// An integer argument: decimal digits only, within [min, max]; `fallback`
/// when absent. Anything else is an HTTPError(400).
std::int64_t int_argument(squall::web::RequestHandler& handler, std::string_view name, std::int64_t fallback,
                          std::int64_t min, std::int64_t max);

/// True if `text` is valid UTF-8.
bool valid_utf8(std::string_view text) noexcept;

}  // namespace conformance
