#!/usr/bin/env python3
# fuzz/seeds.py - write the seed corpora fuzz/corpus/TARGET/ from the unit tests' inputs.
# Each seed is the target's parameter octets (see the header of fuzz/TARGET.cpp) followed by
# its data. Run it again after changing an input format; `fuzz/run.sh` never writes here.
import os
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
seeds = {}


def add(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    seeds.setdefault(target, []).append((name, data))


def u16(n):
    return struct.pack("<H", n & 0xFFFF)


def u64(n):
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF)


def s8(b):  # length-prefixed string (one octet)
    b = b.encode() if isinstance(b, str) else b
    return bytes([len(b)]) + b


def s16(b):  # length-prefixed string (two octets)
    b = b.encode() if isinstance(b, str) else b
    return u16(len(b)) + b


# ---- smtp_server: flags, split offset (u16), the client's bytes -------------------------------
# flags: 1 require_tls, 2 no STARTTLS, 4 tight limits, 8/16 store reply, 32 refuse after TLS,
# 64 timeout at the end, 128 no EOF.
conversation = (  # tests/unit/smtp/session_split_test.cpp
    "EHLO client.test\r\n"
    "MAIL FROM:<alice@sender.test> BODY=8BITMIME\r\n"
    "RCPT TO:<bob@example.test>\r\n"
    "RCPT TO:<x@relay.test>\r\n"
    "DATA\r\n"
    "Subject: t\r\n\r\n..stuffed\r\nfake\n.\nend\r.\rx\r\n.\rmore\r\n"
    ".\r\n"
    "MAIL FROM:<> \r\n"
    "RCPT TO:<Postmaster>\r\n"
    "BDAT 10\r\n\r\n.\r\nQUIT\rBDAT 0 LAST\r\n"
    "NOOP\n"
    "QUIT\r\n")
server = {
    "reference": (0, 100, conversation),
    "smuggling": (0, 7, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
                        "x\r\n.\ry\n.\r\n.\nz\r\n.\r\nNOOP\r\n"),
    "smuggling-lf": (0, 30, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
                            "a\n.\nMAIL FROM:<evil@s.test>\nRCPT TO:<v@example.test>\nDATA\nevil\n.\n"
                            "\r\n.\r\nQUIT\r\n"),
    "data-bare-lf-command": (0, 0, "EHLO c\nMAIL FROM:<a@s.test>\nRCPT TO:<b@example.test>\nDATA\n.\r\nQUIT\n"),
    "starttls-injection": (0, 20, "EHLO c\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<evil@s.test>\r\n"),
    "starttls-then-mail": (0, 24, "EHLO c\r\nSTARTTLS\r\nEHLO c\r\nMAIL FROM:<a@s.test>\r\n"
                                  "RCPT TO:<b@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"),
    "starttls-twice": (0, 18, "EHLO c\r\nSTARTTLS\r\nEHLO c\r\nSTARTTLS\r\nSTARTTLS now\r\nQUIT\r\n"),
    "require-tls": (1, 0, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nBDAT 3\r\nabcSTARTTLS\r\nEHLO c\r\n"
                          "MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"),
    "refuse-after-tls": (32, 9, "EHLO c\r\nSTARTTLS\r\nEHLO c\r\nMAIL FROM:<a@s.test>\r\nBDAT 3 LAST\r\nabcQUIT\r\n"),
    "no-starttls": (2, 3, "EHLO c\r\nSTARTTLS\r\nHELO c\r\nMAIL FROM:<a@s.test> SIZE=5\r\nQUIT\r\n"),
    "bdat": (0, 40, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 2\r\nabBDAT 2\r\n"
                    "cdBDAT 1 LAST\r\ne"
                    "MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 4 LAST\r\n\nb\nc"
                    "BDAT 5 FIRST\r\nBDAT 99999999999999999999999\r\nDATA\r\nQUIT\r\n"),
    "bdat-refused": (4, 5, "BDAT 6\r\nQUIT\r\nEHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n"
                           "BDAT 100 LAST\r\n" + "x" * 100 + "RSET\r\n"),
    "pipelining": (8, 50, "EHLO client.test\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\n"
                          "RCPT TO:<c@relay.test>\r\nRCPT TO:<d@greylist.test>\r\nRCPT TO:<e@note.test>\r\n"
                          "NOOP\r\nRSET\r\nMAIL FROM:<e@s.test>\r\nVRFY x\r\n"),
    "messages": (16, 1, "EHLO c\r\n" + "".join(
        "MAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nm%d\r\n.\r\n" % i for i in range(3))),
    "utf8": (0, 2, "EHLO c\r\nMAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8\r\n"
                   "RCPT TO:<ü@example.test>\r\nDATA\r\n\xe9\r\n.\r\nMAIL FROM:<δ@x.test>\r\n"),
    "params": (0, 9, "EHLO c\r\nMAIL FROM:<a@sender.test> size=10000 body=8bitmime SMTPUTF8\r\nRSET\r\n"
                     "MAIL FROM:<a@sender.test> SIZE=abc\r\nMAIL FROM:<a@sender.test> FOO=bar\r\n"
                     "MAIL FROM:<a@sender.test> BODY=BINARYMIME\r\nMAIL FROM:<a@Blocked.test>\r\n"
                     "MAIL FROM:<a@shutdown.test>\r\nNOOP\r\n"),
    "errors": (4, 0, "BAD1\r\nBAD2\r\nMAIL\r\nEHLO\r\nHELO \r\nEHLO a\tb\r\nDATA now\r\n\x00\r\nBAD4\r\nNOOP\r\n"),
    "long-line": (4, 33, "EHLO " + "x" * 200 + "\r\nNOOP\r\n" + "y" * 70 + "\r\nQUIT\r\n"),
    "too-big": (4, 60, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n" + "z" * 90 +
                       "\r\n.\r\nQUIT\r\n"),
    "http": (0, 5, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"),
    "timeout-in-data": (64, 0, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nhalf"),
    "store-421": (24, 3, "EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n"),
}
for name, (flags, split, text) in server.items():
    add("smtp_server", name, bytes([flags]) + u16(split) + text.encode("utf-8", "surrogateescape"))

# ---- smtp_command: keyword octet (1 = RCPT "TO:"), one command line ----------------------------
commands = [
    (0, "MAIL FROM:<a@sender.test> SIZE=10 BODY=8BITMIME SMTPUTF8"),
    (0, "mail from: <\"x>y\"@b> P"),
    (0, "MAIL FROM:<> "),
    (0, "MAIL FROM:<a@s.test>x"),
    (1, "RCPT TO:<@r1.test,@r2.test:bob@example.test> NOTIFY=NEVER ORCPT=rfc822;b@x"),
    (1, "rcpt to:<Postmaster>"),
    (0, "BDAT 10 LAST"),
    (0, "BDAT 18446744073709551615"),
    (0, "BDAT 18446744073709551616 last"),
    (0, "BDAT 5  LAST  "),
    (0, "EHLO   client.test   "),
    (0, "MAIL FROM:<a@b> K=v\xc3\xa9 =x"),
]
for i, (kw, line) in enumerate(commands):
    add("smtp_command", "line%02d" % i, bytes([kw]) + line.encode("utf-8", "surrogateescape"))

# ---- smtp_client: flags, one octet per message, cut (u16), the server's bytes -----------------
# flags: 1 STARTTLS, 4 failed handshake, 8/16 messages-1, 32 chunks (0xFF-separated), 64 timeout,
# 128 content 0 is 8-bit (made 7-bit for a server without 8BITMIME).
# message octet: content (2 bits), recipients (2 bits, 0 = a bad one), 16 8BITMIME, 32 SMTPUTF8,
# 64 null sender, 128 oversize.
full_ehlo = ("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
             "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n")
turns = [  # tests/unit/smtp/client_split_test.cpp
    "220 mx.example.test ESMTP\r\n",
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
    "220 2.0.0 Ready to start TLS\r\n",
    "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 20000\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n",
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 <nobody@example.test>:\r\n"
    "550 5.1.1 Recipient address rejected\r\n354 End data\r\n",
    "250 2.0.0 Ok: queued as 4F2A\r\n",
    "221 2.0.0 Bye\r\n",
]
client = {
    "starttls-pipelined": (1, [0x18], 5, "".join(turns)),
    "starttls-chunks": (1 | 32, [0x18], 0, "\xff".join(turns)),
    "plain-two-messages": (8, [0x04, 0x19], 3,
                           "220 x\r\n250-x\r\n250 8BITMIME\r\n250 ok\r\n250 ok\r\n354 go\r\n250 sent\r\n"
                           "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 sent\r\n221 bye\r\n"),
    "helo-fallback": (0, [0x04], 1, "220 x\r\n502 no\r\n250 x\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n"),
    "greeting-refused": (0, [0x04], 0, "554 5.3.2 go away\r\n221 bye\r\n"),
    "starttls-refused": (1, [0x04], 2, "220 x\r\n" + full_ehlo + "454 4.7.0 TLS not available\r\n221 bye\r\n"),
    "starttls-injection": (1 | 32, [0x04], 0, "220 x\r\n\xff" + full_ehlo + "\xff220 go\r\n250 injected\r\n\xff"
                                              + full_ehlo + "\xff250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n"),
    "unsolicited": (32, [0x04], 0, "220 x\r\n250 extra\r\n\xff250 x\r\n"),
    "pipelined-refusals": (32 | 8, [0x0c, 0x08], 0,
                           "220 x\r\n\xff" + full_ehlo + "\xff550 no\r\n550 no\r\n550 no\r\n554 no valid rcpt\r\n\xff"
                           "250 reset\r\n\xff250 ok\r\n450 later\r\n250 ok\r\n354 go\r\n\xff421 closing\r\n"),
    "dot-discard": (32, [0x08], 0, "220 x\r\n\xff" + full_ehlo + "\xff550 no\r\n550 no\r\n550 no\r\n354 go\r\n\xff"
                                   "250 hm\r\n\xff250 reset\r\n\xff221 bye\r\n"),
    "local-refusals": (24, [0x00, 0xa4, 0x30, 0x80], 0, "220 x\r\n250-x\r\n250 SIZE 100\r\n221 bye\r\n"),
    "lost-in-final": (64, [0x04], 0, "220 x\r\n" + full_ehlo + "250 ok\r\n250 ok\r\n354 go\r\n"),
    "eight-bit-to-7bit-server": (128 | 8, [0x14, 0x14], 0,
                                 "220 x\r\n250-x\r\n250-PIPELINING\r\n250 SIZE 1000\r\n250 ok\r\n250 ok\r\n"
                                 "354 go\r\n250 sent\r\n250 ok\r\n250 ok\r\n354 go\r\n250 sent\r\n221 bye\r\n"),
    "eight-bit-to-8bitmime-server": (128, [0x14], 0, "220 x\r\n" + full_ehlo + "250 ok\r\n250 ok\r\n354 go\r\n"
                                                      "250 sent\r\n221 bye\r\n"),
    "multiline-enhanced": (0, [0x04], 4, "220-mx\r\n220 ESMTP\r\n250-mx\r\n250-SIZE\r\n250 PIPELINING\r\n"
                                         "250 2.1.0 ok\r\n550-5.1.1 a\r\n550 5.1.1 b\r\n354 go\r\n"),
}
for name, (flags, msgs, cut, text) in client.items():
    flags = (flags & ~0x18) | ((len(msgs) - 1) << 3)
    data = text.encode("latin-1")
    add("smtp_client", name, bytes([flags]) + bytes(msgs) + u16(cut) + data)

# ---- smtp_reply: limits octet, split (u16), the bytes -----------------------------------------
replies = [
    (2, 3, "250 ok\r\n250-a\r\n250 b\r\n"),
    (2, 5, "250 2.1.0 Ok\r\n550-5.7.1 first\r\n550 5.7.1 second\r\n250 2.0.0\r\n451 4.123.456 x\r\n"),
    (2, 1, "250 5.1.0 odd\r\n250 2.1.0x\r\n354 3.0.0 go\r\n550-mx.example.test says\r\n550 5.7.1 no\r\n"),
    (2, 4, "250-a\n250 b\n250\r\n250-\r\n250\r\n250 a\x1b[2Jb\rc\r\n"),
    (2, 2, "hello\r\n"),
    (2, 0, "250-a\r\n251 b\r\n"),
    (0, 3, "250 this line is too long\r\n"),
    (1, 9, "250-1\r\n250-2\r\n250-3\r\n250 4\r\n"),
    (15, 30, full_ehlo),
]
for i, (limits, split, text) in enumerate(replies):
    add("smtp_reply", "replies%02d" % i, bytes([limits]) + u16(split) + text.encode("latin-1"))

# ---- address: flags (1 allow_null, 2 utf8, 4 postmaster, 8 also bracketed), the text ----------
paths = [
    "<alice@Example.TEST>", "<>", "<Postmaster>", "<postmaster@example.test>", "<@r1.test,@r2.test:bob@example.test>",
    "<\"john doe\"@x.test>", "<\"a>b\"@x.test>", "<\"x\\\">\"@b>", "<a@[192.0.2.1]>", "<a@[IPv6:2001:db8::1]>",
    "<a@[IPv6:::ffff:192.0.2.1]>", "<a@[x-tag:opaque]>", "<δοκιμή@παράδειγμα.δοκιμή>", "<a@xn--fsq.example.test>",
    "<" + "l" * 64 + "@x.test>", "<a..b@c>", "<a@b> SIZE=1", "<a@[IPv6:1:2:3:4:5:6:7::]>",
]
for i, p in enumerate(paths):
    add("address", "path%02d" % i, bytes([7 if i % 2 == 0 else 3]) + p.encode())
add("address", "bare", bytes([8 | 2]) + b"bob@example.test")

# ---- data_decoder: size choice, two split offsets (u16 each), the bytes after 354 -------------
bodies = [
    "Subject: t\r\n\r\n..stuffed\r\nfake\n.\nend\r.\rx\r\n.\rmore\r\n.\r\nNOOP\r\n",
    ".\r\n",
    "x\r\n.\ry\n.\r\n.\nz\r\n.\r\n",
    "a\r\n..\r\n.x\r\n.\n.\r.\r\r\n.\r\n",
    "l" * 1000 + "\r\n.\r\n",
    "no end\r\n.",
    "\r\n.\r",
]
for i, b in enumerate(bodies):
    add("data_decoder", "body%02d" % i, bytes([i & 3]) + u16(3 * i) + u16(5 * i + 2) + b.encode())

# ---- config: mode (0/1 file, 2 duration+size, 3 host:port), the text -------------------------
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
default_config = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "config",
                                   "default_config.cpp")).read()
default_config = default_config.split('R"toml(', 1)[1].split(')toml"', 1)[0]
add("config", "default", b"\x00" + default_config.encode())
profiles = '''hostname = "mx.test"
[[profile]]
name = "partner"
hosts = ["192.0.2.0/24", "10.1.*", "MX.Partner.test", "*.Partner.Test", "2001:DB8:0::/32"]
sender_domains = ["Partner.test"]
recipient_domains = ["partner.test", "*.partner.test"]
relay = "any"
[profile.outbound]
tls = "mandatory"
verify = "fingerprint"
fingerprints = ["spki-sha256:0000000000000000000000000000000000000000000000000000000000000000"]
min_tls_version = "1.3"
min_cipher_bits = 256
[profile.inbound]
tls = "mandatory"
verify = "ca+name"
peer_names = ["*.Partner.test", "client.partner.test"]
ca_file = "ca/partner.pem"
[[profile]]
name = "b"
hosts = ["*"]
[profile.outbound]
tls = "none"
[[domain]]
name = "example.test"
maildir = "mail/example"
[[domain]]
name = "relay.test"
relay_to = ["10.0.0.1:25", "[::1]:2525"]
[[route]]
domain = "*"
hosts = ["smarthost.test:587"]
[tls]
cert_file = "c.pem"
key_file = "k.pem"
[spool]
dir = "s"
[queue]
retry_schedule = ["1m", 300, "1h"]
max_age = "5d"
[server]
max_message_size = "10MiB"
listen = ["127.0.0.1:2525", "[::1]:25"]
'''
add("config", "profiles", b"\x01" + profiles.encode())
add("config", "errors", b"\x00" + b'hostname = "mx.test"\n[server]\nmax_recipients = 0\nbogus = 1\n'
                                  b'[[profile]]\nname = "a"\nhosts = ["10.*"]\n[profile.outbound]\nverify = "ca"\n')
add("config", "syntax", b"\x00" + b'hostname = "mx.test"\n[server\nx = "\x01"\n')
for i, v in enumerate(["5m", "2d", "1w", "30s", "18446744073709551615", "50M", "10MiB", "1G", "7b"]):
    add("config", "value%02d" % i, b"\x02" + v.encode())
for i, v in enumerate(["127.0.0.1:2525", "[::1]:25", "mx.Example.test:587", "::1", "host"]):
    add("config", "hostport%02d" % i, bytes([3 | 4]) + v.encode())

# ---- envelope: mode (0 header, 1 state, 2 format; bits 2-4 recipients-1), the text ----------
header = ("POSTERN-QUEUE 1\nid 0192F3A4B5C6D7E8F\narrived 1732800000\nsender alice@example.test\n"
          "rcpt bob@localhost\nrcpt carol@example.test\nbody 8BITMIME\nsmtputf8 0\nclient 127.0.0.1\n"
          "helo client.example\ntls TLSv1.3 TLS_AES_256_GCM_SHA384\nsize 5\n\nhello")
add("envelope", "header", b"\x00" + header.encode())
add("envelope", "header-null-sender", b"\x00" + b"POSTERN-QUEUE 1\nid A\narrived -1\nsender\nrcpt a@b\nsize 0\n\n")
add("envelope", "state", bytes([1 | (2 << 2)]) + b"POSTERN-STATE 1\ntlsfail mx1.example.test\n0 sent 1 0 250 2.0.0 Ok\n"
                                               b"2 deferred 3 1732800600 451 4.3.0 try later\n")
add("envelope", "state-tlsfail-times", bytes([1 | (1 << 2)]) + b"POSTERN-STATE 1\ntlsfail mx1.example.test:25 1732800000\n"
                                               b"tlsfail mx2.example.test:25\ntlsfail mx3.example.test:25 x1\n"
                                               b"1 deferred 1 1732800300 454 4.7.0 TLS handshake failed\n")
add("envelope", "state-bad", bytes([1]) + b"POSTERN-STATE 1\n5 sent 1 0 x\n0 lost 1 0 x\n")
add("envelope", "format", bytes([2 | (1 << 2)]) + s8("0192F3A4B5C6D7E8F") + u64(1732800000) + s16("alice@example.test")
    + s16("bob@localhost") + s16("carol@example.test") + bytes([1]) + s8("127.0.0.1") + s16("client.example")
    + s8("TLSv1.3 TLS_AES_256_GCM_SHA384") + u64(5))


# ---- dsn: flags (1 smtputf8, 2-4 recipients, 16 plausible times), fields, the content ---------
def dsn_recipient(address, action, status, remote, diagnostic, smtp=True, last=1732800000):
    return s16(address) + bytes([action | (8 if smtp else 0)]) + s8(status) + s16(remote) + s16(diagnostic) + u64(last)


content = ("Received: from client.example (unknown [127.0.0.1])\r\n\tby mx.example.test (Postern) with ESMTP id 4F2A;"
           "\r\n\tSat, 28 Nov 2026 14:21:10 +0000\r\nSubject: hello\r\nFrom: <alice@example.test>\r\n\r\nbody\r\n")
add("dsn", "bounce", bytes([16 | (2 << 1)]) + s8("mx.example.test") + s8("0192F3A4B5C6D7E8F") + s16("alice@example.test")
    + u64(1732800000) + u64(1733200000)
    + dsn_recipient("bob@example.test", 0, "5.1.1", "mx.example.test", "550-5.1.1 <bob>: unknown\r\n550 5.1.1 user")
    + dsn_recipient("carol@example.test", 1, "4.4.1", "", "connection refused", smtp=False)
    + content.encode())
add("dsn", "utf8", bytes([1 | 16 | (1 << 1)]) + s8("mx.example.test") + s8("") + s16("δοκιμή@παράδειγμα.δοκιμή")
    + u64(0) + u64(1733200000) + dsn_recipient("ü@example.test", 0, "bogus", "[192.0.2.1]", "x" * 5000)
    + "Subject: \xe9\r\n\r\n".encode("latin-1"))
add("dsn", "null-sender", bytes([1 << 1]) + s8("h") + s8("q") + s16("<>") + u64(1) + u64(2)
    + dsn_recipient("a@b", 0, "5.0.0", "", "") + b"x")

# ---- headers: flags (mode 2 = Received: facts), the message -----------------------------------
add("headers", "received", b"\x00" + content.encode())
add("headers", "obsolete-wsp", b"\x04" + b"received \t: x\r\nX-Received: y\r\nReceived-SPF: z\r\n Received: cont\r\n"
                                         b"\r\nReceived: in body\r\n")
add("headers", "bare-lf", b"\x08" + b"Received: a\nReceived: b\n\nReceived: c\n")
add("headers", "no-empty-line", b"\x04" + b"Received: a\r\nSubject: x\r\n\tfolded\r\nbody line\r\nReceived: in body\r\n")
add("headers", "facts", bytes([2 | 4]) + s16("client.example") + s8("") + s8("127.0.0.1") + s8("mx.example.test")
    + s8("0192F3A4B5C6D7E8F") + s16("bob@example.test") + bytes([1]) + u64(1732800000) + content.encode())


# ---- seven_bit: flags (1: quoted_printable alone), the content ---------------------------------
add("seven_bit", "plain", b"\x00From: a@b.test\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9fe = 1\r\n")
add("seven_bit", "multipart", b"\x00MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n"
    b"--b1x\r\n--b1 \r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n--b1--\r\nepilogue\r\n")
add("seven_bit", "rfc822", b"\x00Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: m\r\n\r\n"
    b"\xc3\xbc\r\n--d\r\nContent-Type: message/rfc822\r\n\r\nSubject: n\r\n\r\n\xff\r\n--d--\r\n")
add("seven_bit", "refused", b"\x00Content-Transfer-Encoding: base64\r\n\r\n\xc3\xbc\r\n")
add("seven_bit", "qp", b"\x01" + b"a" * 80 + b" \t\r\n=\r\r\n\x00\xff\nlast")

def main():
    for target, files in seeds.items():
        d = os.path.join(ROOT, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in files:
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("wrote", sum(len(f) for f in seeds.values()), "seeds for", len(seeds), "targets", file=sys.stderr)


if __name__ == "__main__":
    main()
