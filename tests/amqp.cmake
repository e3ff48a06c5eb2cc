# RabbitMQ tests (included by tests/CMakeLists.txt).
