# Sources of the RabbitMQ side of filemesh::rpc (included by src/CMakeLists.txt).
# Paths are relative to src/.
target_sources(filemesh_rpc PRIVATE
  rpc/amqp_url.cc
  rpc/amqp_connection.cc
  rpc/amqp_envelope.cc
  rpc/amqp_transport.cc
  rpc/amqp_server.cc)
