# The filemesh Debian package (included by examples/CMakeLists.txt): the three
# services and the `filemesh` command, with hardened systemd units and their
# settings in /etc/default. The SDK's headers, libraries, CMake package and
# pkg-config file are the filemesh-dev package, made by the SDK's own build
# (cmake/FilemeshPackaging.cmake). docs/services.md says how to use both.
#
#   cmake --build build/examples && (cd build/examples && cpack -G DEB)
#   -> filemesh_<version>_<arch>.deb

# The command comes from the SDK this project was built against.
get_filename_component(filemesh_prefix "${filemesh_DIR}/../../.." ABSOLUTE)
find_program(FILEMESH_CLI filemesh PATHS "${filemesh_prefix}/bin" NO_DEFAULT_PATH)
# Its remote mode's helper (`filemesh --gateway` runs it).
find_program(FILEMESH_CLI_REMOTE filemesh-remote PATHS "${filemesh_prefix}/libexec" NO_DEFAULT_PATH)

foreach(service mserv1 mserv2 gateway)
  install(PROGRAMS "$<TARGET_FILE:${service}>" DESTINATION bin RENAME filemesh-${service})
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/filemesh-${service}.service"
    DESTINATION lib/systemd/system)
  # Absolute: /etc/default, whatever the prefix. Root only: it may hold the
  # broker's password and the API key.
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/filemesh-${service}.default"
    DESTINATION /etc/default RENAME filemesh-${service}
    PERMISSIONS OWNER_READ OWNER_WRITE)
endforeach()
if(FILEMESH_CLI AND FILEMESH_CLI_REMOTE)
  install(PROGRAMS "${FILEMESH_CLI}" DESTINATION bin)
  install(PROGRAMS "${FILEMESH_CLI_REMOTE}" DESTINATION libexec)
else()
  message(WARNING "no filemesh command under ${filemesh_prefix}/bin: the package leaves it out")
endif()
# Debian's place for the license.
install(FILES "${CMAKE_CURRENT_LIST_DIR}/../../LICENSE" DESTINATION share/doc/filemesh
  RENAME copyright)
install(FILES
    "${CMAKE_CURRENT_LIST_DIR}/../../docs/services.md"
    "${CMAKE_CURRENT_LIST_DIR}/../../docs/rest.md"
    "${CMAKE_CURRENT_LIST_DIR}/../../docs/cli.md"
    "${CMAKE_CURRENT_LIST_DIR}/../../docs/openapi.yaml"
    "${CMAKE_CURRENT_LIST_DIR}/../../docs/alerts.yml"
  DESTINATION share/doc/filemesh)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME filemesh)
set(CPACK_PACKAGE_VERSION "${filemesh_VERSION}")
set(CPACK_PACKAGE_VENDOR "filemesh")
set(CPACK_PACKAGE_CONTACT "filemesh maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "file listing and search services that keep answering when gRPC fails")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "mserv1 (listing) and mserv2 (search) serve a directory over gRPC and a RabbitMQ
queue; the gateway answers a REST API and a browser page in front of them,
failing over to RabbitMQ when gRPC does. Includes the filemesh command and
hardened systemd units (filemesh-mserv1, filemesh-mserv2, filemesh-gateway)
configured in /etc/default.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS rabbitmq-server)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_LIST_DIR}/postinst;${CMAKE_CURRENT_LIST_DIR}/prerm;${CMAKE_CURRENT_LIST_DIR}/postrm;${CMAKE_CURRENT_LIST_DIR}/conffiles")
include(CPack)
