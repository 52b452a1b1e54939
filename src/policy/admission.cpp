// policy/admission.cpp - connection counting against the global and per-IP limits.
#include "policy/admission.hpp"

namespace postern::policy {

admission::verdict admission::admit(const std::string& ip, std::uint32_t max_total, std::uint32_t max_per_ip) {
    std::lock_guard lk(mu_);
    if (total_ >= max_total) return verdict::too_many;
    auto& n = per_ip_[ip];
    if (n >= max_per_ip) {
        if (n == 0) per_ip_.erase(ip);  // max_per_ip 0: nothing was counted
        return verdict::too_many_from_ip;
    }
    ++n;
    ++total_;
    return verdict::admitted;
}

void admission::release(const std::string& ip) {
    std::lock_guard lk(mu_);
    auto it = per_ip_.find(ip);
    if (it == per_ip_.end()) return;  // never admitted: nothing to give back
    if (--it->second == 0) per_ip_.erase(it);
    --total_;
}

std::uint32_t admission::open() const {
    std::lock_guard lk(mu_);
    return total_;
}

std::uint32_t admission::open_from(const std::string& ip) const {
    std::lock_guard lk(mu_);
    auto it = per_ip_.find(ip);
    return it == per_ip_.end() ? 0 : it->second;
}

}  // namespace postern::policy
