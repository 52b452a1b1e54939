// tests/unit/test_util.hpp - helpers shared by unit tests: a temporary directory.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace postern::test {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/postern-unit-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace postern::test
