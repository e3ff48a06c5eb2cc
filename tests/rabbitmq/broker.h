// A private RabbitMQ node for a test binary (tests/rabbitmq/rabbitmq_node.sh):
// its own temporary directory, free loopback ports and node name.
//
// A node takes several seconds to start, so a test binary shares one
// (SharedBrokerEnvironment) and only a test that restarts the broker makes
// its own. The node is stopped and its directory removed when the object
// dies; a watchdog process does the same if the test binary dies first
// (crash, abort, timeout kill), so no broker outlives its test.

#ifndef FILEMESH_TESTS_RABBITMQ_BROKER_H_
#define FILEMESH_TESTS_RABBITMQ_BROKER_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace filemesh::testing {

class RabbitNode {
 public:
  // Starts a node (retrying on another port if one was taken meanwhile).
  // Null, with `error` set, if it would not start. With `tls_dir` (a
  // tests/tls/make_certs.sh directory) the node listens with TLS only,
  // presenting `server_cert` (NAME.pem and NAME.key of that directory) and
  // verifying client certificates against its ca.pem (rabbitmq_node.sh).
  static std::unique_ptr<RabbitNode> Start(std::string* error, const std::string& tls_dir = "",
                                           const std::string& server_cert = "server");
  // A broker that runs already (not started, stopped or restarted here).
  static std::unique_ptr<RabbitNode> External(std::string url);
  ~RabbitNode();

  RabbitNode(const RabbitNode&) = delete;
  RabbitNode& operator=(const RabbitNode&) = delete;

  // "amqp://guest:guest@127.0.0.1:PORT/", or with TLS
  // "amqps://guest:guest@localhost:PORT/".
  const std::string& url() const { return url_; }
  // The URL for `user` and `password` instead of guest's.
  std::string UrlFor(const std::string& user, const std::string& password) const;
  // Runs rabbitmqctl ARGS against the node (add_user, set_permissions...);
  // false (and a test failure) if it fails. With `output`, what it printed.
  bool Ctl(const std::string& args, std::string* output = nullptr);
  int port() const { return port_; }

  // Stops the node (its durable state stays), starts it again on the same
  // port and directory, or both. Each returns false (and records a test
  // failure) if the script fails.
  bool Stop();
  bool StartAgain();
  bool Restart();
  // kill -9 of the node (a crash); true once its process is gone.
  bool Kill();

 private:
  friend class RabbitCluster;
  RabbitNode(std::string dir, int port, bool tls, std::string env = "");
  // A node on `port` (and port+1) with `env` before every script command.
  static std::unique_ptr<RabbitNode> StartOn(int port, const std::string& env, std::string* error);
  // Runs the node script; false (see last_failure_) if it failed.
  bool Run(const std::string& action);
  // Records a test failure for a failed `action`; returns `ok`.
  bool Report(const std::string& action, bool ok);

  std::string dir_;
  int port_;
  std::string env_;  // "NAME=VALUE ... " before every script command
  bool tls_ = false;
  std::string url_;
  std::string last_failure_;
  int watchdog_fd_ = -1;  // closing it without a 'q' sets the watchdog off
};

// A cluster of private nodes on loopback (RabbitMQ's "a cluster on a single
// machine"): distinct node names, ports and directories, one epmd and one
// Erlang cookie. Stopped, with its epmd, when the object dies.
class RabbitCluster {
 public:
  // Starts `nodes` nodes and joins the others to the first. Null, with
  // `error` set, if that fails.
  static std::unique_ptr<RabbitCluster> Start(int nodes, std::string* error);
  ~RabbitCluster();

  RabbitCluster(const RabbitCluster&) = delete;
  RabbitCluster& operator=(const RabbitCluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  RabbitNode& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  // The nodes' URLs for `user`, comma-separated, from node `first` on (and
  // round to the ones before it): AmqpOptions::url for a cluster.
  std::string Urls(const std::string& user, const std::string& password, int first = 0) const;

 private:
  RabbitCluster() = default;
  std::vector<std::unique_ptr<RabbitNode>> nodes_;
  int epmd_port_ = 0;
};

// Starts one node before the binary's first test and stops it after the
// last; with FILEMESH_TEST_AMQP_URL set it uses that broker instead (for
// quick runs while developing). Register it in a test file with
//   const auto* const kBroker =
//       ::testing::AddGlobalTestEnvironment(new SharedBrokerEnvironment);
class SharedBrokerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
};

// The shared node (null outside SharedBrokerEnvironment).
RabbitNode* SharedBroker();

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_RABBITMQ_BROKER_H_
