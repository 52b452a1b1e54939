// dns/rdata.cpp - decode MX, A, AAAA and PTR RDATA (RFC 1035 3.1, 3.3.9, 3.3.12, 3.4.1; RFC 3596
// 2.2) and build reverse-lookup names (RFC 1035 3.5, RFC 3596 2.5).
#include "dns/rdata.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

namespace postern::dns {

std::optional<std::string> read_wire_name(std::string_view wire, std::size_t& pos) {
    std::string name;
    std::size_t p = pos;
    std::size_t octets = 0;  // wire length so far, RFC 1035 2.3.4: at most 255
    for (;;) {
        if (p >= wire.size()) return std::nullopt;  // truncated
        const auto len = static_cast<unsigned char>(wire[p++]);
        ++octets;
        if (len == 0) break;
        // RFC 1035 4.1.4: 11xxxxxx is a compression pointer; 01/10 are extended label types
        // (RFC 6891 5). Neither belongs in the uncompressed RDATA we are given.
        if ((len & 0xC0) != 0) return std::nullopt;
        if (wire.size() - p < len) return std::nullopt;
        octets += len;
        if (octets > 255) return std::nullopt;
        if (!name.empty()) name += '.';
        for (std::size_t i = 0; i < len; ++i) {
            char c = wire[p + i];
            const auto u = static_cast<unsigned char>(c);
            // A label holding '.' or '\' could not be written back unambiguously, and a host
            // name never has spaces, control or 8-bit octets: refuse rather than mangle.
            if (u <= 0x20 || u >= 0x7F || c == '.' || c == '\\') return std::nullopt;
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            name += c;
        }
        p += len;
    }
    if (octets > 255) return std::nullopt;
    pos = p;
    return name;
}

std::optional<mx_record> parse_mx_rdata(std::string_view rdata) {
    if (rdata.size() < 3) return std::nullopt;  // preference + at least the root label
    const auto hi = static_cast<unsigned char>(rdata[0]);
    const auto lo = static_cast<unsigned char>(rdata[1]);
    std::size_t pos = 2;
    auto host = read_wire_name(rdata, pos);
    if (!host || pos != rdata.size()) return std::nullopt;  // trailing octets: malformed
    return mx_record{static_cast<std::uint16_t>((hi << 8) | lo), std::move(*host)};
}

std::optional<std::string> parse_address_rdata(std::string_view rdata, std::size_t expected_size) {
    if (rdata.size() != expected_size) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    const int family = expected_size == 4 ? AF_INET : expected_size == 16 ? AF_INET6 : -1;
    if (family < 0) return std::nullopt;
    unsigned char bytes[16];
    std::memcpy(bytes, rdata.data(), expected_size);
    if (!::inet_ntop(family, bytes, buf, sizeof buf)) return std::nullopt;
    return std::string(buf);
}

namespace {

// 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; 0 when `ip` is not an IP literal.
std::size_t address_bytes(std::string_view ip, unsigned char (&out)[16]) {
    const std::string s(ip);
    if (::inet_pton(AF_INET, s.c_str(), out) == 1) return 4;
    if (::inet_pton(AF_INET6, s.c_str(), out) != 1) return 0;
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out, mapped, sizeof mapped) == 0) {
        std::memmove(out, out + 12, 4);
        return 4;
    }
    return 16;
}

}  // namespace

std::optional<std::string> reverse_name(std::string_view ip) {
    unsigned char b[16];
    const std::size_t n = address_bytes(ip, b);
    if (n == 0) return std::nullopt;
    std::string name;
    if (n == 4) {
        for (int i = 3; i >= 0; --i) name += std::to_string(b[i]) + ".";
        return name + "in-addr.arpa";
    }
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        name += hex[b[i] & 0xF];
        name += '.';
        name += hex[b[i] >> 4];
        name += '.';
    }
    return name + "ip6.arpa";
}

bool same_address(std::string_view a, std::string_view b) {
    unsigned char x[16], y[16];
    const std::size_t n = address_bytes(a, x);
    return n != 0 && n == address_bytes(b, y) && std::memcmp(x, y, n) == 0;
}

}  // namespace postern::dns
