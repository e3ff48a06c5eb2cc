// filemesh_grpc_floor: what one gRPC unary call costs on this machine, with
// nothing of filemesh in it. The reference the gateway's gRPC path is
// measured against (bench/gateway_bench.sh).
//
//   filemesh_grpc_floor [--client sync-cq|sync|async] [--callers N]
//                       [--seconds S] [--response_bytes B]
//
// Forks a server process (a raw callback method that answers inline with B
// bytes, default 600: about a ten-entry ListResponse), then keeps N calls of
// 16 bytes (default 32) in flight over one channel on loopback for S seconds
// (default 10, at most 15) after a one-second warm-up, made
//  - `sync-cq` (the default): by N threads, each blocking on a completion
//    queue it keeps for all its calls, as filemesh's gRPC transport does;
//  - `sync`: by N threads making the blocking calls generated synchronous
//    stubs make (a completion queue made and destroyed per call);
//  - `async`: by two threads, each with a completion queue and its share of
//    the N calls in flight (gRPC's cheapest client).
// Prints calls per second and the CPU time per call of the client and of the
// server process:
//
//   grpc floor: sync-cq client, 32 callers 10 s: 11528 calls/s  CPU/call: client 76 us  server 50
//   us
//
// Exit status: 0, 1 if a call failed or the server did not start, 2 on a
// usage error.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/async_unary_call.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr char kMethod[] = "/filemesh.bench.Floor/Call";

struct Options {
  int callers = 32;
  int seconds = 10;
  int response_bytes = 600;
  std::string client = "sync-cq";  // or "sync", "async": see the top
};

bool ParseInt(const char* text, int low, int high, int* out) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < low || value > high) return false;
  *out = static_cast<int>(value);
  return true;
}

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    bool ok = false;
    if (flag == "--callers") ok = ParseInt(value, 1, 256, &options->callers);
    if (flag == "--seconds") ok = ParseInt(value, 1, 15, &options->seconds);
    if (flag == "--response_bytes") ok = ParseInt(value, 0, 1 << 20, &options->response_bytes);
    if (flag == "--client") {
      options->client = value;
      ok = options->client == "sync" || options->client == "async" || options->client == "sync-cq";
    }
    if (!ok) return false;
  }
  return true;
}

// CPU seconds (user + system) used so far by process `pid`.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t pos = close + 2;
  while (pos < line.size()) {
    const size_t space = line.find(' ', pos);
    fields.push_back(line.substr(pos, space - pos));
    if (space == std::string::npos) break;
    pos = space + 1;
  }
  // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
  if (fields.size() < 13) return 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

class FloorService final : public grpc::Service {
 public:
  explicit FloorService(int response_bytes) : response_(static_cast<size_t>(response_bytes), 'x') {
    AddMethod(new grpc::internal::RpcServiceMethod(kMethod, grpc::internal::RpcMethod::NORMAL_RPC,
                                                   nullptr));
    MarkMethodRawCallback(
        0, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
               [this](grpc::CallbackServerContext* context, const grpc::ByteBuffer* /*request*/,
                      grpc::ByteBuffer* response) {
                 grpc::Slice slice(response_);
                 *response = grpc::ByteBuffer(&slice, 1);
                 grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
                 reactor->Finish(grpc::Status::OK);
                 return reactor;
               }));
  }

 private:
  const std::string response_;
};

// The child: serves until its parent closes `control` (or dies), after
// writing the bound port to `port_out`.
[[noreturn]] void Serve(const Options& options, int port_out, int control) {
  FloorService service(options.response_bytes);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) _exit(1);
  if (write(port_out, &port, sizeof(port)) != static_cast<ssize_t>(sizeof(port))) _exit(1);
  close(port_out);
  char byte;
  while (read(control, &byte, 1) > 0) {
  }
  server->Shutdown(std::chrono::system_clock::now());
  _exit(0);
}

// What the callers share with main().
struct Load {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<long> calls{0};   // completed while measuring
  std::atomic<long> failed{0};  // at any time

  void Done(bool ok) {
    if (!ok) failed.fetch_add(1, std::memory_order_relaxed);
    if (measuring.load(std::memory_order_relaxed)) calls.fetch_add(1, std::memory_order_relaxed);
  }
};

grpc::ByteBuffer Request() {
  grpc::Slice slice(std::string(16, 'r'));
  return grpc::ByteBuffer(&slice, 1);
}

std::chrono::system_clock::time_point CallDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(5);
}

// One blocking call on `queue`, which nothing else uses: what filemesh's
// gRPC transport does.
grpc::Status CallOnQueue(grpc::Channel* channel, const grpc::internal::RpcMethod& method,
                         grpc::ClientContext* context, const grpc::ByteBuffer& request,
                         grpc::ByteBuffer* response, grpc::CompletionQueue* queue) {
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientAsyncResponseReaderHelper::Create<grpc::ByteBuffer>(
          channel, queue, method, context, request));
  reader->StartCall();
  reader->Finish(response, &status, context);
  void* tag = nullptr;
  bool ok = false;
  if (!queue->Next(&tag, &ok)) return {grpc::StatusCode::INTERNAL, "queue shut down"};
  return status;
}

// A thread per caller, each making blocking calls of the registered method
// one after another: with `keep_queue`, on one completion queue it keeps
// (sync-cq); without, the calls generated synchronous stubs make (sync).
std::vector<std::thread> StartBlockingCallers(const std::shared_ptr<grpc::Channel>& channel,
                                              int callers, bool keep_queue, Load* load) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(callers));
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([channel, keep_queue, load] {
      const grpc::internal::RpcMethod method(kMethod, grpc::internal::RpcMethod::NORMAL_RPC,
                                             channel);
      const grpc::ByteBuffer request = Request();
      grpc::CompletionQueue queue;
      while (!load->stop.load(std::memory_order_relaxed)) {
        grpc::ClientContext context;
        context.set_deadline(CallDeadline());
        grpc::ByteBuffer response;
        const grpc::Status status =
            keep_queue ? CallOnQueue(channel.get(), method, &context, request, &response, &queue)
                       : grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
                             channel.get(), method, &context, request, &response);
        load->Done(status.ok());
      }
      queue.Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (queue.Next(&tag, &ok)) {
      }
    });
  }
  return threads;
}

// `callers` calls in flight at all times, split over two threads, each
// with its own completion queue: a finished call starts the next one.
std::vector<std::thread> StartAsyncCallers(const std::shared_ptr<grpc::Channel>& channel,
                                           int callers, Load* load) {
  constexpr int kThreads = 2;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    const int slots = callers / kThreads + (t < callers % kThreads ? 1 : 0);
    threads.emplace_back([channel, load, slots] {
      struct Call {
        grpc::ClientContext context;
        grpc::ByteBuffer response;
        grpc::Status status;
        std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
      };
      grpc::GenericStub stub(channel);
      grpc::CompletionQueue cq;
      const grpc::ByteBuffer request = Request();
      const auto start = [&](std::unique_ptr<Call> call) {
        call->context.set_deadline(CallDeadline());
        call->reader = stub.PrepareUnaryCall(&call->context, kMethod, request, &cq);
        call->reader->StartCall();
        Call* raw = call.release();
        raw->reader->Finish(&raw->response, &raw->status, raw);
      };
      int in_flight = 0;
      for (; in_flight < slots; ++in_flight) start(std::make_unique<Call>());
      void* tag = nullptr;
      bool ok = false;
      while (in_flight > 0 && cq.Next(&tag, &ok)) {
        std::unique_ptr<Call> done(static_cast<Call*>(tag));
        load->Done(ok && done->status.ok());
        if (load->stop.load(std::memory_order_relaxed)) {
          --in_flight;
        } else {
          start(std::make_unique<Call>());
        }
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  return threads;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] =
      "usage: filemesh_grpc_floor [--client sync-cq|sync|async] [--callers 1..256] "
      "[--seconds 1..15] [--response_bytes N]\n";
  if (argc == 2 && std::string(argv[1]) == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  int port_pipe[2];
  int control_pipe[2];
  if (pipe(port_pipe) != 0 || pipe(control_pipe) != 0) return 1;
  // Fork before this process touches gRPC.
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(port_pipe[0]);
    close(control_pipe[1]);
    Serve(options, port_pipe[1], control_pipe[0]);
  }
  close(port_pipe[1]);
  close(control_pipe[0]);
  int port = 0;
  const bool started =
      read(port_pipe[0], &port, sizeof(port)) == static_cast<ssize_t>(sizeof(port));
  close(port_pipe[0]);
  int status = 1;
  if (started) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    Load load;
    std::vector<std::thread> threads =
        options.client == "async"
            ? StartAsyncCallers(channel, options.callers, &load)
            : StartBlockingCallers(channel, options.callers, options.client == "sync-cq", &load);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up, not a synchronisation
    const double client_cpu0 = CpuSeconds(getpid());
    const double server_cpu0 = CpuSeconds(child);
    const auto start = std::chrono::steady_clock::now();
    load.measuring = true;
    std::this_thread::sleep_for(std::chrono::seconds(options.seconds));
    load.measuring = false;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double client_cpu = CpuSeconds(getpid()) - client_cpu0;
    const double server_cpu = CpuSeconds(child) - server_cpu0;
    load.stop = true;
    for (std::thread& t : threads) t.join();
    const long n = load.calls.load();
    const long failed = load.failed.load();
    std::printf(
        "grpc floor: %s client, %d callers %d s: %.0f calls/s  CPU/call: client %.0f us  server "
        "%.0f us\n",
        options.client.c_str(), options.callers, options.seconds, static_cast<double>(n) / elapsed,
        n > 0 ? client_cpu * 1e6 / static_cast<double>(n) : 0.0,
        n > 0 ? server_cpu * 1e6 / static_cast<double>(n) : 0.0);
    if (failed > 0) std::fprintf(stderr, "filemesh_grpc_floor: %ld calls failed\n", failed);
    status = failed == 0 && n > 0 ? 0 : 1;
  } else {
    std::fprintf(stderr, "filemesh_grpc_floor: the server did not start\n");
  }
  close(control_pipe[1]);
  int child_status = 0;
  waitpid(child, &child_status, 0);
  return status;
}
