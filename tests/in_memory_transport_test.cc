// testing::InMemoryTransport serves handlers as a ServiceHost would: through
// the same typed-handler adapter, with the call's deadline.

#include "filemesh/testing/in_memory_transport.hpp"

#include <string>

#include "absl/time/clock.h"
#include "filemesh/rpc/methods.hpp"
#include "gtest/gtest.h"

namespace filemesh {
namespace {

using testing::InMemoryTransport;

// Remembers the deadline each call was given.
class DeadlineRecordingLister : public FileListerInterface {
 public:
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request,
                                        absl::Time deadline) const override {
    seen_deadline_ = deadline;
    v1::ListResponse response;
    response.add_entries()->set_path(request.path());
    return response;
  }
  mutable absl::Time seen_deadline_ = absl::InfinitePast();
};

class DeadlineRecordingSearcher : public FileSearcherInterface {
 public:
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest&,
                                            absl::Time deadline) const override {
    seen_deadline_ = deadline;
    return v1::SearchResponse();
  }
  mutable absl::Time seen_deadline_ = absl::InfinitePast();
};

TEST(InMemoryTransportTest, ServedListerGetsTheCallsDeadline) {
  DeadlineRecordingLister lister;
  InMemoryTransport transport;
  transport.ServeFileLister(lister);
  v1::ListRequest request;
  request.set_path("a");
  const absl::Time deadline = absl::Now() + absl::Seconds(7);
  TransportResult result = transport.Call(kListMethod, request.SerializeAsString(), deadline);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(lister.seen_deadline_, deadline);
  v1::ListResponse response;
  ASSERT_TRUE(response.ParseFromString(*result.response));
  ASSERT_EQ(response.entries_size(), 1);
  EXPECT_EQ(response.entries(0).path(), "a");
}

TEST(InMemoryTransportTest, ServedSearcherGetsTheCallsDeadline) {
  DeadlineRecordingSearcher searcher;
  InMemoryTransport transport;
  transport.ServeFileSearcher(searcher);
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  TransportResult result =
      transport.Call(kSearchMethod, v1::SearchRequest().SerializeAsString(), deadline);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(searcher.seen_deadline_, deadline);
}

TEST(InMemoryTransportTest, AnUnparseableRequestIsMarkedAsAServiceHostWouldMarkIt) {
  DeadlineRecordingLister lister;
  InMemoryTransport transport;
  transport.ServeFileLister(lister);
  TransportResult result =
      transport.Call(kListMethod, std::string("\xff\xff\xff", 3), absl::InfiniteFuture());
  ASSERT_EQ(result.response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(result.response.status().GetPayload(kUnparseableRequestPayload).has_value());
  EXPECT_EQ(lister.seen_deadline_, absl::InfinitePast()) << "the handler must not run";
}

TEST(InMemoryTransportTest, AnUnknownMethodIsUnimplemented) {
  InMemoryTransport transport;
  TransportResult result = transport.Call("/no.Such/Method", "", absl::InfiniteFuture());
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace filemesh
