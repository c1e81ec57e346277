// POST /form (contract 3.6): urlencoded and multipart/form-data bodies,
// answered as {"fields": {...}, "files": [...]} with each file's SHA-256.
// The multipart body goes through squall's streaming MultipartParser, so
// file parts are hashed without being copied.
#include <nlohmann/json.hpp>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "bounded_body.hpp"
#include "conformance.hpp"
#include "query.hpp"
#include "sha256.hpp"
#include "squall/http/body_arguments.hpp"
#include "squall/http/url.hpp"
#include "squall/web/http_error.hpp"

namespace conformance {
namespace {

using squall::web::HTTPError;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// The value of parameter `name` of a header value ("type; a=1; b=\"2\""),
/// quotes kept, or nullopt.
std::optional<std::string_view> header_parameter(std::string_view value, std::string_view name) {
  std::size_t semi = value.find(';');
  while (semi != std::string_view::npos) {
    value.remove_prefix(semi + 1);
    std::size_t next = value.find(';');
    std::string_view param = trim(value.substr(0, next));
    std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && lower(trim(param.substr(0, eq))) == name) return trim(param.substr(eq + 1));
    semi = next;
  }
  return std::nullopt;
}

/// Collects the fields and files of a multipart body as the parser finds them.
class FormCollector : public squall::http::MultipartDelegate {
 public:
  void part_begin(const squall::http::MultipartPart& part) override {
    // A part is a file when it has a filename parameter, even an empty one.
    std::string_view disposition = part.headers.get("Content-Disposition", "");
    in_file_ = header_parameter(disposition, "filename").has_value();
    name_ = part.name;
    if (in_file_) {
      file_ = nlohmann::json{{"name", part.name}, {"filename", part.filename}, {"content_type", part.content_type}};
      sha_.emplace();
      size_ = 0;
    } else {
      value_.clear();
    }
  }
  void part_data(std::string_view chunk) override {
    if (in_file_) {
      sha_->update(chunk);
      size_ += chunk.size();
    } else {
      value_.append(chunk);
    }
  }
  void part_end() override {
    if (in_file_) {
      file_["size"] = size_;
      file_["sha256"] = sha_->hex_digest();
      files_.push_back(std::move(file_));
    } else {
      if (!valid_utf8(value_)) throw HTTPError(400, "field value is not UTF-8");
      fields_[name_].push_back(value_);
    }
  }

  nlohmann::json result() && {
    return nlohmann::json{{"fields", std::move(fields_)}, {"files", std::move(files_)}};
  }

 private:
  nlohmann::json fields_ = nlohmann::json::object();
  nlohmann::json files_ = nlohmann::json::array();
  nlohmann::json file_;
  std::optional<Sha256> sha_;
  std::string name_;
  std::string value_;
  std::uint64_t size_ = 0;
  bool in_file_ = false;
};

nlohmann::json parse_multipart(std::string_view content_type, std::string_view body) {
  std::optional<std::string_view> boundary = header_parameter(content_type, "boundary");
  if (!boundary || boundary->empty()) throw HTTPError(400, "multipart without a boundary");
  std::string_view bare = *boundary;
  if (bare.size() >= 2 && bare.front() == '"' && bare.back() == '"') bare = bare.substr(1, bare.size() - 2);
  // The contract wants the body to start with the boundary (no preamble).
  if (body.substr(0, 2) != "--" || body.substr(2, bare.size()) != bare) {
    throw HTTPError(400, "body does not start with the boundary");
  }
  FormCollector collector;
  try {
    squall::http::MultipartParser parser(bare, collector);
    parser.feed(body);
    parser.finish();
  } catch (const squall::http::HTTPInputError& e) {
    throw HTTPError(400, std::string("malformed multipart body: ") + e.what());
  }
  return std::move(collector).result();
}

nlohmann::json parse_urlencoded(std::string_view body) {
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& [name, values] : squall::http::parse_qs(body, /*keep_blank_values=*/true)) {
    if (!valid_utf8(name)) throw HTTPError(400, "field name is not UTF-8");
    nlohmann::json& list = fields[name] = nlohmann::json::array();
    for (const std::string& value : values) {
      if (!valid_utf8(value)) throw HTTPError(400, "field value is not UTF-8");
      list.push_back(value);
    }
  }
  return nlohmann::json{{"fields", std::move(fields)}, {"files", nlohmann::json::array()}};
}

class FormHandler : public BoundedBodyHandler {
 public:
  using BoundedBodyHandler::BoundedBodyHandler;
  squall::Future<void> post() override {
    std::string_view content_type = request().headers.get("Content-Type", "");
    std::string media = lower(trim(content_type.substr(0, content_type.find(';'))));
    if (media == "application/x-www-form-urlencoded") {
      write(parse_urlencoded(request().body));
    } else if (media == "multipart/form-data") {
      write(parse_multipart(content_type, request().body));
    } else {
      throw HTTPError(415);
    }
    co_return;
  }
};

}  // namespace

std::vector<squall::web::Rule> form_rules(const Config& config) {
  return {{"/form", squall::web::handler<FormHandler>(config.max_body_size)}};
}

}  // namespace conformance
