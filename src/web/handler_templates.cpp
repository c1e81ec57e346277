// RequestHandler's JSON and template output (Tornado's write(dict), render,
// render_string, get_template_namespace), and the JSON body helper: the
// one source that includes the whole of nlohmann/json.
#include <nlohmann/json.hpp>

#include "squall/web/application.hpp"
#include "squall/web/escape.hpp"
#include "squall/web/request_handler.hpp"
#include "squall/web/template.hpp"

namespace squall::web {

void RequestHandler::write(const nlohmann::json& value) {
  if (finished_) throw std::logic_error("Cannot write() after finish()");
  json_encode_into(write_buffer_, value);
  set_header("Content-Type", "application/json; charset=UTF-8");
}

nlohmann::json RequestHandler::get_json_body() {
  try {
    return json_decode(request_->body);
  } catch (const JSONDecodeError& e) {
    throw HTTPError(400, std::string("Invalid JSON body: ") + e.what(), "Invalid JSON body");
  }
}

void RequestHandler::get_template_namespace(nlohmann::json& data, TemplateNamespace& functions) {
  const auto& user = current_user();
  data["current_user"] = user ? nlohmann::json(*user) : nlohmann::json(nullptr);
  const http::HTTPServerRequest& r = *request_;
  data["request"] = {
      {"method", r.method},       {"uri", r.uri},   {"path", r.path},           {"query", r.query},
      {"host", r.host},           {"remote_ip", r.remote_ip}, {"protocol", r.protocol},
  };
  functions["xsrf_form_html"] = [this](const FunctionArgs& args) -> nlohmann::json {
    args.expect(0, 0);
    return xsrf_form_html();
  };
  functions["static_url"] = [this](const FunctionArgs& args) -> nlohmann::json {
    args.expect(1, 2, {"include_host"});
    const nlohmann::json* include_host = args.get(1, "include_host");
    return static_url(args[0].get<std::string>(), include_host && include_host->get<bool>());
  };
  functions["reverse_url"] = [this](const FunctionArgs& args) -> nlohmann::json {
    args.expect(1, 16);
    std::vector<std::string> rest;
    for (std::size_t i = 1; i < args.size(); ++i) {
      rest.push_back(args[i].is_string() ? args[i].get<std::string>() : args[i].dump());
    }
    return reverse_url_list(args[0].get<std::string>(), rest);
  };
}

std::string RequestHandler::render_string(std::string_view name) { return render_string(name, nlohmann::json::object()); }

std::string RequestHandler::render_string(std::string_view name, const nlohmann::json& data) {
  BaseLoader& loader = application_->template_loader(get_template_path());
  Template t = loader.load(name);
  nlohmann::json ns = nlohmann::json::object();
  TemplateNamespace functions;
  get_template_namespace(ns, functions);
  if (data.is_object()) {
    for (const auto& [key, value] : data.items()) ns[key] = value;
  } else if (!data.is_null()) {
    throw std::invalid_argument("render: template data must be a JSON object");
  }
  return t.generate(ns, &functions);
}

void RequestHandler::render(std::string_view name) { render(name, nlohmann::json::object()); }

void RequestHandler::render(std::string_view name, const nlohmann::json& data) {
  if (finished_) throw std::logic_error("Cannot render() after finish()");
  std::string html = render_string(name, data);
  write(html);
  finish();
}

}  // namespace squall::web
