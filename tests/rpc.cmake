# Tests of filemesh::rpc outside the RabbitMQ transport (included by tests/CMakeLists.txt).
