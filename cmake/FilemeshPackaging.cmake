# The filemesh-dev Debian package: the SDK as installed (headers, static or
# shared libraries, the CMake package, pkg-config file, .proto files), for
# building against filemesh. The services, the command and their systemd
# units are the `filemesh` package (examples/packaging).
#
#   cmake --build build/release && (cd build/release && cpack -G DEB)
#   -> filemesh-dev_<version>_<arch>.deb
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL filemesh_development)
set(CPACK_PACKAGE_NAME filemesh)
set(CPACK_PACKAGE_VENDOR "filemesh")
set(CPACK_PACKAGE_CONTACT "filemesh maintainers")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_FILEMESH_DEVELOPMENT_PACKAGE_NAME filemesh-dev)
set(CPACK_DEBIAN_FILEMESH_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_FILEMESH_DEVELOPMENT_DESCRIPTION
  "SDK for file listing and search services that keep answering when gRPC fails
FileLister, FileSearcher, FailoverChannel, ServiceHost and RestGateway:
headers, libraries, the CMake package (find_package(filemesh)) and the
pkg-config modules.")
# What a consumer's build needs to find and link the components.
set(filemesh_dev_depends "libprotobuf-dev, protobuf-compiler, libabsl-dev, libre2-dev, zlib1g-dev, libssl-dev, pkg-config")
if(FILEMESH_BUILD_RPC)
  string(APPEND filemesh_dev_depends ", libgrpc++-dev, librabbitmq-dev")
endif()
if(FILEMESH_BUILD_REST)
  string(APPEND filemesh_dev_depends ", libboost-dev, prometheus-cpp-dev, libsqlite3-dev, libpq-dev")
endif()
set(CPACK_DEBIAN_FILEMESH_DEVELOPMENT_PACKAGE_DEPENDS "${filemesh_dev_depends}")
# Debian's place for the license (installed with the SDK's headers).
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/filemesh-dev"
  RENAME copyright COMPONENT filemesh_development)
include(CPack)
