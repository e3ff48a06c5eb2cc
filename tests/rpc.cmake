# Tests of filemesh::rpc outside the RabbitMQ transport (included by tests/CMakeLists.txt).
add_library(filemesh_rpc_test_support STATIC rpc_test_support.cc)
target_link_libraries(filemesh_rpc_test_support PUBLIC filemesh::fs filemesh::rpc
  filemesh::testing filemesh_test_support)
filemesh_set_warnings(filemesh_rpc_test_support)

filemesh_add_test(circuit_breaker_test SOURCES circuit_breaker_test.cc
  LIBS filemesh::rpc absl::synchronization)
filemesh_add_test(in_memory_transport_test SOURCES in_memory_transport_test.cc
  LIBS filemesh::rpc filemesh::testing)
filemesh_add_test(failover_channel_test SOURCES failover_channel_test.cc
  LIBS filemesh::rpc filemesh::testing)
filemesh_add_test(grpc_failover_test SOURCES grpc_failover_test.cc
  LIBS filemesh_rpc_test_support absl::synchronization)
filemesh_add_test(log_test SOURCES log_test.cc LIBS filemesh_rpc_test_support)
filemesh_add_test(timer_queue_test SOURCES timer_queue_test.cc LIBS filemesh::rpc)
filemesh_add_test(service_host_test SOURCES service_host_test.cc LIBS filemesh_rpc_test_support)

# A server process the test can SIGSTOP.
add_executable(held_server held_server.cc)
target_link_libraries(held_server PRIVATE filemesh::rpc)
filemesh_set_warnings(held_server)
filemesh_add_test(stopped_server_test SOURCES stopped_server_test.cc
  LIBS filemesh::rpc filemesh::testing)
target_compile_definitions(stopped_server_test PRIVATE
  HELD_SERVER_PATH="$<TARGET_FILE:held_server>")
add_dependencies(stopped_server_test held_server)

# TLS and mutual TLS on gRPC, with certificates made by tests/tls/make_certs.sh
# (the openssl command); gRPC directly for peers that present bad ones.
filemesh_add_test(grpc_tls_test SOURCES grpc_tls_test.cc
  LIBS filemesh_rpc_test_support gRPC::grpc++)
target_compile_definitions(grpc_tls_test PRIVATE
  FILEMESH_TLS_CERTS_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/tls/make_certs.sh")
