// config/default_config.cpp - the commented postern.toml written by `postern init DIR` (SPEC §4)
// A working configuration for a test machine: listen on 127.0.0.1:2525, host `localhost` into
// a maildir. Relative paths are relative to the directory holding this file. The unit tests
// load this text with our own loader, so it cannot drift from what the loader accepts.
#include "config/config.hpp"

namespace postern::config {

std::string default_config_text() {
    return R"toml(# postern.toml - Postern SMTP mail gateway configuration (written by `postern init`).
#
# TOML. Unknown keys are errors: `postern check-config -c postern.toml` reports
# each problem as FILE:LINE: message. Relative paths are resolved against the
# directory that holds this file. Durations are strings such as "30s", "5m",
# "1h", "2d", "1w", or an integer number of seconds.

# The name this server gives in its greeting and EHLO, and in Received: headers.
# Default: the machine's host name.
hostname = "localhost"

[server]
# Addresses to accept SMTP on, as "ip:port"; IPv6 as "[::1]:2525". Numeric only:
# a listen address is never looked up in the DNS.
listen = ["127.0.0.1:2525"]
# Largest message accepted, in bytes (advertised with SIZE; larger is refused
# with 552 5.3.4). Also "50M", "10MiB", "1G" (powers of 1024). 1K to 2G.
max_message_size = "50M"
# Message content is held in memory until it is stored. All sessions together
# may hold this much; past 1M a message needs room here, else it gets 452 4.3.1
# (try again later). Smaller messages always fit. At least max_message_size.
max_buffered_size = "512M"
# Recipients per transaction; more get 452 4.5.3 (1 to 100000).
max_recipients = 1000
# Concurrent inbound sessions in total, and from any one client IP address
# (max_connections_per_ip is at most max_connections).
max_connections = 1000
max_connections_per_ip = 50
# How long a client may stay silent while we wait for a command (RFC 5321
# 4.5.3.2.7 suggests 5 minutes), and while it sends the message content.
# 1s to 1h.
command_timeout = "5m"
data_timeout = "5m"
# Bad commands tolerated before the session is closed with 421 (1 to 1000).
max_errors = 10
# Longest command line accepted, CRLF included (512 to 65536). RFC 5321
# 4.5.3.1.4 sets 512; SMTP extensions need more.
max_line_length = 2048
# Started as root, Postern binds its listeners and reads its TLS keys, then
# drops to this user for good (the spool and maildirs are handed to it).
# scripts/install-deps.sh creates the system user "postern". Not started as
# root: ignored. With no user, starting as root is refused unless
# allow_root = true (not recommended).
user = "postern"
# allow_root = false
# Threads that run inbound sessions, each with its own event loop (0 = one per
# CPU, up to 256). Deliveries, the queue and DNS run on one more thread.
threads = 0

[spool]
# Where accepted messages wait for delivery. Required.
dir = "var/spool"
# How a message is made durable before its 250: "filesystem" = one syncfs of
# the spool's file system for every message written meanwhile (fast; it also
# flushes other files on that file system: give the spool its own), "file" =
# fsync of each queue file, as Postfix does.
sync = "filesystem"

[tls]
# Opportunistic TLS, both ways. Inbound: advertise and accept
# STARTTLS. Outbound: issue STARTTLS whenever the receiving server offers it;
# its certificate is checked and logged but not enforced. false = no TLS
# unless a profile requires it.
opportunistic = true
# The certificate (chain) and private key offered to clients with STARTTLS,
# in PEM. Set both or neither; without them STARTTLS is not offered.
cert_file = "var/tls/cert.pem"
key_file = "var/tls/key.pem"
# CA certificates (PEM) used to verify servers we deliver to. "" = the
# system trust store.
ca_file = ""
# Outbound: after a failed TLS handshake the recipients are deferred, and
# the next attempt comes no sooner than this (0s to 1d). If the handshake
# fails again for the same message and host, it is delivered without TLS.
handshake_retry_delay = "5m"

[queue]
# Delays between delivery attempts of a deferred message: the first retry
# after 1m, the next after 5m, and so on. Each 1s to 7d, never decreasing.
retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]
# A message still undelivered after this long is bounced to its sender
# (0s to 60d; 0s = try once, then bounce, like Postfix's maximal_queue_lifetime = 0).
max_age = "5d"
# true = put every accepted message on hold until `postern queue release`.
hold = false

[delivery]
# The port outbound mail is delivered to on MX hosts.
port = 25
# How long to wait for a next hop's reply, as a whole (1s to 1h; RFC 5321
# 4.5.3.2): to the greeting and every command, and to the end of the message.
# A server that answers nothing, or a byte at a time, is given up after this.
command_timeout = "5m"
final_timeout = "10m"
# 8-bit mail for a next hop without 8BITMIME is made 7-bit (quoted-printable),
# as Postfix does. false: mail declared 8-bit bounces (5.6.3) instead, so that
# no signature (DKIM) over its body is broken on the way; 8-bit mail that was
# not declared so goes as it came.
mime_conversion = true

[dns]
# Resolvers to ask, as "ip" or "ip:port" (port 53 by default); numeric only.
# Empty = the system resolver. When set, every name, special-use ones such as
# .test included, is resolved through these servers.
servers = []

[log]
# Log lines on stderr: "text" (key=value) or "json" (one object per line).
format = "text"

# Domains this server receives mail for. Each needs a name and exactly one of:
#   relay_to = ["10.0.0.5:25"]   forward the mail to these hosts, e.g. the
#                                internal mail server (port 25 by default)
#   maildir  = "var/mail/NAME"   store it: user@NAME lands in
#                                <maildir>/user/new/
[[domain]]
name = "localhost"
maildir = "var/mail/localhost"

# Connection profiles: TLS requirements for particular peers. Which profile
# applies, the most specific match first:
#   inbound:  client IP (exact, then longest prefix), client host name
#             (forward-confirmed reverse DNS; exact, then wildcard), sender
#             domain at MAIL FROM, then "*";
#   outbound: recipient domain (exact, then wildcard), destination host IP,
#             destination host name, then "*".
# An entry may appear in one profile only. `postern tls-policy DOMAIN` shows
# which profile applies to mail for DOMAIN, and why. Example:
#
# [[profile]]
# name = "partner"
# # An address, a CIDR block, a trailing-wildcard IPv4 ("10.1.*"), a host
# # name, a wildcard name ("*.partner.test": one or more labels in front of
# # partner.test), or "*" (every peer no other profile matches).
# hosts = ["192.0.2.0/24", "10.1.*", "mx.partner.test", "*.partner.test"]
# # Select the profile for mail from these domains (inbound only, at MAIL
# # FROM) and to these domains (outbound only).
# sender_domains = ["partner.test"]
# recipient_domains = ["partner.test", "*.partner.test"]
# # "hosted" (default): clients of this profile may send to hosted domains
# # only. "any": clients matched by hosts may relay to any domain.
# relay = "hosted"
# [profile.outbound]
# # "opportunistic", "mandatory" (never plaintext) or "none"; absent: follow
# # tls.opportunistic.
# tls = "mandatory"
# # "none" (encryption only), "ca" (chain to a trusted CA), "ca+name" (and
# # the certificate names the peer), "fingerprint" (pinned), "dane".
# # Anything but "none" needs tls = "mandatory".
# verify = "ca+name"
# # Names the certificate must carry; default: the MX host name and the
# # recipient domain. Only with verify = "ca+name" or "dane".
# # peer_names = ["mx.partner.test", "*.partner.test"]
# # With verify = "fingerprint": "sha256:HEX" pins the certificate,
# # "spki-sha256:HEX" its public key.
# # fingerprints = ["sha256:..."]
# # Lowest TLS version ("1.0" to "1.3") and symmetric cipher strength.
# min_tls_version = "1.2"
# min_cipher_bits = 128
# # Trust store for verify = "ca" or "ca+name"; default: tls.ca_file.
# # ca_file = "partner-ca.pem"
# [profile.inbound]
# # "mandatory": MAIL, RCPT, DATA get 530 5.7.0 until the client has done
# # STARTTLS (needs tls.cert_file).
# tls = "mandatory"
# # Client certificate: "none" requests none; anything stronger requires one.
# verify = "none"

# Static routes for mail to domains not hosted here, used instead of MX
# lookup (like a transport map). domain = "*" is a smarthost for every domain
# not hosted. hosts are "host:port", port 25 by default.
#
# [[route]]
# domain = "partner.test"
# hosts = ["127.0.0.2:2526"]
)toml";
}

}  // namespace postern::config
