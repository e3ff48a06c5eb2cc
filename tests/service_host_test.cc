// ServiceHost start-up errors that depend on the operating system.

#include "filemesh/service_host.hpp"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc_test_support.h"

namespace filemesh {
namespace {

TEST(ServiceHostTest, AGrpcPortInUseIsUnavailable) {
  testing::SampleService service;
  auto first = testing::StartHost(service, testing::LoopbackListenAddress());
  ServiceHostOptions options;
  options.grpc_listen = absl::StrCat("127.0.0.1:", first->grpc_port());
  ServiceHost second(options);
  second.AddFileLister(*service.lister);
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(second.grpc_port(), 0);
}

}  // namespace
}  // namespace filemesh
