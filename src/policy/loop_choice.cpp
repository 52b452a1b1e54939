// policy/loop_choice.cpp - packing new connections onto the first session loop that is not
// busy (see the header).
#include "policy/loop_choice.hpp"

#include <algorithm>

namespace postern::policy {

loop_choice::loop_choice(std::size_t loops) : load_(std::max<std::size_t>(loops, 1), 0.0) {}

void loop_choice::observe(std::span<const double> busy_fraction) {
    for (std::size_t i = 0; i < load_.size(); ++i) load_[i] = i < busy_fraction.size() ? busy_fraction[i] : 0.0;
}

std::size_t loop_choice::pick() {
    for (std::size_t i = 0; i < load_.size(); ++i)
        if (load_[i] < busy) return i;
    return next_++ % load_.size();
}

}  // namespace postern::policy
