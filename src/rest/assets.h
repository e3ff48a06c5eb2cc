// Files compiled into filemesh::rest: the gateway's browser page (src/rest/ui)
// and its OpenAPI document (docs/openapi.yaml). The table is generated at
// build time by cmake/embed_files.cmake.

#ifndef FILEMESH_SRC_REST_ASSETS_H_
#define FILEMESH_SRC_REST_ASSETS_H_

#include <cstddef>
#include <string_view>

namespace filemesh::internal {

struct EmbeddedAsset {
  std::string_view route;  // the request path it is served at
  std::string_view bytes;  // the file's exact bytes
};

extern const EmbeddedAsset kEmbeddedAssets[];
extern const size_t kEmbeddedAssetCount;

// The asset served at `route`, or null.
const EmbeddedAsset* FindAsset(std::string_view route);

// The Content-Type of an asset, from its route's extension ("/" is the page).
std::string_view AssetContentType(std::string_view route);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_ASSETS_H_
