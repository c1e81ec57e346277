# install(): the library, public headers, an exported CMake package
# (find_package(squall) gives squall::squall) and a pkg-config file.
include(CMakePackageConfigHelpers)

set(SQUALL_INSTALL_TARGETS squall)
if(TARGET squall_testing)
  list(APPEND SQUALL_INSTALL_TARGETS squall_testing)
endif()
install(TARGETS ${SQUALL_INSTALL_TARGETS} EXPORT squallTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/squall DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(SQUALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/squall)
install(EXPORT squallTargets NAMESPACE squall:: DESTINATION ${SQUALL_CMAKE_DIR})
configure_package_config_file(cmake/squallConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake INSTALL_DESTINATION ${SQUALL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
  DESTINATION ${SQUALL_CMAKE_DIR})

configure_file(cmake/squall.pc.in ${CMAKE_CURRENT_BINARY_DIR}/squall.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squall.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
