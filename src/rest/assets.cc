#include "rest/assets.h"

#include "absl/strings/match.h"
#include "base/absl_compat.h"

namespace filemesh::internal {

const EmbeddedAsset* FindAsset(std::string_view route) {
  for (size_t i = 0; i < kEmbeddedAssetCount; ++i) {
    if (kEmbeddedAssets[i].route == route) return &kEmbeddedAssets[i];
  }
  return nullptr;
}

std::string_view AssetContentType(std::string_view route) {
  const auto ends_with = [route](std::string_view suffix) {
    return absl::EndsWith(AbslView(route), AbslView(suffix));
  };
  if (route == "/" || ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".yaml")) return "application/yaml";
  return "application/octet-stream";
}

}  // namespace filemesh::internal
