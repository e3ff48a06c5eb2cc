#include "rpc/handler_registry.h"

#include <set>

namespace filemesh::internal {

std::string ServiceOfMethod(const std::string& method) {
  if (method.size() < 4 || method[0] != '/') return "";
  const size_t slash = method.find('/', 1);
  if (slash == std::string::npos || slash == 1 || slash + 1 == method.size()) return "";
  return method.substr(1, slash - 1);
}

std::vector<std::string> HandlerRegistry::ServiceNames() const {
  std::set<std::string> names;
  for (const auto& [method, handler] : handlers_) names.insert(ServiceOfMethod(method));
  return {names.begin(), names.end()};
}

}  // namespace filemesh::internal
