# Installs the SDK: headers (hand-written, configured and generated), the
# libraries, the .proto files, the CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

set(FILEMESH_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/filemesh")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/filemesh"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT filemesh_development
  FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/include/filemesh/version.hpp"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/filemesh"
  COMPONENT filemesh_development)
install(DIRECTORY "${FILEMESH_GENERATED_DIR}/filemesh"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT filemesh_development
  FILES_MATCHING PATTERN "*.pb.h")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/proto/filemesh"
  DESTINATION "${CMAKE_INSTALL_DATADIR}/filemesh/proto"
  COMPONENT filemesh_development
  FILES_MATCHING PATTERN "*.proto")

# One export set per component, so find_package(... COMPONENTS x) loads only
# what was asked for.
install(TARGETS filemesh_proto EXPORT filemesh-proto-targets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_runtime)
install(TARGETS filemesh_fs EXPORT filemesh-fs-targets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_runtime)
if(FILEMESH_BUILD_CLI)
  install(TARGETS filemesh_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    COMPONENT filemesh_runtime)
endif()

set(FILEMESH_EXPORTED_COMPONENTS proto fs)
if(TARGET filemesh_rpc)
  install(TARGETS filemesh_rpc EXPORT filemesh-rpc-targets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_development
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_runtime)
  list(APPEND FILEMESH_EXPORTED_COMPONENTS rpc)
endif()
if(TARGET filemesh_rest)
  install(TARGETS filemesh_rest EXPORT filemesh-rest-targets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_development
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_runtime)
  list(APPEND FILEMESH_EXPORTED_COMPONENTS rest)
endif()
foreach(component IN LISTS FILEMESH_EXPORTED_COMPONENTS)
  install(EXPORT filemesh-${component}-targets
    NAMESPACE filemesh::
    FILE filemesh-${component}-targets.cmake
    DESTINATION "${FILEMESH_CMAKE_DIR}"
    COMPONENT filemesh_development)
endforeach()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/filemeshConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/filemeshConfig.cmake"
  INSTALL_DESTINATION "${FILEMESH_CMAKE_DIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/filemeshConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/filemeshConfig.cmake"
  "${PROJECT_BINARY_DIR}/filemeshConfigVersion.cmake"
  DESTINATION "${FILEMESH_CMAKE_DIR}"
  COMPONENT filemesh_development)

# rpc's process helpers (process.hpp) parse Abseil flags.
set(FILEMESH_PC_RPC_REQUIRES
  "grpc++ librabbitmq absl_flags absl_flags_parse absl_flags_reflection absl_flags_usage")
if(TARGET filemesh_rest)
  set(FILEMESH_PC_LIBS "-lfilemesh_rest -lfilemesh_rpc -lfilemesh_fs -lfilemesh_proto")
  # Boost.Beast (the HTTP server) is header-only: nothing to link.
  set(FILEMESH_PC_REQUIRES "${FILEMESH_PC_RPC_REQUIRES}")
elseif(TARGET filemesh_rpc)
  set(FILEMESH_PC_LIBS "-lfilemesh_rpc -lfilemesh_fs -lfilemesh_proto")
  set(FILEMESH_PC_REQUIRES "${FILEMESH_PC_RPC_REQUIRES}")
else()
  set(FILEMESH_PC_LIBS "-lfilemesh_fs -lfilemesh_proto")
  set(FILEMESH_PC_REQUIRES "")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/filemesh.pc.in"
  "${PROJECT_BINARY_DIR}/filemesh.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/filemesh.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT filemesh_development)
