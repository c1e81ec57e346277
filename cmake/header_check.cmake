# squall_header_check: compiles every public header under include/squall/
# alone, so a header that forgets one of its own includes breaks the build
# (Seastar's header check). One generated translation unit per header; each
# includes the header twice, which also catches a missing `#pragma once`.
#
# The object library links squall::squall like any user would, so it sees
# the same include paths, definitions and sanitizer flags; its warnings are
# the library's. testing.hpp needs GoogleTest and is skipped without it.

file(GLOB_RECURSE SQUALL_PUBLIC_HEADERS CONFIGURE_DEPENDS
  RELATIVE ${PROJECT_SOURCE_DIR}/include
  ${PROJECT_SOURCE_DIR}/include/squall/*.hpp)
list(SORT SQUALL_PUBLIC_HEADERS)

find_package(GTest QUIET)
set(_squall_hc_dir ${CMAKE_CURRENT_BINARY_DIR}/header_check)
set(_squall_hc_sources)
foreach(header IN LISTS SQUALL_PUBLIC_HEADERS)
  if(header MATCHES "^squall/testing[./]" AND NOT GTest_FOUND)
    message(STATUS "header check: skipping ${header} (GoogleTest not found)")
    continue()
  endif()
  string(REGEX REPLACE "[/.]" "_" stem ${header})
  set(tu ${_squall_hc_dir}/${stem}.cpp)
  # file(CONFIGURE) rewrites the file only when its content changes, so a
  # re-configure does not recompile every header.
  file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"${header}\"\n#include \"${header}\"\n" @ONLY)
  list(APPEND _squall_hc_sources ${tu})
endforeach()

add_library(squall_header_check OBJECT ${_squall_hc_sources})
target_link_libraries(squall_header_check PRIVATE squall::squall)
if(GTest_FOUND)
  target_link_libraries(squall_header_check PRIVATE GTest::gtest)
endif()
# Compiling is what is checked, not the code made: no optimisation.
target_compile_options(squall_header_check PRIVATE -Wall -Wextra -Wpedantic -O0)
