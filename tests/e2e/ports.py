"""ports.py - listening ports for the servers the end-to-end tests start (Postern, NSD, peers
that are told their port).

The tests run in several pytest-xdist worker processes at once (Makefile E2E_WORKERS). A port
asked of the kernel with bind(0) and closed again comes from the ephemeral range, where another
worker may be given the same one, or a client's outgoing connection may take it, before the
server binds it. So each worker hands out ports from a range of its own, below the ephemeral
range (32768-60999 on Linux), and skips any port it cannot bind at the moment. A process that
is no xdist worker (a serial run, the C++ tests starting dns_server.py) asks the kernel as before:
several of those may run at once and would all start at the same place in a fixed range."""
import itertools
import os
import socket

_BASE = 20000
_SPAN = 1500   # ports per worker; 8 workers fit below 32768
_MAX_WORKERS = 8


def _worker_index():
    name = os.environ.get("PYTEST_XDIST_WORKER", "")   # "gw0", "gw1", ... under xdist
    return int(name[2:]) % _MAX_WORKERS if name.startswith("gw") and name[2:].isdigit() else None


_WORKER = _worker_index()
_START = _BASE + (_WORKER or 0) * _SPAN
_CYCLE = itertools.cycle(range(_START, _START + _SPAN))


def _bindable(host, port, kind):
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_port(host, udp):
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not udp or _bindable(host, port, socket.SOCK_STREAM):
            return port
    raise RuntimeError("no free port")


def free_port(host="127.0.0.1", udp=False):
    """A port of this worker's range free for TCP (and UDP too if `udp`) on `host` now."""
    if _WORKER is None:
        return _kernel_port(host, udp)
    for _ in range(_SPAN):
        port = next(_CYCLE)
        if _bindable(host, port, socket.SOCK_STREAM) and (not udp or _bindable(host, port, socket.SOCK_DGRAM)):
            return port
    raise RuntimeError(f"no free port in {_START}-{_START + _SPAN - 1}")
