// runtime/daemon.hpp - `postern serve`: load the config, open the spool, bind the listeners,
// run the event loop; SIGHUP reloads (a bad file keeps the old config), SIGTERM drains.
#pragma once
#include <string>

namespace postern::runtime {

// Returns the process exit status: 0 after a clean stop, 2 for a bad config, 1 otherwise.
int serve(const std::string& config_path);

}  // namespace postern::runtime
