"""tests/e2e/dns_server.py - a real authoritative DNS server (NSD) on loopback for tests.

Postern resolves every name, special-use ones like .test included, through `dns.servers`
(SPEC §5), so tests point it at this server and control MX/A/AAAA answers exactly:

    from dns_server import DnsServer
    with DnsServer(zones={"partner.test": "@ MX 10 mx1\\nmx1 A 127.0.0.2\\n"}) as dns:
        config = f'[dns]\\nservers = ["127.0.0.1:{dns.port}"]'

Zone text is ordinary zone-file syntax, relative to the zone ($ORIGIN and a default $TTL of 60
are set). When it has no SOA record, a SOA and an NS record are added, so a test only writes
the records it cares about. Zones are checked with nsd-checkzone first: a bad zone raises
ValueError with the checker's message instead of a server that silently drops the zone.

NSD (Debian package `nsd`) was chosen because it is a small, authoritative-only server that
runs in the foreground as root without systemd or a chroot, from a config and zone files in a
temporary directory, and it can later serve pre-signed (DNSSEC) zones for DANE tests. The
distro service is not used: this file starts its own instance on 127.0.0.1:<free port>.

Command line (for the C++ tests, which cannot import Python):

    python3 dns_server.py [--port P] --zone NAME=FILE [--zone NAME=FILE ...]

prints the port on stdout once the server answers, then serves until stdin reaches EOF or
SIGTERM/SIGINT arrives, and stops NSD. Stdin EOF means a crashed test never leaves NSD behind.
"""
import argparse
import pathlib
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import ports

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NSD_CHECKZONE = shutil.which("nsd-checkzone") or "/usr/sbin/nsd-checkzone"


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on `host` (DNS serves both)."""
    return ports.free_port(host, udp=True)


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def query(host, port, name, qtype=6, timeout=0.5):
    """One UDP query (default type SOA); returns (rcode, aa, ancount) or None on no answer."""
    qid = random.randrange(65536)
    msg = struct.pack("!HHHHHH", qid, 0x0000, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(msg, (host, port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return None
    if len(data) < 12:
        return None
    rid, flags, _qd, an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if rid != qid:
        return None
    return flags & 0xF, bool(flags & 0x0400), an


def complete_zone(name, text):
    """The zone text with $ORIGIN/$TTL, and a SOA + NS when the text has none."""
    name = name.rstrip(".").lower()
    head = f"$ORIGIN {name}.\n$TTL 60\n"
    tokens = [t.upper() for line in text.splitlines() for t in line.split(";", 1)[0].split()]
    if "SOA" not in tokens:
        head += (f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 60\n"
                 "@ IN NS localhost.\n")
    return head + text + ("" if text.endswith("\n") else "\n")


class DnsServer:
    """An NSD instance serving `zones` ({name: zone text}) on `host`:`port` (default: a free
    port). Use as a context manager, or call start()/stop()."""

    def __init__(self, zones=None, zone_files=None, host="127.0.0.1", port=None, timeout=10.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.zones = dict(zones or {})
        self.zone_files = dict(zone_files or {})  # {name: path of an existing zone file}
        if not self.zones and not self.zone_files:
            raise ValueError("DnsServer needs at least one zone")
        self.dir = None
        self.proc = None

    @property
    def address(self):
        """"127.0.0.1:PORT", the form `dns.servers` takes."""
        return f"{self.host}:{self.port}"

    def _write_config(self, port):
        d = pathlib.Path(self.dir)
        zone_sections = []
        for name, text in self.zones.items():
            name = name.rstrip(".").lower()
            path = d / f"{name}.zone"
            path.write_text(complete_zone(name, text))
            self.zone_files_written[name] = path
        self.zone_files_written.update({n.rstrip(".").lower(): pathlib.Path(p) for n, p in self.zone_files.items()})
        for name, path in self.zone_files_written.items():
            check = subprocess.run([NSD_CHECKZONE, name, str(path)], capture_output=True, text=True)
            if check.returncode != 0:
                raise ValueError(f"zone {name}: {(check.stdout + check.stderr).strip()}")
            zone_sections.append(f'zone:\n    name: "{name}"\n    zonefile: "{path}"\n')
        conf = f"""server:
    ip-address: {self.host}@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    server-count: 1
    tcp-count: 20
    verbosity: 1
    hide-version: yes
    zonefiles-write: 0
remote-control:
    control-enable: no
""" + "".join(zone_sections)
        (d / "nsd.conf").write_text(conf)
        return d / "nsd.conf"

    def start(self):
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="postern-dns-")
        self.zone_files_written = {}
        last_error = ""
        for _attempt in range(5):
            port = self.port or free_port(self.host)
            conf = self._write_config(port)
            with open(pathlib.Path(self.dir, "nsd.stderr"), "wb") as err:  # a file: never blocks NSD
                self.proc = subprocess.Popen([NSD, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err)
            first_zone = next(iter(self.zone_files_written))
            deadline = time.time() + self.timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                r = query(self.host, port, first_zone)
                if r is not None and r[0] == 0 and r[1]:  # NOERROR, authoritative: zone loaded
                    self.port = port
                    return self
                time.sleep(0.05)
            last_error = self._failure()
            if self.port:  # a fixed port: do not retry elsewhere
                break
        raise RuntimeError(f"nsd did not start: {last_error}")

    def _failure(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        text = ""
        for name in ("nsd.stderr", "nsd.log"):
            f = pathlib.Path(self.dir, name)
            if f.exists():
                text += f.read_text(errors="replace")
        return text.strip()[-2000:]

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log(self):
        """NSD's log so far (for assertion messages)."""
        p = pathlib.Path(self.dir or "/nonexistent", "nsd.log")
        return p.read_text(errors="replace") if p.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description="serve zone files with NSD on loopback until stdin EOF")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--zone", action="append", default=[], metavar="NAME=FILE",
                    help="zone NAME from FILE (zone text as DnsServer takes it: SOA optional)")
    args = ap.parse_args(argv)
    zones = {}
    for z in args.zone:
        name, sep, path = z.partition("=")
        if not sep:
            ap.error(f"--zone wants NAME=FILE, got {z!r}")
        zones[name] = pathlib.Path(path).read_text()
    server = DnsServer(zones=zones, host=args.host, port=args.port)
    stopping = []

    def on_signal(_sig, _frame):
        stopping.append(True)
        server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except (RuntimeError, ValueError) as e:
        print(f"dns_server: {e}", file=sys.stderr)
        return 1
    print(server.port, flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        if not stopping:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
