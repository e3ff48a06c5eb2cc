#include "rabbitmq/broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "cleanup_watchdog.h"
#include "loopback_port.h"

#ifndef FILEMESH_RABBITMQ_NODE_SCRIPT
#error "FILEMESH_RABBITMQ_NODE_SCRIPT must name tests/rabbitmq/rabbitmq_node.sh"
#endif

namespace filemesh::testing {
namespace {

RabbitNode* g_shared = nullptr;

bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A port P with P, P+1 and P+2 free (AMQP, distribution, epmd), below the
// ephemeral range: the node restarts on the same ports, which an outgoing
// connection could otherwise take while it is down.
// `count` consecutive ones for a cluster.
int PickPorts(int count = 3) {
  std::random_device seed;
  std::mt19937 gen(seed());
  std::uniform_int_distribution<int> dist(20000, EphemeralPortLow() - count);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = dist(gen);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = PortFree(port + i);
    if (free) return port;
  }
  return -1;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

RabbitNode::RabbitNode(std::string dir, int port, bool tls, std::string env)
    : dir_(std::move(dir)), port_(port), env_(std::move(env)), tls_(tls) {
  url_ = UrlFor("guest", "guest");
  if (dir_.empty()) return;  // external: nothing to watch
  // The watchdog: stops the node and removes its directory when this process
  // dies without saying goodbye.
  watchdog_fd_ =
      StartCleanupWatchdog(env_ + "\"$0\" stop \"$1\" \"$2\" >/dev/null 2>&1; rm -rf \"$1\"",
                           {FILEMESH_RABBITMQ_NODE_SCRIPT, dir_, std::to_string(port_)});
}

std::unique_ptr<RabbitNode> RabbitNode::External(std::string url) {
  std::unique_ptr<RabbitNode> node(new RabbitNode("", 0, false));
  node->url_ = std::move(url);
  return node;
}

RabbitNode::~RabbitNode() {
  if (dir_.empty()) return;  // external
  Report("stop", Run("stop"));
  const std::string rm = "rm -rf '" + dir_ + "'";
  if (std::system(rm.c_str()) != 0) ADD_FAILURE() << "could not remove " << dir_;
  DismissCleanupWatchdog(watchdog_fd_);  // all done
}

bool RabbitNode::Run(const std::string& action) {
  if (dir_.empty()) {
    last_failure_ = "an external broker cannot " + action;
    return false;
  }
  const std::string log = dir_ + "/script.log";
  const std::string command = env_ + std::string(FILEMESH_RABBITMQ_NODE_SCRIPT) + " " + action +
                              " '" + dir_ + "' " + std::to_string(port_) + " >>'" + log + "' 2>&1";
  const int rc = std::system(command.c_str());
  if (rc == 0) return true;
  last_failure_ =
      "rabbitmq_node.sh " + action + " failed (" + std::to_string(rc) + "):\n" + Tail(log);
  return false;
}

bool RabbitNode::Report(const std::string& action, bool ok) {
  if (!ok) ADD_FAILURE() << "RabbitMQ node " << action << ": " << last_failure_;
  return ok;
}

std::string RabbitNode::UrlFor(const std::string& user, const std::string& password) const {
  // The test certificates name localhost (rabbitmq-c checks DNS names).
  return (tls_ ? "amqps://" : "amqp://") + user + ":" + password + "@" +
         (tls_ ? "localhost:" : "127.0.0.1:") + std::to_string(port_) + "/";
}

bool RabbitNode::Ctl(const std::string& args, std::string* output) {
  const std::string log = dir_ + "/ctl.log";
  const std::string out = dir_ + "/ctl.out";
  const std::string command = env_ + std::string(FILEMESH_RABBITMQ_NODE_SCRIPT) + " ctl '" + dir_ +
                              "' " + std::to_string(port_) + " " + args + " >'" + out + "' 2>>'" +
                              log + "'; rc=$?; cat '" + out + "' >>'" + log + "'; exit $rc";
  const int rc = std::system(command.c_str());
  if (output != nullptr) {
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    *output = text.str();
  }
  if (rc == 0) return true;
  ADD_FAILURE() << "rabbitmqctl " << args << " failed:\n" << Tail(log);
  return false;
}

std::unique_ptr<RabbitNode> RabbitNode::Start(std::string* error, const std::string& tls_dir,
                                              const std::string& server_cert) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    char dir[] = "/tmp/filemesh-rabbitmq-XXXXXX";  // the rabbitmq user must reach it
    if (mkdtemp(dir) == nullptr) {
      *error = "mkdtemp failed";
      return nullptr;
    }
    const int port = PickPorts();
    if (port < 0) {
      rmdir(dir);
      *error = "no free ports";
      return nullptr;
    }
    std::unique_ptr<RabbitNode> node(new RabbitNode(dir, port, !tls_dir.empty()));
    if (!tls_dir.empty()) {
      const std::string copy = "mkdir '" + std::string(dir) + "/tls' && cp '" + tls_dir +
                               "/ca.pem' '" + std::string(dir) + "/tls/ca.pem' && cp '" + tls_dir +
                               "/" + server_cert + ".pem' '" + std::string(dir) +
                               "/tls/server.pem' && cp '" + tls_dir + "/" + server_cert +
                               ".key' '" + std::string(dir) + "/tls/server.key'";
      if (std::system(copy.c_str()) != 0) {
        *error = "cannot copy the certificates from " + tls_dir;
        return nullptr;
      }
    }
    if (node->Run("start")) return node;
    *error = node->last_failure_;
  }
  return nullptr;
}

bool RabbitNode::Stop() { return Report("stop", Run("stop")); }
bool RabbitNode::Kill() { return Report("kill", Run("kill")); }
bool RabbitNode::StartAgain() { return Report("start", Run("start")); }
bool RabbitNode::Restart() { return Report("restart", Run("restart")); }

std::unique_ptr<RabbitNode> RabbitNode::StartOn(int port, const std::string& env,
                                                std::string* error) {
  char dir[] = "/tmp/filemesh-rabbitmq-XXXXXX";  // the rabbitmq user must reach it
  if (mkdtemp(dir) == nullptr) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  std::unique_ptr<RabbitNode> node(new RabbitNode(dir, port, false, env));
  if (node->Run("start")) return node;
  *error = node->last_failure_;
  return nullptr;
}

std::unique_ptr<RabbitCluster> RabbitCluster::Start(int nodes, std::string* error) {
  // Node i on base + 3i (AMQP) and base + 3i + 1 (distribution); the
  // cluster's epmd on base + 2.
  const int base = PickPorts(3 * nodes);
  if (base < 0) {
    *error = "no free ports";
    return nullptr;
  }
  std::unique_ptr<RabbitCluster> cluster(new RabbitCluster);
  cluster->epmd_port_ = base + 2;
  std::random_device seed;
  const std::string cookie = "filemeshtest" + std::to_string(seed()) + std::to_string(seed());
  const std::string env = "RABBITMQ_NODE_EPMD_PORT=" + std::to_string(cluster->epmd_port_) +
                          " RABBITMQ_NODE_COOKIE=" + cookie + " ";
  // The first starts the epmd; the others start together (a node takes
  // seconds, mostly waiting).
  cluster->nodes_.push_back(RabbitNode::StartOn(base, env, error));
  if (cluster->nodes_.back() == nullptr) return nullptr;
  std::vector<std::string> errors(static_cast<size_t>(nodes));
  cluster->nodes_.resize(static_cast<size_t>(nodes));
  std::vector<std::thread> starts;
  for (int i = 1; i < nodes; ++i) {
    starts.emplace_back([&cluster, &errors, &env, base, i] {
      cluster->nodes_[static_cast<size_t>(i)] =
          RabbitNode::StartOn(base + 3 * i, env, &errors[static_cast<size_t>(i)]);
    });
  }
  for (std::thread& start : starts) start.join();
  for (int i = 1; i < nodes; ++i) {
    if (cluster->nodes_[static_cast<size_t>(i)] == nullptr) {
      *error = "node " + std::to_string(i) + ": " + errors[static_cast<size_t>(i)];
      return nullptr;
    }
  }
  const std::string first = "filemesh-test-" + std::to_string(base) + "@localhost";
  for (int i = 1; i < nodes; ++i) {
    RabbitNode& node = cluster->node(i);
    if (!node.Ctl("stop_app") || !node.Ctl("join_cluster " + first) || !node.Ctl("start_app") ||
        !node.Ctl("await_startup")) {
      *error = "node " + std::to_string(i) + " could not join " + first;
      return nullptr;
    }
  }
  return cluster;
}

RabbitCluster::~RabbitCluster() {
  // The last node stops first: a node that leaves waits for no one.
  while (!nodes_.empty()) nodes_.pop_back();
  if (epmd_port_ != 0) {
    const std::string kill = "epmd -port " + std::to_string(epmd_port_) + " -kill >/dev/null 2>&1";
    (void)!std::system(kill.c_str());
  }
}

std::string RabbitCluster::Urls(const std::string& user, const std::string& password,
                                int first) const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!out.empty()) out += ",";
    out += nodes_[(static_cast<size_t>(first) + i) % nodes_.size()]->UrlFor(user, password);
  }
  return out;
}

void SharedBrokerEnvironment::SetUp() {
  if (const char* url = std::getenv("FILEMESH_TEST_AMQP_URL"); url != nullptr && *url != 0) {
    g_shared = RabbitNode::External(url).release();
    return;
  }
  std::string error;
  g_shared = RabbitNode::Start(&error).release();
  ASSERT_NE(g_shared, nullptr) << "cannot start a RabbitMQ node: " << error;
}

void SharedBrokerEnvironment::TearDown() {
  delete g_shared;
  g_shared = nullptr;
}

RabbitNode* SharedBroker() { return g_shared; }

}  // namespace filemesh::testing
