#include "demo/app.hpp"

#include <stdexcept>
#include <vector>

#include <openssl/rand.h>

#include "demo/auth.hpp"
#include "demo/context.hpp"
#include "demo/live.hpp"
#include "demo/notes.hpp"
#include "squall/web/static_file_handler.hpp"

namespace demo {

std::string default_template_path() { return SQUALL_DEMO_SOURCE_DIR "/templates"; }
std::string default_static_path() { return SQUALL_DEMO_SOURCE_DIR "/static"; }

std::string random_secret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 0x0f];
  }
  return hex;
}

std::unique_ptr<squall::web::Application> make_application(Config config) {
  squall::web::Settings settings;
  settings.cookie_secret = squall::web::CookieSecret(config.cookie_secret.empty() ? random_secret()
                                                                                  : config.cookie_secret);
  settings.xsrf_cookies = true;  // every POST carries the _xsrf token (form field or X-XSRFToken)
  settings.login_url = "/login";
  settings.template_path = config.template_path;
  squall::web::use_static_files(settings, config.static_path);  // /static/..., static_url() with ?v=<hash>

  auto context = std::make_shared<Context>(std::move(config));
  std::vector<squall::web::Rule> rules = {
      {"/", squall::web::handler<NotesPageHandler>(context)},
      {"/signup", squall::web::handler<SignupHandler>(context)},
      {"/login", squall::web::handler<LoginHandler>(context)},
      {"/logout", squall::web::handler<LogoutHandler>(context)},
      {"/notes", squall::web::handler<NewNoteHandler>(context)},
      {"/attachments/([0-9]+)", squall::web::handler<AttachmentHandler>(context)},
      {"/api/notes", squall::web::handler<NotesApiHandler>(context)},
      {"/ws/notes", squall::web::handler<NotesSocket>(context)},
  };
  return std::make_unique<squall::web::Application>(std::move(rules), std::move(settings));
}

}  // namespace demo
