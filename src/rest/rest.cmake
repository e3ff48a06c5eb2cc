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
  rest/rest_gateway.cc
  rest/assets.cc
  "${CMAKE_CURRENT_BINARY_DIR}/rest/embedded_assets.cc")
add_library(filemesh::rest ALIAS filemesh_rest)

# The gateway's browser page and OpenAPI document, compiled in: the binary
# serves them with nothing to install beside it (rest/assets.h).
set(filemesh_assets
  "/|${CMAKE_CURRENT_SOURCE_DIR}/rest/ui/index.html"
  "/ui/app.js|${CMAKE_CURRENT_SOURCE_DIR}/rest/ui/app.js"
  "/ui/style.css|${CMAKE_CURRENT_SOURCE_DIR}/rest/ui/style.css"
  "/ui/icon.svg|${CMAKE_CURRENT_SOURCE_DIR}/rest/ui/icon.svg"
  "/api/v1/openapi.yaml|${PROJECT_SOURCE_DIR}/docs/openapi.yaml")
set(filemesh_asset_files "")
foreach(asset IN LISTS filemesh_assets)
  string(REGEX REPLACE "^[^|]*[|]" "" file "${asset}")
  list(APPEND filemesh_asset_files "${file}")
endforeach()
string(JOIN "," filemesh_assets_arg ${filemesh_assets})
add_custom_command(
  OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/rest/embedded_assets.cc"
  COMMAND "${CMAKE_COMMAND}" "-DOUTPUT=${CMAKE_CURRENT_BINARY_DIR}/rest/embedded_assets.cc"
          "-DASSETS=${filemesh_assets_arg}" -P "${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake"
  DEPENDS ${filemesh_asset_files} "${PROJECT_SOURCE_DIR}/cmake/embed_files.cmake"
  COMMENT "Embedding the gateway's page and OpenAPI document"
  VERBATIM)
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
