// cli/config_file.hpp - the configuration file as the administrative commands read it.
// `queue` and `tls-policy` need no key and no certificate, so they do not check that the TLS
// files can be read (a key readable by root only is a documented setup, and the spool's owner
// runs `postern queue`); `check-config` finds the line of a key to report a TLS file at.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::cli {

// The whole file, or "PATH: cannot open: REASON" (config::load's wording).
result<std::string> read_config_text(const std::string& path);

// config::load without its check of the files the config names (config::parse with
// check_files = false): every other error as config::load reports it, FILE:LINE.
result<std::shared_ptr<const config::config>> load_without_files(const std::string& path);

// The line (1-based) where TOML `text` sets `table`.`key`: `key = ...` under a `[table]`
// header, or `table.key = ...` before any header; 0 when it is not written in either form.
int line_of_key(std::string_view text, std::string_view table, std::string_view key);

}  // namespace postern::cli
