// What every handler of the demo shares: the configuration, the store and
// the live-updates hub. Owned through a shared_ptr held by the route
// factories and by every handler, so it outlives the last request and the
// last WebSocket. Loop-affine, like the handlers.
#pragma once

#include <memory>

#include "demo/app.hpp"
#include "demo/live.hpp"
#include "demo/store.hpp"

namespace demo {

struct Context {
  explicit Context(Config c) : config(std::move(c)), store(config.db_path, config.data_dir) {}

  Config config;
  NoteStore store;
  LiveHub hub;
};

}  // namespace demo
