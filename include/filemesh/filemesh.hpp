// Everything of the filemesh filesystem SDK in one include.

#ifndef FILEMESH_FILEMESH_HPP_
#define FILEMESH_FILEMESH_HPP_

#include "filemesh/file_index.hpp"
#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "filemesh/names.hpp"
#include "filemesh/version.hpp"

#endif  // FILEMESH_FILEMESH_HPP_
