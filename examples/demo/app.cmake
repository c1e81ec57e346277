# The demo's application code as a static library (everything but main.cpp).
# Included by examples/demo/CMakeLists.txt, and by tests/CMakeLists.txt when
# examples are not built, so apps_demo_test always has it.
if(NOT TARGET squall_demo_app)
  find_package(SQLite3 REQUIRED)
  set(_demo_dir ${CMAKE_CURRENT_LIST_DIR})
  add_library(squall_demo_app STATIC
    ${_demo_dir}/app.cpp
    ${_demo_dir}/auth.cpp
    ${_demo_dir}/live.cpp
    ${_demo_dir}/notes.cpp
    ${_demo_dir}/password.cpp
    ${_demo_dir}/store.cpp)
  target_include_directories(squall_demo_app PUBLIC ${_demo_dir}/..)
  target_link_libraries(squall_demo_app PUBLIC squall::squall PRIVATE SQLite::SQLite3)
  target_compile_options(squall_demo_app PRIVATE -Wall -Wextra)
  # Templates and static files are found in the source tree by default, so
  # the binary runs from anywhere (`make demo` runs it from the repo root).
  target_compile_definitions(squall_demo_app PRIVATE SQUALL_DEMO_SOURCE_DIR="${_demo_dir}")
endif()
