// UniqueFunction: a move-only callable with small-buffer storage, so posting
// a callback, arming a timer or registering a continuation does not allocate
// when the callable is small (a lambda capturing up to 48 bytes).
// Not thread-affine by itself; whoever owns it decides.
#pragma once

#include <cstddef>

#include "squall/core/detail/inline_function.hpp"

namespace squall {

/// Like `std::move_only_function` (C++23): accepts move-only lambdas.
///
///   UniqueFunction<void()> f = [p = std::make_unique<int>(1)] { use(*p); };
///   f();
template <class Signature>
using UniqueFunction = detail::InlineFunction<Signature, 48, alignof(std::max_align_t)>;

/// What the loop runs: a callback taking nothing.
using Callback = UniqueFunction<void()>;

}  // namespace squall
