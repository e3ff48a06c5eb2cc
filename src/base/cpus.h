// How many CPUs this process may use.

#ifndef FILEMESH_SRC_BASE_CPUS_H_
#define FILEMESH_SRC_BASE_CPUS_H_

namespace filemesh::internal {

// The CPUs this process may run on (its affinity mask), further capped by
// its cgroup's CPU quota (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us, rounded up): what a container limited to 1.5 CPUs on a
// 64-core host may really use is 2, not 64. At least 1.
int UsableCpus();

// The same from the given texts (for tests): `cpu_max` is cgroup v2's
// cpu.max ("max 100000" or "150000 100000"), empty when absent; `affinity`
// the affinity mask's count.
int UsableCpusFrom(int affinity, const char* cpu_max);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_CPUS_H_
