// mserv2's Prometheus metrics of its FileIndex (--metrics_listen), read from
// FileIndex::stats() at each scrape: docs/services.md lists them.

#ifndef FILEMESH_EXAMPLES_MSERV2_INDEX_METRICS_H_
#define FILEMESH_EXAMPLES_MSERV2_INDEX_METRICS_H_

#include <vector>

#include "filemesh/file_index.hpp"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace filemesh_examples {

class IndexMetrics : public prometheus::Collectable {
 public:
  // `index` must outlive the metrics' registration.
  explicit IndexMetrics(const filemesh::FileIndex& index) : index_(index) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const filemesh::FileIndex& index_;
};

}  // namespace filemesh_examples

#endif  // FILEMESH_EXAMPLES_MSERV2_INDEX_METRICS_H_
