// cli/config_file.hpp - where check-config finds the line of a TLS key to report a file at.
// (`queue` and `tls-policy` load the file with config::load(path, check_files = false): they
// need no key and no certificate, and a key readable by root only is a documented setup.)
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::cli {

// The line (1-based) where TOML `text` sets `table`.`key`: `key = ...` under a `[table]`
// header, or `table.key = ...` before any header; 0 when it is not written in either form.
int line_of_key(std::string_view text, std::string_view table, std::string_view key);

}  // namespace postern::cli
