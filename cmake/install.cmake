# install(): the library, public headers, an exported CMake package
# (find_package(squall) gives squall::squall) and a pkg-config file.
include(CMakePackageConfigHelpers)

set(SQUALL_INSTALL_TARGETS squall)
set(SQUALL_INSTALLS_TESTING OFF)
if(TARGET squall_testing)
  list(APPEND SQUALL_INSTALL_TARGETS squall_testing)
  set(SQUALL_INSTALLS_TESTING ON)
endif()
install(TARGETS ${SQUALL_INSTALL_TARGETS} EXPORT squallTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/squall DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# pkg-config modules squall links to, as in src/CMakeLists.txt: public ones
# (their types appear in squall's headers) and private ones. A static
# libsquall needs the private ones at link time even with plain
# `pkg-config --libs squall`, so they become requirements there; a shared
# one needs them only for `pkg-config --static`.
set(SQUALL_PC_PUBLIC "openssl nlohmann_json")
set(SQUALL_PC_PRIVATE "spdlog fmt libcares zlib libcurl libbrotlienc")
get_target_property(_squall_type squall TYPE)
if(_squall_type STREQUAL "SHARED_LIBRARY")
  set(SQUALL_SHARED ON)
  set(SQUALL_PC_REQUIRES "${SQUALL_PC_PUBLIC}")
  set(SQUALL_PC_REQUIRES_PRIVATE "${SQUALL_PC_PRIVATE}")
else()
  set(SQUALL_SHARED OFF)
  set(SQUALL_PC_REQUIRES "${SQUALL_PC_PUBLIC} ${SQUALL_PC_PRIVATE}")
  set(SQUALL_PC_REQUIRES_PRIVATE "")
endif()

set(SQUALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/squall)
install(EXPORT squallTargets NAMESPACE squall:: DESTINATION ${SQUALL_CMAKE_DIR})
configure_package_config_file(cmake/squallConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake INSTALL_DESTINATION ${SQUALL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
  DESTINATION ${SQUALL_CMAKE_DIR})

file(RELATIVE_PATH SQUALL_PC_RELATIVE_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" SQUALL_PC_RELATIVE_PREFIX "${SQUALL_PC_RELATIVE_PREFIX}")
configure_file(cmake/squall.pc.in ${CMAKE_CURRENT_BINARY_DIR}/squall.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squall.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
