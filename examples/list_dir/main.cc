// list_dir: lists a directory under a root with filemesh::FileLister, page by
// page, largest first.
//
//   list_dir ROOT [PATH]

#include <cstdio>
#include <string>

#include "filemesh/file_lister.hpp"
#include "filemesh/names.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s ROOT [PATH]\n", argv[0]);
    return 2;
  }
  filemesh::FileLister lister(argv[1]);

  filemesh::v1::ListRequest request;
  request.set_path(argc == 3 ? argv[2] : "");
  request.set_sort(filemesh::v1::SORT_FIELD_SIZE);
  request.set_descending(true);
  request.set_page_size(50);

  do {
    auto page = lister.List(request);
    if (!page.ok()) {
      std::fprintf(stderr, "list_dir: %s\n", page.status().ToString().c_str());
      return 1;
    }
    for (const auto& entry : page->entries()) {
      const char* type = entry.type() == filemesh::v1::FILE_TYPE_DIRECTORY ? "dir"
                         : entry.type() == filemesh::v1::FILE_TYPE_SYMLINK ? "link"
                                                                           : "file";
      std::printf("%-4s %10llu  %s\n", type, static_cast<unsigned long long>(entry.size()),
                  entry.path().c_str());
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  return 0;
}
