# filemesh::rest: HTTP values and problem documents, the Prometheus registry
# and RestGateway (included by src/CMakeLists.txt; paths relative to src/).
add_library(filemesh_rest STATIC
  rest/http.cc
  rest/http_server.cc
  rest/json.cc
  rest/metrics.cc
  rest/operation_store.cc
  rest/proto_json.cc
  rest/proto_json_values.cc
  rest/query_params.cc
  rest/rest_gateway.cc)
add_library(filemesh::rest ALIAS filemesh_rest)
set_target_properties(filemesh_rest PROPERTIES
  EXPORT_NAME rest
  OUTPUT_NAME filemesh_rest
  POSITION_INDEPENDENT_CODE ON)
target_include_directories(filemesh_rest
  PUBLIC
    "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>"
    "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>"
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>"
  PRIVATE
    "${CMAKE_CURRENT_SOURCE_DIR}")
# filemesh::fs for IsValidUtf8/DisplayForm (names.hpp): JSON strings and
# query values that are not UTF-8.
target_link_libraries(filemesh_rest
  PUBLIC filemesh::rpc
  PRIVATE filemesh::fs protobuf::libprotobuf absl::strings absl::synchronization
          absl::random_random Threads::Threads)
filemesh_set_warnings(filemesh_rest)
# HttpServer (rest/http_server.cc) is Boost.Beast + Asio: header-only, so
# only the headers target (linked privately; static libraries export it as a
# link-only dependency, found again by filemeshConfig.cmake).
find_package(Boost 1.74 REQUIRED)
target_link_libraries(filemesh_rest PRIVATE Boost::headers)
target_compile_definitions(filemesh_rest PRIVATE BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)
