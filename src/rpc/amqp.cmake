# Sources of the RabbitMQ side of filemesh::rpc (included by src/CMakeLists.txt).
# Paths are relative to src/.
