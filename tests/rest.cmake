# Tests of filemesh::rest: status mapping and problems, the metrics registry,
# RestGateway over in-memory transports (included by tests/CMakeLists.txt).
filemesh_add_test(http_test SOURCES http_test.cc LIBS filemesh::rest protobuf::libprotobuf)
filemesh_add_test(metrics_test SOURCES metrics_test.cc LIBS filemesh::rest)
filemesh_add_test(rest_gateway_test SOURCES rest_gateway_test.cc
  LIBS filemesh::rest filemesh::rpc protobuf::libprotobuf)
# A real HttpServer on loopback, driven by httplib's client.
filemesh_add_test(http_server_test SOURCES http_server_test.cc
  LIBS filemesh::rest PkgConfig::HTTPLIB)
