// config/public_suffix.cpp - is_public_suffix() over libpsl.
#include "config/public_suffix.hpp"

#include <libpsl.h>

#include <string>

namespace postern::config {

namespace {

// Loaded once: psl_latest() reads the system's list file when it is newer than the built-in
// data, else returns the built-in list (never null while libpsl has built-in data).
const psl_ctx_t* suffix_list() {
    static const psl_ctx_t* const ctx = [] {
        const psl_ctx_t* c = psl_latest(nullptr);
        return c != nullptr ? c : psl_builtin();
    }();
    return ctx;
}

}  // namespace

bool is_public_suffix(std::string_view domain) {
    const psl_ctx_t* ctx = suffix_list();
    const std::string d(domain);
    if (ctx == nullptr) return d.find('.') == std::string::npos;  // no list at all: TLDs only
    return psl_is_public_suffix2(ctx, d.c_str(), PSL_TYPE_ANY) != 0;
}

}  // namespace postern::config
