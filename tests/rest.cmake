# cpp-httplib is the tests' HTTP client (a compiled library, through pkg-config).
if(NOT TARGET PkgConfig::HTTPLIB)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
endif()
# Tests of filemesh::rest: status mapping and problems, the metrics registry,
# RestGateway over in-memory transports (included by tests/CMakeLists.txt).
filemesh_add_test(http_test SOURCES http_test.cc LIBS filemesh::rest protobuf::libprotobuf)
filemesh_add_test(rest_gateway_test SOURCES rest_gateway_test.cc
  LIBS filemesh::rest filemesh::rpc filemesh::testing protobuf::libprotobuf SQLite::SQLite3)
# The page and the OpenAPI document are compared with the files they came from.
target_compile_definitions(rest_gateway_test PRIVATE FILEMESH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# A real HttpServer on loopback, driven by httplib's client.
filemesh_add_test(http_server_test SOURCES http_server_test.cc
  LIBS filemesh::rest PkgConfig::HTTPLIB)
# The direct JSON writer against protobuf's printer, over messages of every
# shape generated from proto/json_shapes.proto.
add_library(filemesh_json_shapes_proto STATIC proto/json_shapes.proto)
protobuf_generate(
  TARGET filemesh_json_shapes_proto
  LANGUAGE cpp
  IMPORT_DIRS "${CMAKE_CURRENT_SOURCE_DIR}"
  PROTOC_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/generated")
target_include_directories(filemesh_json_shapes_proto PUBLIC "${CMAKE_CURRENT_BINARY_DIR}/generated")
target_link_libraries(filemesh_json_shapes_proto PUBLIC protobuf::libprotobuf)
filemesh_add_test(proto_json_test SOURCES proto_json_test.cc
  LIBS filemesh::rest filemesh_json_shapes_proto protobuf::libprotobuf Threads::Threads)
# The same server over TLS, with certificates made by tls/make_certs.sh.
filemesh_add_test(https_server_test SOURCES https_server_test.cc
  LIBS filemesh::rest PkgConfig::HTTPLIB OpenSSL::SSL OpenSSL::Crypto)
target_compile_definitions(https_server_test PRIVATE
  FILEMESH_TLS_CERTS_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/tls/make_certs.sh")
# A private PostgreSQL server (postgres/postgres_server.sh, as Debian's
# postgres user: needs root), with TLS from tls/make_certs.sh.
add_library(filemesh_postgres_test_support STATIC postgres/postgres_server.cc)
target_include_directories(filemesh_postgres_test_support PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
target_compile_definitions(filemesh_postgres_test_support PRIVATE
  FILEMESH_POSTGRES_SERVER_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/postgres/postgres_server.sh"
  FILEMESH_TLS_CERTS_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/tls/make_certs.sh")
target_link_libraries(filemesh_postgres_test_support PUBLIC filemesh_test_support GTest::gtest)
filemesh_set_warnings(filemesh_postgres_test_support)

# The operation stores (memory, SQLite, PostgreSQL): bounds, expiry, a
# completion written once; for the file: reopening, two connections, foreign
# files; for PostgreSQL: replicas, TLS, passwords, restarts. One ctest test:
# its tests share one PostgreSQL server.
add_executable(operation_store_test operation_store_test.cc)
target_include_directories(operation_store_test PRIVATE "${PROJECT_SOURCE_DIR}/src")
target_link_libraries(operation_store_test PRIVATE filemesh::rest filemesh::base
  filemesh_postgres_test_support SQLite::SQLite3 absl::strings GTest::gmock GTest::gtest_main
  Threads::Threads)
filemesh_set_warnings(operation_store_test)
add_test(NAME operation_store_test COMMAND operation_store_test)
set_tests_properties(operation_store_test PROPERTIES LABELS unit TIMEOUT 300)
