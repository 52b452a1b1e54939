"""tests/e2e/conftest.py - start the real `postern` binary on loopback for end-to-end tests.

Every test gets a fresh directory made by `postern init`, a config rewritten for a free high
port, and a running `postern serve` that is stopped (SIGTERM, then SIGKILL) afterwards.
Peers are independent programs: Python's smtplib/ssl, swaks, openssl s_client.
"""
import functools
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from ports import free_port  # noqa: F401  (tests import it from here)

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTERN = os.environ.get("POSTERN_BIN", str(ROOT / "build" / "postern"))


def wait_port(host, port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"postern exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.recv(512)  # the greeting: the session is served, not just the SYN
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} not listening after {timeout}s")


def render_config(d, port, extra="", domains=None, server_extra="", tls_extra="", queue_extra="", spool_extra=""):
    """A complete config for a test instance. `domains` defaults to localhost -> maildir."""
    if domains is None:
        domains = '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'
    return f"""hostname = "mx.postern.test"

[server]
listen = ["127.0.0.1:{port}"]
{'allow_root = true  # the suite runs as root; tests/e2e/test_privileges.py covers server.user' if os.geteuid() == 0 and 'user =' not in server_extra and 'allow_root' not in server_extra else ''}
{server_extra}

[spool]
dir = "var/spool"
{spool_extra}

[tls]
cert_file = "var/tls/cert.pem"
key_file = "var/tls/key.pem"
{tls_extra}

[queue]
{queue_extra}

{domains}
{extra}
"""


# --- helpers for the raw-protocol tests --------------------------------------------------------


class Reply:
    """One SMTP reply: code, text lines (without the "ddd-" prefix) and the raw bytes."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines
        self.raw = raw

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def last(self):
        return self.lines[-1] if self.lines else ""

    def __repr__(self):
        return f"Reply({self.raw!r})"


class ConnectionClosed(Exception):
    pass


def tls_client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # `postern init` makes a self-signed certificate
    return ctx


_REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$", re.S)


class RawSMTP:
    """A minimal SMTP client over a raw socket: exact control over what is sent in one write,
    and every reply parsed (multi-line aware) exactly as it came off the wire."""

    def __init__(self, host, port, timeout=10.0, source=None, greeting=True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        self.greeting = self.read_reply() if greeting else None

    # raw I/O
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed(f"connection closed; unparsed {self.buf!r}")
        self.buf += chunk

    def read_line(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout(f"no complete line after {timeout}s; have {self.buf!r}")
            self._fill(left)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_reply(self, timeout=None):
        raw = b""
        lines = []
        code = None
        while True:
            line = self.read_line(timeout)
            raw += line
            m = _REPLY_LINE.match(line.rstrip(b"\r\n"))
            assert m, f"malformed reply line {line!r} (reply so far {raw!r})"
            c = int(m.group(1))
            assert code is None or c == code, f"code changed inside a multi-line reply: {raw!r}"
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(code, lines, raw)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.read_reply(timeout)

    def expect(self, line, code, enhanced=None):
        r = self.cmd(line)
        assert r.code == code, f"{line!r} -> {r!r}, expected {code}"
        if enhanced is not None:
            assert r.last.startswith(enhanced), f"{line!r} -> {r!r}, expected {code} {enhanced}"
        return r

    def ehlo(self, name="client.test"):
        r = self.expect(f"EHLO {name}", 250)
        return r

    def starttls(self, context=None, session=None):
        """STARTTLS and the handshake; `session`: an earlier ssl.SSLSession to resume."""
        self.expect("STARTTLS", 220, "2.0.0")
        assert self.buf == b"", f"plaintext after the 220: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = (context or tls_client_context()).wrap_socket(self.sock, session=session)
        return self

    def send_mail(self, sender, rcpts, body):
        """MAIL/RCPT/DATA one step at a time; body is the content without the final dot."""
        self.expect(f"MAIL FROM:<{sender}>", 250)
        for r in rcpts:
            self.expect(f"RCPT TO:<{r}>", 250)
        self.expect("DATA", 354)
        self.send(body + b".\r\n")
        return self.read_reply()

    def nothing_received(self, wait=0.5):
        """True if the server sent nothing (and did not close) within `wait` seconds."""
        if self.buf:
            return False
        try:
            self._fill(wait)
        except (socket.timeout, TimeoutError):
            return True
        except ConnectionClosed:
            return False
        return False

    def wait_closed(self, timeout=5.0):
        """Reads until EOF; returns the bytes received before it. Raises on timeout."""
        deadline = time.time() + timeout
        got = b""
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s; got {self.buf + got!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                raise AssertionError(f"connection still open after {timeout}s; got {self.buf + got!r}")
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                out, self.buf = self.buf + got, b""
                return out
            got += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qid_of(reply):
    """The queue id from `250 2.0.0 Ok: queued as ID`."""
    m = re.search(r"queued as ([0-9A-F]+)$", reply.last)
    assert reply.code == 250 and m, f"not a queued reply: {reply!r}"
    return m.group(1)


def as_maildir(content):
    """`content` (CRLF line ends, as sent over SMTP) as a maildir file holds it: every CRLF
    written as LF (README: maildir files have LF line ends, like Postfix's local delivery)."""
    return content.replace(b"\r\n", b"\n")


def wait_until(pred, timeout=5.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError(f"{what} not reached after {timeout}s")


class Instance:
    """A running `postern serve` with its directory, port and log."""

    def __init__(self, directory, port):
        self.dir = pathlib.Path(directory)
        self.port = port
        self.host = "127.0.0.1"
        self.proc = None
        self.log_path = self.dir / "postern.log"
        self.preexec = None  # a function run in the child before exec (resource limits)

    @property
    def config(self):
        return self.dir / "postern.toml"

    def write_config(self, text):
        self.config.write_text(text)

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([POSTERN, "serve", "-c", str(self.config)],
                                     stdout=self.logf, stderr=self.logf, cwd=self.dir, preexec_fn=self.preexec)
        if wait:
            wait_port(self.host, self.port, proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in log:\n{self.log()[-3000:]}")

    def maildir_messages(self, user, domain="localhost"):
        new = self.dir / "var" / "mail" / domain / user / "new"
        if not new.is_dir():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir())]

    def wait_maildir(self, user, count=1, domain="localhost", timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.maildir_messages(user, domain)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"{count} message(s) for {user}@{domain} not delivered; log:\n{self.log()[-3000:]}")

    def spool_files(self, area="queue"):
        d = self.dir / "var" / "spool" / area
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def held_content(self):
        """{queue id: (received, content)} for each message in spool/hold (queue_extra="hold =
        true" keeps every accepted message there). A queue file is a text header, an empty line,
        then the content as stored, the Received: header Postern prepended first
        (src/queue/envelope.hpp): `received` is that header (folded lines included, with their
        line ends), `content` the rest, which is what the client sent, byte for byte. The
        maildir file cannot show that: its LF line ends look the same whether a CR was kept or
        dropped on the way."""
        out = {}
        for qid in self.spool_files("hold"):
            _, blank, stored = (self.dir / "var/spool/hold" / qid).read_bytes().partition(b"\n\n")
            assert blank and stored.startswith(b"Received: "), (qid, stored[:300])
            end = stored.index(b"\n") + 1
            while stored[end:end + 1] in (b"\t", b" "):
                end = stored.index(b"\n", end) + 1
            out[qid] = (stored[:end], stored[end:])
        return out

    def release_held(self):
        """`postern queue release` of every held message: delivered then as usual."""
        for qid in self.spool_files("hold"):
            r = self.queue_cli("release", qid)
            assert r.returncode == 0, (qid, r.stdout, r.stderr)


    # --- structured log and queue CLI (outbound delivery tests) ---------------------------
    def events(self, event=None, **fields):
        """Parsed text-log lines (see parse_log_line), optionally only `event` with the given
        field values, e.g. inst.events("delivery", id=qid, result="sent")."""
        out = []
        for line in self.log().splitlines():
            d = parse_log_line(line)
            if d is None or (event is not None and d["event"] != event):
                continue
            if all(d.get(k) == v for k, v in fields.items()):
                out.append(d)
        return out

    def wait_events(self, event, count=1, timeout=10.0, **fields):
        """Waits until at least `count` matching events are logged; returns them all."""
        deadline = time.time() + timeout
        while True:
            ev = self.events(event, **fields)
            if len(ev) >= count:
                return ev
            if time.time() >= deadline:
                raise AssertionError(f"{count} x {event} {fields} not logged after {timeout}s "
                                     f"(got {len(ev)}); log:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def queue_cli(self, *args, timeout=30):
        """`postern queue ARGS -c CONFIG`, run from / like an administrator would."""
        return subprocess.run([POSTERN, "queue", *args, "-c", str(self.config)],
                              capture_output=True, text=True, timeout=timeout, cwd="/")

    def queue_json(self, *args):
        r = self.queue_cli(*args, "--json")
        assert r.returncode == 0, f"postern queue {' '.join(args)} --json: rc={r.returncode} {r.stderr}"
        return json.loads(r.stdout)

    def send(self, sender, rcpts, subject="test", body=None):
        """One message over a fresh SMTP session; returns its queue id."""
        if body is None:
            body = (f"From: <{sender}>\r\nSubject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}"
                    f"@client.test>\r\n\r\nbody of {subject}\r\n").encode()
        with self.smtp() as c:
            c.ehlo()
            return qid_of(c.send_mail(sender, rcpts, body))

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def smtp(self, **kw):
        """A RawSMTP client connected to this instance (greeting already read)."""
        return RawSMTP(self.host, self.port, **kw)

    def spool_area_empty(self, *areas):
        return all(self.spool_files(a) == [] for a in areas)

    def wait_sessions_closed(self, timeout=5.0):
        """Waits until every logged `connect` has its `disconnect` (e.g. the start-up probe's)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.log()
            opened = len(re.findall(r'( connect |"event":"connect")', log))
            closed = len(re.findall(r'( disconnect |"event":"disconnect")', log))
            if opened == closed:
                return
            time.sleep(0.05)
        raise AssertionError(f"sessions still open after {timeout}s:\n{self.log()[-2000:]}")


_LOG_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_log_line(line):
    """A text log line `TS LEVEL EVENT k=v k="quoted \\"value\\""` -> {"ts", "level", "event", k: v}.
    None for lines that are not log events."""
    parts = line.split(" ", 3)
    if len(parts) < 3 or not re.match(r"^\d{4}-\d\d-\d\dT", parts[0]):
        return None
    d = {"ts": parts[0], "level": parts[1], "event": parts[2]}
    for k, v in _LOG_KV.findall(parts[3] if len(parts) > 3 else ""):
        d[k] = json.loads(v) if v.startswith('"') else v
    return d


def build_shim(tmp_path, source):
    """Compiles the LD_PRELOAD shim tests/e2e/SOURCE (a .c file, never part of the product) with
    gcc into tmp_path and returns the .so (skips the test without gcc)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    here = pathlib.Path(__file__).resolve().parent
    so = tmp_path / (pathlib.Path(source).stem + ".so")
    r = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(so), str(here / source), "-ldl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return so


def preload(monkeypatch, so):
    """Every postern started from now on in the test gets the shim `so` (LD_PRELOAD). Under
    `make asan` the ASan runtime is told not to insist on coming first in the library list."""
    monkeypatch.setenv("LD_PRELOAD", str(so))
    if os.environ.get("POSTERN_SANITIZED"):
        opts = os.environ.get("ASAN_OPTIONS", "")
        monkeypatch.setenv("ASAN_OPTIONS", (opts + ":" if opts else "") + "verify_asan_link_order=0")


def relay_domain(name, *hosts):
    """A hosted [[domain]] whose mail goes over SMTP to `hosts` ("ip:port")."""
    return f'[[domain]]\nname = "{name}"\nrelay_to = [{", ".join(f"{chr(34)}{h}{chr(34)}" for h in hosts)}]\n'


def route(domain, *hosts):
    """A [[route]] (static route) for a domain that is not hosted."""
    return f'[[route]]\ndomain = "{domain}"\nhosts = [{", ".join(f"{chr(34)}{h}{chr(34)}" for h in hosts)}]\n'


@functools.lru_cache(maxsize=None)
def profiles_supported():
    """True once `postern check-config` accepts a [[profile]] with relay = "any" (SPEC §1.4)."""
    top = tempfile.mkdtemp(prefix="postern-profile-probe-")
    d = os.path.join(top, "p")
    try:
        r = subprocess.run([POSTERN, "init", d], capture_output=True, text=True)
        if r.returncode != 0:
            return False
        cfg = pathlib.Path(d, "postern.toml")
        cfg.write_text(cfg.read_text() + '\n[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n')
        r = subprocess.run([POSTERN, "check-config", "-c", str(cfg)], capture_output=True, text=True)
        return r.returncode == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def tmpdir_postern():
    d = tempfile.mkdtemp(prefix="postern-e2e-")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_instance(tmpdir_postern):
    """make_instance(**render_config kwargs) -> a started Instance (initialised with `postern init`)."""
    instances = []

    def factory(start=True, **kw):
        d = tmpdir_postern / f"i{len(instances)}"
        r = subprocess.run([POSTERN, "init", str(d)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        inst = Instance(d, free_port())
        inst.write_config(render_config(d, inst.port, **kw))
        instances.append(inst)
        if start:
            inst.start()
        return inst

    yield factory
    for i in instances:
        i.stop()


@pytest.fixture
def postern(make_instance):
    """A default running instance: localhost hosted into a maildir, STARTTLS offered."""
    return make_instance()
