# Conan 2 recipe for filemesh, kept in step with CMakeLists.txt by hand: same
# options, same components, same dependencies. The recipe lives in conan/ and
# the sources are the project's root, so run it from the root:
#
#   conan create conan
#
# CI builds against Debian 12's packages instead of ConanCenter's, through a
# profile whose [platform_requires] names the versions required below.
import os
import re

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir
from conan.tools.gnu import PkgConfigDeps

required_conan_version = ">=2.0.9"


class FilemeshConan(ConanFile):
    name = "filemesh"
    license = "Apache-2.0"
    description = ("File listing and search SDK whose calls keep answering "
                   "when their RPC path fails")
    topics = ("filesystem", "search", "grpc", "rabbitmq", "rest")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    # Components (docs/architecture.md): fs and service are always built; rpc
    # (gRPC + RabbitMQ, with the header-only testing) and rest (the REST
    # gateway on Boost.Beast, which needs rpc) are options.
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        "rpc": [True, False],  # FILEMESH_BUILD_RPC: filemesh::rpc and filemesh::testing
        "rest": [True, False],  # FILEMESH_BUILD_REST: filemesh::rest (needs rpc)
        "cli": [True, False],  # FILEMESH_BUILD_CLI: the filemesh command (bin/filemesh)
    }
    default_options = {
        "shared": False,
        "fPIC": True,
        "rpc": True,
        "rest": True,
        "cli": True,
    }

    def set_version(self):
        # The version is project()'s in CMakeLists.txt (read when exporting).
        if self.version:
            return
        cmakelists = load(self, os.path.join(self.recipe_folder, os.pardir, "CMakeLists.txt"))
        match = re.search(r"project\(\s*filemesh\s+VERSION\s+([0-9.]+)", cmakelists)
        if not match:
            raise ConanException("no 'project(filemesh VERSION ...)' in CMakeLists.txt")
        self.version = match.group(1)

    def export_sources(self):
        # What the build reads, copied from the project root (this recipe's
        # parent folder), so the cache holds a tree CMake can configure.
        root = os.path.join(self.recipe_folder, os.pardir)
        copy(self, "CMakeLists.txt", src=root, dst=self.export_sources_folder)
        copy(self, "LICENSE", src=root, dst=self.export_sources_folder)
        for folder in ("cmake", "include", "src", "proto"):
            copy(self, "*", src=os.path.join(root, folder),
                 dst=os.path.join(self.export_sources_folder, folder))
        # Compiled into filemesh::rest (src/rest/CMakeLists.txt).
        copy(self, "openapi.yaml", src=os.path.join(root, "docs"),
             dst=os.path.join(self.export_sources_folder, "docs"))

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")
        if not self.options.rpc:
            # rest is built on rpc.
            self.options.rm_safe("rest")

    def layout(self):
        # Outside the cache (conan install/build conan) the sources are this
        # folder's parent; in the cache, export_sources() put them at the root.
        self.folders.root = os.pardir
        cmake_layout(self)

    def requirements(self):
        # The public headers include <filemesh/v1/filemesh.pb.h> and Abseil's
        # Status, StatusOr, Time and Cord.
        self.requires("protobuf/3.21.12", transitive_headers=True, transitive_libs=True)
        self.requires("abseil/20220623.1", transitive_headers=True, transitive_libs=True)
        # filemesh::fs's matcher; found through pkg-config (re2.pc).
        self.requires("re2/20220601")
        # FileIndex's snapshots use zlib's CRC-32: CMake's own FindZLIB finds it
        # (zlib comes with every protobuf), so no requirement here: the
        # Debian-12 profile this project is checked with maps no zlib.
        # filemesh::service checks the PEM files of TLS options.
        self.requires("openssl/[>=3 <4]")
        if self.options.rpc:
            self.requires("grpc/1.51.1")
            self.requires("rabbitmq-c/0.11.0")
        if self.options.get_safe("rest"):
            # filemesh::rest's HttpServer: Boost.Beast and Asio, headers only.
            self.requires("boost/1.74.0")
            # RestGateway's metrics: its public header takes a prometheus::Registry.
            self.requires("prometheus-cpp/1.0.1", transitive_headers=True, transitive_libs=True)
            # The gateway's operations in an SQLite file (--operations_db).
            self.requires("sqlite3/3.40.1")
            # ... or in PostgreSQL, shared by gateway replicas (libpq).
            self.requires("libpq/15.18")
        if self.options.cli:
            # The command's remote mode (--gateway) is an HTTP client.
            self.requires("cpp-httplib/0.11.4")

    def build_requirements(self):
        # protoc for proto/filemesh/v1/filemesh.proto (C++ messages only: the
        # gRPC side uses the generic API, so no grpc_cpp_plugin).
        self.tool_requires("protobuf/<host_version>")

    def validate(self):
        check_min_cppstd(self, 17)
        if self.settings.os == "Windows":
            raise ConanInvalidConfiguration("filemesh is POSIX-only (openat, getdents)")

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["FILEMESH_BUILD_RPC"] = bool(self.options.rpc)
        tc.cache_variables["FILEMESH_BUILD_REST"] = bool(self.options.get_safe("rest"))
        tc.cache_variables["FILEMESH_BUILD_CLI"] = bool(self.options.cli)
        tc.cache_variables["FILEMESH_BUILD_TESTS"] = False
        tc.cache_variables["FILEMESH_BUILD_BENCHMARKS"] = False
        tc.cache_variables["FILEMESH_WERROR"] = False
        tc.generate()
        CMakeDeps(self).generate()
        # CMakeLists.txt finds re2 with pkg_check_modules(re2).
        PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # filemesh.pc names Debian's pkg-config modules; Conan consumers use
        # the CMake package below (or Conan's own generators).
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))

    def package_info(self):
        # Consumers use the CMake package filemesh installs itself
        # (lib/cmake/filemesh/filemeshConfig.cmake: find_package(filemesh
        # CONFIG COMPONENTS fs service rpc testing rest)), which finds the
        # dependencies again.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs.append(os.path.join("lib", "cmake", "filemesh"))

        # For Conan's other generators (PkgConfigDeps...) and the link: the
        # libraries in link order. Every requirement is used by one of them.
        libs = ["filemesh_service", "filemesh_fs", "filemesh_base", "filemesh_proto"]
        if self.options.rpc:
            libs = ["filemesh_rpc"] + libs
        if self.options.get_safe("rest"):
            libs = ["filemesh_rest"] + libs
        self.cpp_info.libs = libs
        # zlib (filemesh_fs's snapshots) is the system's, as requirements() says.
        self.cpp_info.system_libs = ["pthread", "z"]
