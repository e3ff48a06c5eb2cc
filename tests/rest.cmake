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
# The operation stores (memory, SQLite): bounds, expiry, a completion written
# once; for the file: reopening, two connections on one file, foreign files.
filemesh_add_test(operation_store_test SOURCES operation_store_test.cc
  LIBS filemesh::rest SQLite::SQLite3)
