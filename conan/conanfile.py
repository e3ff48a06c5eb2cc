# Conan 2 recipe for filemesh. The project's CI builds from Debian's packages
# (Conan Center is out of reach there), so this recipe is kept in step with
# CMakeLists.txt by hand: same options, same components, same dependencies.
from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout


class FilemeshConan(ConanFile):
    name = "filemesh"
    version = "0.1.0"
    license = "Apache-2.0"
    description = ("File listing and search SDK whose calls keep answering "
                   "when their RPC path fails")
    topics = ("filesystem", "search", "grpc", "rabbitmq")
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fPIC": [True, False]}
    default_options = {"shared": False, "fPIC": True}
    exports_sources = ("CMakeLists.txt", "cmake/*", "include/*", "src/*", "proto/*",
                       "docs/openapi.yaml")

    def requirements(self):
        self.requires("protobuf/3.21.12", transitive_headers=True)
        self.requires("abseil/20220623.1", transitive_headers=True)
        self.requires("re2/20220601")

    def build_requirements(self):
        self.tool_requires("protobuf/3.21.12")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["FILEMESH_BUILD_TESTS"] = False
        tc.cache_variables["FILEMESH_BUILD_BENCHMARKS"] = False
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()

    def package_info(self):
        # Consumers use the CMake package filemesh installs itself.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs.append("lib/cmake/filemesh")
