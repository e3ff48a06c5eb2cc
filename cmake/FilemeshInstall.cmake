# Installs the SDK: headers (hand-written, configured and generated), the
# libraries, the .proto files, the CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)

set(FILEMESH_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/filemesh")

# The headers of the components built, and no others: filemesh/*.hpp is fs,
# each subfolder the component of its name.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/filemesh/"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/filemesh"
  COMPONENT filemesh_development
  FILES_MATCHING PATTERN "*.hpp"
  REGEX "/(rpc|rest|service|testing)$" EXCLUDE)
set(FILEMESH_HEADER_FOLDERS service)
if(TARGET filemesh_rpc)
  list(APPEND FILEMESH_HEADER_FOLDERS rpc testing)
endif()
if(TARGET filemesh_rest)
  list(APPEND FILEMESH_HEADER_FOLDERS rest)
endif()
foreach(folder IN LISTS FILEMESH_HEADER_FOLDERS)
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/filemesh/${folder}"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/filemesh"
    COMPONENT filemesh_development
    FILES_MATCHING PATTERN "*.hpp")
endforeach()
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
# what was asked for. proto and base are loaded always (base has no headers:
# static builds link it).
if(FILEMESH_BUILD_CLI)
  install(TARGETS filemesh_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    COMPONENT filemesh_runtime)
  # Remote mode's helper, run by `filemesh` (src/cli/handoff.h).
  # No folder of its own: where libexec is bin/ (Conan), bin/filemesh is the
  # command itself.
  install(TARGETS filemesh_cli_remote RUNTIME DESTINATION "${CMAKE_INSTALL_LIBEXECDIR}"
    COMPONENT filemesh_runtime)
endif()
set(FILEMESH_EXPORTED_COMPONENTS proto base fs service)
foreach(component rpc testing rest)
  if(TARGET filemesh_${component})
    list(APPEND FILEMESH_EXPORTED_COMPONENTS ${component})
  endif()
endforeach()
foreach(component IN LISTS FILEMESH_EXPORTED_COMPONENTS)
  install(TARGETS filemesh_${component} EXPORT filemesh-${component}-targets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_development
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT filemesh_runtime)
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

# pkg-config: one module per component (filemesh-fs, filemesh-service,
# filemesh-rpc, filemesh-rest), each requiring the modules below it, and
# filemesh for every component built. The libraries are static by default, so
# each module requires what its library links.
# filemesh-base is internal: the library every component links.
set(FILEMESH_PC_base_REQUIRES "absl_strings")
set(FILEMESH_PC_base_SUMMARY "internal: what every component links")
set(FILEMESH_PC_fs_REQUIRES
  "filemesh-base protobuf re2 zlib absl_status absl_statusor absl_time absl_strings")
set(FILEMESH_PC_fs_SUMMARY "files: FileLister, FileSearcher, FileIndex")
set(FILEMESH_PC_service_REQUIRES
  "filemesh-base absl_strings absl_time absl_flags absl_flags_parse absl_flags_reflection absl_flags_usage libssl libcrypto")
set(FILEMESH_PC_service_SUMMARY "service kit: logging, flags, signals, TLS options")
set(FILEMESH_PC_rpc_REQUIRES
  "filemesh-fs filemesh-service filemesh-base grpc++ librabbitmq absl_synchronization absl_random_random")
set(FILEMESH_PC_rpc_SUMMARY "RPC: FailoverChannel, ServiceHost, clients")
# Boost.Beast (the HTTP server) is header-only: nothing to link.
set(FILEMESH_PC_rest_REQUIRES
  "filemesh-rpc filemesh-service filemesh-base protobuf prometheus-cpp-core sqlite3 libpq")
set(FILEMESH_PC_rest_SUMMARY "REST: HttpServer, RestGateway")
set(FILEMESH_PC_ALL "")
foreach(component base fs service rpc rest)
  if(NOT TARGET filemesh_${component})
    continue()
  endif()
  set(FILEMESH_PC_NAME "filemesh-${component}")
  set(FILEMESH_PC_SUMMARY "${FILEMESH_PC_${component}_SUMMARY}")
  set(FILEMESH_PC_REQUIRES "${FILEMESH_PC_${component}_REQUIRES}")
  set(FILEMESH_PC_LIBS "-lfilemesh_${component}")
  if(component STREQUAL "fs")
    string(APPEND FILEMESH_PC_LIBS " -lfilemesh_proto")
  endif()
  configure_file("${PROJECT_SOURCE_DIR}/cmake/filemesh.pc.in"
    "${PROJECT_BINARY_DIR}/pkgconfig/filemesh-${component}.pc" @ONLY)
  if(NOT component STREQUAL "base")
    string(APPEND FILEMESH_PC_ALL " filemesh-${component}")
  endif()
endforeach()
set(FILEMESH_PC_NAME "filemesh")
set(FILEMESH_PC_SUMMARY "every component built")
set(FILEMESH_PC_REQUIRES "${FILEMESH_PC_ALL}")
set(FILEMESH_PC_LIBS "")
configure_file("${PROJECT_SOURCE_DIR}/cmake/filemesh.pc.in"
  "${PROJECT_BINARY_DIR}/pkgconfig/filemesh.pc" @ONLY)
install(DIRECTORY "${PROJECT_BINARY_DIR}/pkgconfig/"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT filemesh_development
  FILES_MATCHING PATTERN "*.pc")
