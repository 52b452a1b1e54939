// config/public_suffix.cpp - is_public_suffix() over libpsl; public_suffix_under() over the
// list file.
#include "config/public_suffix.hpp"

#include <libpsl.h>

#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "config/values.hpp"

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

// Every rule of a list file ("// comment" lines and blank lines skipped; a rule ends at the
// first white space; "!" exceptions kept as the name they name), in lower-case A-labels.
std::vector<std::string> read_rules(const std::string& path) {
    std::vector<std::string> rules;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto end = line.find_first_of(" \t\r");
        std::string rule = line.substr(0, end);
        if (rule.empty() || rule.starts_with("//")) continue;
        if (rule.starts_with("!")) rule.erase(0, 1);
        auto a = detail::to_a_labels(rule);
        if (!a) continue;  // a rule with no A-label form names nothing we compare
        std::string r = std::move(*a);
        for (auto& ch : r)
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        rules.push_back(std::move(r));
    }
    return rules;
}

}  // namespace

bool is_public_suffix(std::string_view domain) {
    const psl_ctx_t* ctx = suffix_list();
    const std::string d(domain);
    if (ctx == nullptr) return d.find('.') == std::string::npos;  // no list at all: TLDs only
    return psl_is_public_suffix2(ctx, d.c_str(), PSL_TYPE_ANY) != 0;
}

std::optional<std::string> public_suffix_under(std::string_view domain, std::string_view list_file) {
    static std::mutex m;
    static std::map<std::string, std::vector<std::string>, std::less<>> loaded;
    const std::lock_guard lock(m);
    auto it = loaded.find(list_file);
    if (it == loaded.end()) it = loaded.emplace(std::string(list_file), read_rules(std::string(list_file))).first;
    const std::string tail = "." + std::string(domain);
    for (const auto& rule : it->second)
        if (rule.size() > tail.size() && rule.ends_with(tail)) return rule;
    return std::nullopt;
}

}  // namespace postern::config
