// Process-wide settings of an RPC program, each an explicit call from main():
// the library itself never changes process-wide state.
//
//   int main(int argc, char** argv) {
//     filemesh::TuneProcessForRpc();
//     filemesh::EnableGrpcReflection();   // services that want grpcurl to work
//     ...
//   }

#ifndef FILEMESH_RPC_PROCESS_HPP_
#define FILEMESH_RPC_PROCESS_HPP_

namespace filemesh {

// Process-wide settings for RPC speed; a program calls it once from main(),
// before serving or calling (the library itself never does). Debian's Abseil
// is built with mutex deadlock detection on: a global lock-order graph
// updated on every absl::Mutex lock, gRPC's own included, which costs about
// a third of a loopback gRPC round trip. This turns it off, unless the
// environment sets FILEMESH_ABSL_DEADLOCK_DETECTION=1 (to debug lock order).
void TuneProcessForRpc();

// Process-wide: every gRPC server built afterwards in this process, the
// ServiceHosts' included, also serves gRPC server reflection, so that tools
// such as grpcurl can describe and call the filemesh methods by name
// (`grpcurl -plaintext HOST:PORT describe filemesh.v1.FileLister`). The
// hosts serve their methods through gRPC's generic API, so reflection's
// service list names only the health and reflection services. A program
// calls it from main() before starting a host; the library never does.
void EnableGrpcReflection();

}  // namespace filemesh

#endif  // FILEMESH_RPC_PROCESS_HPP_
