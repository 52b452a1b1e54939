"""tests/e2e/test_bench_timeline.py - bench/timeline.py (`bench/profile.sh timeline`, issue 6) on
a capture written here with known times: which side each turn is from, the wait before each
turn, which sessions are counted, and the close. No server is started.
"""
import pathlib
import struct
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PORT = 2625
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def _packet(t, client_port, from_client, flags, payload=b""):
    sport, dport = (client_port, PORT) if from_client else (PORT, client_port)
    tcp = struct.pack(">HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + tcp
    frame = b"\0" * 12 + b"\x08\x00" + ip
    sec, usec = int(t), round((t - int(t)) * 1e6)
    return struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame


def _session(start, client_port, waits_ms, extra_turn=False, close_flags=FIN | ACK, syn=True):
    """A session whose turns come after the given waits (ms): server 220, client HELO, server
    250, client QUIT, server 221; then the close 0.5 ms later. Each turn is one segment, except
    the client's HELO, sent as two segments 0.1 ms apart (one turn)."""
    turns = [(False, b"220 ok\r\n"), (True, b"HELO x\r\n"), (False, b"250 ok\r\n"),
             (True, b"QUIT\r\n"), (False, b"221 bye\r\n")]
    if extra_turn:
        turns[3:3] = [(True, b"NOOP\r\n"), (False, b"250 ok\r\n")]
        waits_ms = waits_ms[:3] + [1.0, 1.0] + waits_ms[3:]
    out, t = [], start
    if syn:
        out.append(_packet(t, client_port, True, SYN))
        out.append(_packet(t + 0.00001, client_port, False, SYN | ACK))
    for (from_client, data), wait in zip(turns, waits_ms):
        t += wait / 1000
        if data.startswith(b"HELO"):
            out.append(_packet(t, client_port, True, PSH | ACK, data[:4]))
            t += 0.0001
            out.append(_packet(t, client_port, True, PSH | ACK, data[4:]))
        else:
            out.append(_packet(t, client_port, from_client, PSH | ACK, data))
        out.append(_packet(t + 0.000005, client_port, not from_client, ACK))  # a pure ACK: no turn
    out.append(_packet(t + 0.0005, client_port, True, close_flags))
    return out


def _run(tmp_path, packets):
    cap = tmp_path / "lo.pcap"
    cap.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 128, 1) + b"".join(packets))
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "timeline.py"), str(cap), str(PORT)],
                       capture_output=True, text=True, timeout=60)
    return r


def _rows(out):
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if f and (f[0].isdigit() or f[0] == "end"):
            rows[f[0]] = f
    return rows


def test_turns_waits_and_sessions_counted(tmp_path):
    packets = (_session(100.0, 40001, [0.2, 0.1, 0.3, 0.05, 0.4])
               + _session(100.5, 40002, [0.4, 0.3, 0.5, 0.15, 0.6], close_flags=RST | ACK)
               + _session(101.0, 40003, [0.3, 0.2, 0.4, 0.10, 0.5])
               + _session(101.5, 40004, [9, 9, 9, 9, 9], extra_turn=True)   # 7 turns: not counted
               + _session(102.0, 40005, [9, 9, 9, 9, 9], syn=False))        # no SYN: not complete
    r = _run(tmp_path, packets)
    assert r.returncode == 0, r.stderr
    assert "sessions: 4 complete, 3 with the usual 5 turns (counted here)" in r.stdout, r.stdout
    rows = _rows(r.stdout)
    assert sorted(rows) == ["0", "1", "2", "3", "4", "end"], r.stdout
    expect = [("server", "220", "0.300"), ("client", "HELO", "0.200"), ("server", "250", "0.400"),
              ("client", "QUIT", "0.100"), ("server", "221", "0.500")]
    for i, (side, starts, median) in enumerate(expect):
        row = rows[str(i)]
        assert row[1:3] == [side, starts], row
        assert row[4] == median, (i, row, r.stdout)
    # The HELO turn is two segments of 4 bytes each: one turn of 8 bytes, and the wait before
    # the next turn starts at its second segment.
    assert rows["1"][3] == "8", rows["1"]
    assert rows["end"][4] == "0.500", rows["end"]   # FIN or RST, 0.5 ms after the last turn
    assert "server turns 1.200 ms, client turns 0.300 ms" in r.stdout, r.stdout
    # SYN to the close: the sum of the waits, the HELO's 0.1 ms between segments and the close.
    assert "median 2.100 ms" in r.stdout, r.stdout


def test_no_complete_session_is_an_error(tmp_path):
    r = _run(tmp_path, _session(100.0, 40001, [1, 1, 1, 1, 1], syn=False))
    assert r.returncode != 0 and "no complete session" in r.stderr, (r.stdout, r.stderr)
