# Builds and runs a consumer of the package just created, through the CMake
# package filemesh installs: find_package(filemesh CONFIG).
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.gnu import PkgConfigDeps


class FilemeshTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        # With rpc on, the consumer also links filemesh::rpc and filemesh::testing.
        tc.cache_variables["FILEMESH_TEST_RPC"] = bool(self.dependencies["filemesh"].options.rpc)
        tc.generate()
        CMakeDeps(self).generate()
        # filemeshConfig.cmake finds re2 with pkg-config, as CMakeLists.txt does.
        PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            exe = os.path.join(self.cpp.build.bindir, "test_package")
            # Lists this folder: test_package.cc must be among the entries.
            self.run(f'"{exe}" "{self.source_folder}"', env="conanrun")
