# RabbitMQ tests (included by tests/CMakeLists.txt). The broker tests start
# private RabbitMQ nodes (tests/rabbitmq/rabbitmq_node.sh) and need root.

# A node per test binary, the echo service and an outside view of the broker.
add_library(filemesh_amqp_test_support STATIC
  rabbitmq/amqp_admin.cc
  rabbitmq/broker.cc
  rabbitmq/echo_service.cc)
target_include_directories(filemesh_amqp_test_support PUBLIC
  "${CMAKE_CURRENT_SOURCE_DIR}" "${PROJECT_SOURCE_DIR}/src")
target_compile_definitions(filemesh_amqp_test_support PRIVATE
  FILEMESH_RABBITMQ_NODE_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/rabbitmq/rabbitmq_node.sh")
target_link_libraries(filemesh_amqp_test_support
  PUBLIC filemesh::rpc filemesh_test_support GTest::gtest absl::time absl::status absl::statusor
  PRIVATE rabbitmq::rabbitmq)
filemesh_set_warnings(filemesh_amqp_test_support)

# filemesh_add_amqp_test(<name> [BROKER]): one GoogleTest binary labelled
# `amqp`. A BROKER binary runs as one ctest test, so its tests share the
# node it starts; others have their tests registered one by one.
function(filemesh_add_amqp_test name)
  cmake_parse_arguments(ARG "BROKER" "" "" ${ARGN})
  add_executable(${name} ${name}.cc)
  target_link_libraries(${name} PRIVATE filemesh_amqp_test_support filemesh::rpc
    filemesh_test_support absl::strings GTest::gtest_main)
  filemesh_set_warnings(${name})
  if(ARG_BROKER)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS amqp TIMEOUT 900)
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS amqp)
  endif()
endfunction()

filemesh_add_amqp_test(amqp_url_test)
filemesh_add_amqp_test(amqp_transport_test BROKER)
filemesh_add_amqp_test(amqp_reconnect_test BROKER)

# The whole path: clients, FailoverChannel, gRPC and RabbitMQ, ServiceHost.
filemesh_add_amqp_test(failover_e2e_test BROKER)
target_link_libraries(failover_e2e_test PRIVATE filemesh_rpc_test_support)

# AMQP over TLS against nodes with a TLS listener only (tests/tls/make_certs.sh).
filemesh_add_amqp_test(amqp_tls_test BROKER)
target_link_libraries(amqp_tls_test PRIVATE filemesh_rpc_test_support)
target_compile_definitions(amqp_tls_test PRIVATE
  FILEMESH_TLS_CERTS_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/tls/make_certs.sh")

# Replies a client can believe: service users, user_id, the reply namespace.
filemesh_add_amqp_test(amqp_trust_test BROKER)
target_link_libraries(amqp_trust_test PRIVATE filemesh_rpc_test_support)

# A three-node cluster of private nodes loses the node client and server use.
filemesh_add_amqp_test(amqp_cluster_test BROKER)
