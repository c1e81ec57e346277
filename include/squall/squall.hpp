// The whole public surface of squall in one include, for applications and
// examples. Library code includes the narrowest header it needs instead.
// Test support (squall/testing.hpp) is separate: it needs GoogleTest.
#pragma once

#include "squall/core/callback.hpp"
#include "squall/core/clock.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/executor.hpp"
#include "squall/core/future.hpp"
#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/locks.hpp"
#include "squall/core/log.hpp"
#include "squall/core/periodic_callback.hpp"
#include "squall/core/queues.hpp"
#include "squall/core/unique_fd.hpp"
