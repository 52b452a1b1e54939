// cli/config_file.hpp - the configuration file as the administrative commands read it.
// `queue` and `tls-policy` need no key and no certificate, so they do not check that the TLS
// files can be read (a key readable by root only is a documented setup, and the spool's owner
// runs `postern queue`).
#pragma once
#include <memory>
#include <string>

#include "config/config.hpp"
#include "util/result.hpp"

namespace postern::cli {

// The whole file, or "PATH: cannot open: REASON" (config::load's wording).
result<std::string> read_config_text(const std::string& path);

// config::load without its check of the files the config names (config::parse with
// check_files = false): every other error as config::load reports it, FILE:LINE.
result<std::shared_ptr<const config::config>> load_without_files(const std::string& path);

}  // namespace postern::cli
