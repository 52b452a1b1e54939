#!/usr/bin/env python3
"""bench/timeline.py - where an SMTP session's wall time goes, from a packet capture (issue 6).

Reads a classic pcap (tcpdump -w) of the loopback traffic to one server port and splits every
complete session into turns: a turn is the data one side sends before the other side sends
any (the greeting, a command, a reply, a TLS flight, the message). For each turn it prints
how long the connection waited for it: from the client's SYN (turn 0) or from the last
segment of the previous turn to this turn's first segment. A server turn's wait is the
server's reply time (its work, its wake-up, the disk for the reply to the message); a client
turn's wait is the client's. Sessions are aligned by turn number, so only those with the most
common number of turns (and a FIN or RST) are counted; the others are reported. The session
ends at the first FIN or RST of either side.

usage: bench/timeline.py CAPTURE.pcap PORT
Used by `bench/profile.sh timeline plain|tls`; standard library only.
"""
import collections
import statistics
import struct
import sys

TLS_RECORD_TYPES = {0x14, 0x15, 0x16, 0x17}


def packets(path):
    """Yields (time, src_port, dst_port, tcp_flags, payload_length, first_payload_bytes) per TCP packet."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise SystemExit(f"{path}: not a pcap file (too short)")
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (magic {magic:#x})")
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        link = struct.unpack(endian + "I", head[20:24])[0]
        offsets = {0: 4, 1: 14, 113: 16, 101: 0, 228: 0, 229: 0}  # NULL, EN10MB, LINUX_SLL, RAW
        if link not in offsets:
            raise SystemExit(f"{path}: link type {link} not supported")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            t = sec + frac / (1e9 if nano else 1e6)
            ip = data[offsets[link]:]
            if not ip:
                continue
            version = ip[0] >> 4
            if version == 4:
                ihl = (ip[0] & 15) * 4
                if ip[9] != 6:
                    continue
                total = struct.unpack(">H", ip[2:4])[0]
                tcp, ip_payload = ip[ihl:], total - ihl
            elif version == 6:
                if ip[6] != 6:  # no extension headers on loopback TCP
                    continue
                tcp, ip_payload = ip[40:], struct.unpack(">H", ip[4:6])[0]
            else:
                continue
            if len(tcp) < 20:
                continue
            sport, dport = struct.unpack(">HH", tcp[:4])
            doff = (tcp[12] >> 4) * 4
            length = ip_payload - doff  # the capture may be cut short (snaplen): the IP length counts
            yield t, sport, dport, tcp[13], length, tcp[doff:doff + 8]


def label(first_bytes):
    if first_bytes and first_bytes[0] in TLS_RECORD_TYPES:
        return "tls"
    text = "".join(chr(b) if 32 < b < 127 else " " for b in first_bytes[:4]).strip()
    return text or "?"


def sessions(path, port):
    conns = collections.defaultdict(list)
    for t, sport, dport, flags, length, first in packets(path):
        if dport == port:
            conns[sport].append((t, "client", flags, length, first))
        elif sport == port:
            conns[dport].append((t, "server", flags, length, first))
    for pk in conns.values():
        syn = [p for p in pk if p[1] == "client" and p[2] & 0x02 and not p[2] & 0x10]
        close = [p for p in pk if p[2] & 0x05]  # the first FIN or RST, from either side
        if not syn or not close:
            continue
        turns = []  # [side, first_t, last_t, bytes, label]
        for t, side, _flags, length, first in pk:
            if length <= 0:
                continue
            if turns and turns[-1][0] == side:
                turns[-1][2] = t
                turns[-1][3] += length
            else:
                turns.append([side, t, t, length, label(first)])
        yield syn[0][0], turns, close[0][0]


def report(path, port, out=sys.stdout):
    found = list(sessions(path, port))
    if not found:
        raise SystemExit(f"{path}: no complete session to port {port}")
    shape = collections.Counter(len(turns) for _, turns, _ in found).most_common(1)[0][0]
    used = [s for s in found if len(s[1]) == shape]
    waits = [[] for _ in range(shape)]
    sizes = [[] for _ in range(shape)]
    labels = [collections.Counter() for _ in range(shape)]
    sides = [None] * shape
    tails, totals = [], []
    for syn_t, turns, end_t in used:
        prev = syn_t
        for i, (side, first_t, last_t, size, lab) in enumerate(turns):
            waits[i].append((first_t - prev) * 1e3)
            sizes[i].append(size)
            labels[i][lab] += 1
            sides[i] = sides[i] or side
            prev = last_t
        tails.append((end_t - prev) * 1e3)
        totals.append((end_t - syn_t) * 1e3)

    def p90(v):
        return sorted(v)[int(len(v) * 0.9)]

    print(f"sessions: {len(found)} complete, {len(used)} with the usual {shape} turns (counted here); "
          f"SYN to the first FIN or RST: median {statistics.median(totals):.3f} ms, "
          f"mean {statistics.mean(totals):.3f} ms", file=out)
    print(f"{'turn':>4}  {'from':6}  {'starts':6}  {'bytes':>6}  {'wait before it (ms): median':>27}  {'mean':>7}  {'p90':>7}",
          file=out)
    by_side = collections.Counter()
    for i in range(shape):
        med = statistics.median(waits[i])
        by_side[sides[i]] += med
        print(f"{i:>4}  {sides[i]:6}  {labels[i].most_common(1)[0][0]:6}  {statistics.median(sizes[i]):>6.0f}  "
              f"{med:>27.3f}  {statistics.mean(waits[i]):>7.3f}  {p90(waits[i]):>7.3f}", file=out)
    print(f"{'end':>4}  {'either':6}  {'close':6}  {'':>6}  {statistics.median(tails):>27.3f}  "
          f"{statistics.mean(tails):>7.3f}  {p90(tails):>7.3f}", file=out)
    print(f"sum of the medians: server turns {by_side['server']:.3f} ms, client turns {by_side['client']:.3f} ms",
          file=out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: bench/timeline.py CAPTURE.pcap PORT")
    report(sys.argv[1], int(sys.argv[2]))
