// squall side of the core event-loop benchmark: registers
// squall/post_callback, squall/timer_fire, squall/timer_cancel,
// squall/cross_thread_post, squall/coro_sync_call and squall/coro_roundtrip.
// Placeholder until the squall side is written; see peers/uv_core.cpp and
// peers/asio_core.cpp for the shape each case must share with the peers
// (kBatch operations per iteration, SetItemsProcessed per operation,
// UseRealTime).
