"""tests/e2e/peers.py - scripted receiving SMTP peers for outbound tests, independent of Postern.

ScriptedPeer is a small threaded SMTP server (Python sockets + ssl) that records every command
it saw, per connection, and whether TLS was active when it saw it. Behaviours:
  starttls=True/False        advertise STARTTLS
  tls_mode="ok"              complete the handshake with the given certificate
           "garbage"         answer 220 to STARTTLS, then send junk instead of a handshake
           "close"           answer 220 to STARTTLS, then close the connection
           "refuse"          answer STARTTLS with starttls_reply (default
                             "454 4.7.0 TLS not available"), then go on reading commands in
                             plaintext
           "close_after_tls" complete the handshake, then close without a word (no alert, no
                             reply): a lost connection, not a failed handshake
           "require_client_cert"  TLS 1.3 asking for a client certificate: the client's side of
                             the handshake completes, then the peer sends certificate_required
                             (RFC 8446 4.4.2.4) and closes (Postern's client presents none)
           "stall"           answer 220 to STARTTLS, then read nothing and never complete the
                             handshake (the connection is closed after stall_seconds, or when
                             the peer stops)
  rset_reply="502 5.5.1 no"   the reply line to RSET
  quit_reply=False           QUIT is never answered: the peer reads until the client closes
                             (Connection.closed_after_quit, and for TLS Connection.close_notify)
  starttls_reply="554 5.7.0 no TLS for you"  the reply line to STARTTLS for tls_mode "refuse"
                             (any code but 220: SPEC §1.1 counts each as a failed handshake)
  tls_modes=["garbage", "ok"]  tls_mode per connection in order (the last repeats); overrides
                             tls_mode
  greeting_codes=[421, 220]  greeting per connection in order (the last repeats)
  greeting_hold=threading.Event()  each greeting waits until the event is set (at most 30 s)
  rcpt_codes={"x@y": 550}    RCPT replies per address (default 250); a list gives one code per
                             RCPT of that address, the last repeating: {"x@y": [450, 250]};
                             a string is a whole refusal: {"x@y": "552 5.5.3 Too many recipients"}
  final_code=250             reply after end of data
  final_delay=1.0            seconds between receiving the end of data (the message is recorded
                             then) and sending that reply
  host="127.0.0.3", port=P   bind a given loopback address and port (several MX hosts can share
                             one port on different 127.0.0.x addresses); port 0 = any free port
  tls_max_version="1.2"      the highest TLS version the peer negotiates ("1.2" = a TLS 1.2-only
                             peer); tls_min_version likewise
  ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"  the TLS 1.2 (and older) cipher list the peer offers
                             (OpenSSL syntax, ssl.SSLContext.set_ciphers); None keeps the default
  idle_timeout=1.0           close a connection after that many seconds without a command (a
                             real server's timeout: a session the client parked is gone)
  idle_reply="451 4.7.0 Timeout"  send this line when idle_timeout passes, then close (as some
                             servers do instead of a 421); None (the default) closes silently
Each connection records the negotiated TLS version (Connection.tls_version, e.g. "TLSv1.2") and,
when the handshake failed on the peer's side, the error (Connection.tls_error).
Each accepted message is kept as (mail_from, [rcpts], data_bytes, tls_active); mail_from is the
MAIL FROM argument as sent, parameters included ("<a@b> SIZE=123"): envelope_sender() strips them.
Each connection records when it was accepted (Connection.accepted, time.time()).

Certificates (openssl CLI): make_test_ca() (a CA and one server certificate), make_ca() and
make_cert() (any names, self-signed, expired or not yet valid, any or no EKU), cert_sha256() / spki_sha256()
(pins for verify = "fingerprint").

SmtpSink runs Postfix's smtp-sink (plaintext, no STARTTLS), saving every transaction to a file.
"""
import datetime
import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time


class Connection:
    def __init__(self, addr=None):
        self.commands = []   # (command line str, tls_active bool)
        self.tls = False
        self.accepted = time.time()  # when accept() returned
        self.addr = addr             # the client's (ip, port)
        self.tls_version = None      # e.g. "TLSv1.3" once the handshake completed
        self.tls_error = None        # the peer-side handshake error, if it failed
        self.closed_after_quit = None  # quit_reply=False: when the client closed after its QUIT
        self.close_notify = None       # quit_reply=False, TLS: whether that close came with a close_notify

    def verbs(self):
        return [c.split(" ", 1)[0].upper() for c, _ in self.commands]


def envelope_sender(mail_from):
    """"<a@b> SIZE=12" -> "a@b"; "<>" -> ""."""
    arg = mail_from.strip()
    if arg.upper().startswith("FROM:"):
        arg = arg[5:]
    return arg.split(">", 1)[0].lstrip("<").strip()


_TLS_VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                 "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class ScriptedPeer:
    def __init__(self, host="127.0.0.1", starttls=True, tls_mode="ok", cert=None, key=None,
                 greeting_codes=(220,), rcpt_codes=None, final_code=250, ehlo_name="peer.test",
                 extra_ehlo=(), port=0, tls_max_version=None, tls_min_version=None, final_delay=0.0,
                 ciphers=None, stall_seconds=30.0, tls_modes=None, idle_timeout=30.0, idle_reply=None,
                 greeting_hold=None, starttls_reply="454 4.7.0 TLS not available", quit_reply=True, rset_reply="250 2.0.0 Ok"):
        self.host = host
        self.rset_reply = rset_reply  # e.g. "502 5.5.1 no": the client may not reuse the session
        self.quit_reply = quit_reply  # False: QUIT is never answered; the client must close
        self.starttls_reply = starttls_reply
        self.greeting_hold = greeting_hold
        self.tls_modes = list(tls_modes or [])
        self.idle_timeout = idle_timeout
        self.idle_reply = idle_reply
        self.ciphers = ciphers
        self.stall_seconds = stall_seconds
        self.tls_max_version = tls_max_version
        self.tls_min_version = tls_min_version
        self.starttls = starttls
        self.tls_mode = tls_mode
        self.cert, self.key = cert, key
        self.greeting_codes = list(greeting_codes)
        self.rcpt_codes = dict(rcpt_codes or {})
        self.rcpt_seen = {}
        self.final_code = final_code
        self.final_delay = final_delay
        self.ehlo_name = ehlo_name
        self.extra_ehlo = list(extra_ehlo)
        self.connections = []
        self.messages = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.stopped = True
        try:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the
            # socket listening (the blocked syscall holds it) and the port busy
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self.thread.is_alive():
            self.thread.join(timeout=2)

    # --- what the peer saw ---------------------------------------------------------------
    def all_commands(self):
        with self.lock:
            return [c for conn in self.connections for c in conn.commands]

    def saw_mail_from(self):
        return any(c.upper().startswith("MAIL FROM") for c, _ in self.all_commands())

    def accept_times(self):
        with self.lock:
            return [c.accepted for c in self.connections]

    def mail_froms(self):
        """[(MAIL FROM argument, tls_active)] over all connections, in order."""
        return [(c[10:].strip(), tls) for c, tls in self.all_commands() if c.upper().startswith("MAIL FROM:")]

    def wait_messages(self, n, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            got = len(self.messages)
        # all_commands() takes the lock itself (a non-reentrant Lock: called under it, a failing
        # test hung instead of failing)
        raise AssertionError(f"peer got {got} of {n} messages; commands: {self.all_commands()}")

    def wait_connections(self, n, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.connections) >= n:
                    return list(self.connections)
            time.sleep(0.05)
        raise AssertionError(f"peer saw {len(self.connections)} of {n} connections")

    # --- server --------------------------------------------------------------------------
    def _accept(self):
        while not self.stopped:
            try:
                s, addr = self.sock.accept()
            except OSError:
                return
            accepted = time.time()
            threading.Thread(target=self._serve, args=(s, addr, accepted), daemon=True).start()

    def _serve(self, s, addr=None, accepted=None):
        conn = Connection(addr)
        if accepted is not None:
            conn.accepted = accepted
        with self.lock:
            idx = len(self.connections)
            self.connections.append(conn)
        s.settimeout(self.idle_timeout)
        f = s.makefile("rwb", buffering=0)
        modes = self.tls_modes
        tls_mode = modes[min(idx, len(modes) - 1)] if modes else self.tls_mode

        def send(line):
            f.write(line.encode() + b"\r\n")

        if self.greeting_hold is not None:
            self.greeting_hold.wait(30)
        code = self.greeting_codes[min(idx, len(self.greeting_codes) - 1)]
        if code != 220:
            send(f"{code} {self.ehlo_name} not now")
            try:
                line = f.readline()  # the client's QUIT, if it sends one (recorded)
                if line:
                    with self.lock:
                        conn.commands.append((line.decode(errors="replace").rstrip("\r\n"), False))
                    if line.upper().startswith(b"QUIT"):
                        send("221 2.0.0 Bye")
            except OSError:
                pass
            s.close()
            return
        send(f"220 {self.ehlo_name} ESMTP scripted peer")
        mail_from, rcpts = None, []
        try:
            while True:
                try:
                    line = f.readline()
                except TimeoutError:  # idle_timeout without a command
                    if self.idle_reply is not None:
                        send(self.idle_reply)
                        f.close()
                        s.close()
                    return
                if not line:
                    return
                cmd = line.decode(errors="replace").rstrip("\r\n")
                with self.lock:
                    conn.commands.append((cmd, conn.tls))
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    caps = ["PIPELINING", "8BITMIME", "SIZE 10240000", "ENHANCEDSTATUSCODES"] + self.extra_ehlo
                    if self.starttls and not conn.tls:
                        caps.append("STARTTLS")
                    f.write(f"250-{self.ehlo_name}\r\n".encode())
                    for i, c in enumerate(caps):
                        f.write(f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n".encode())
                elif verb == "HELO":
                    send(f"250 {self.ehlo_name}")
                elif verb == "STARTTLS":
                    if tls_mode == "refuse":
                        send(self.starttls_reply)
                        continue
                    send("220 2.0.0 Ready to start TLS")
                    if tls_mode == "close":
                        s.close()
                        return
                    if tls_mode == "garbage":
                        f.write(b"this is not a TLS server hello\r\n" * 4)
                        time.sleep(0.2)
                        s.close()
                        return
                    if tls_mode == "stall":  # the client's ClientHello is never read
                        deadline = time.time() + self.stall_seconds
                        while not self.stopped and time.time() < deadline:
                            time.sleep(0.05)
                        s.close()
                        return
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(self.cert, self.key)
                    if self.tls_max_version:
                        ctx.maximum_version = _TLS_VERSIONS[self.tls_max_version]
                    if self.tls_min_version:
                        ctx.minimum_version = _TLS_VERSIONS[self.tls_min_version]
                    if self.ciphers:
                        ctx.set_ciphers(self.ciphers)
                    if tls_mode == "require_client_cert":
                        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
                        ctx.verify_mode = ssl.CERT_REQUIRED
                        ctx.load_verify_locations(cafile=self.cert)
                    # A close without close_notify raises SSLEOFError instead of reading as a
                    # clean end (Connection.close_notify tells them apart): Debian's Python 3.11
                    # sets OP_IGNORE_UNEXPECTED_EOF by default, and suppress_ragged_eofs would
                    # turn the error into b"" again.
                    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
                    ss = ctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False,
                                         suppress_ragged_eofs=False)
                    try:
                        ss.do_handshake()
                    except (OSError, ssl.SSLError) as e:
                        with self.lock:
                            conn.tls_error = repr(e)
                        if tls_mode == "require_client_cert":
                            # The client sends EHLO once its side of the handshake is done:
                            # read it before closing, so that the close is a FIN after our
                            # alert, not a reset (for the EHLO unread) that may discard it.
                            raw = socket.socket(fileno=ss.detach())
                            raw.settimeout(0.5)
                            try:
                                while raw.recv(4096):
                                    pass
                            except OSError:
                                pass
                            raw.close()
                        else:
                            ss.close()
                        return
                    s = ss
                    f = s.makefile("rwb", buffering=0)
                    with self.lock:
                        conn.tls_version = s.version()
                        conn.tls = True
                    if tls_mode == "close_after_tls":
                        f.close()
                        s.close()
                        return
                elif verb == "MAIL":
                    mail_from, rcpts = cmd[10:].strip(), []
                    send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    addr = cmd[8:].strip().strip("<>")
                    c = self.rcpt_codes.get(addr, 250)
                    if isinstance(c, (list, tuple)):  # one code per RCPT of this address; the last repeats
                        with self.lock:
                            n = self.rcpt_seen[addr] = self.rcpt_seen.get(addr, 0) + 1
                        c = c[min(n, len(c)) - 1]
                    if isinstance(c, str):  # a whole refusal: "552 5.5.3 Too many recipients"
                        send(c)
                    elif c == 250:
                        rcpts.append(addr)
                        send("250 2.1.5 Ok")
                    else:
                        send(f"{c} {'5' if c >= 500 else '4'}.1.1 <{addr}>: refused by scripted peer")
                elif verb == "DATA":
                    if not rcpts:
                        send("554 5.5.1 no valid recipients")
                        continue
                    send("354 go ahead")
                    data = b""
                    while True:
                        l = f.readline()
                        if not l:
                            return
                        if l == b".\r\n":
                            break
                        data += l[1:] if l.startswith(b"..") else l
                    with self.lock:
                        if self.final_code == 250:
                            self.messages.append((mail_from, list(rcpts), data, conn.tls))
                    c = self.final_code
                    if self.final_delay:
                        time.sleep(self.final_delay)
                    send(f"{c} {c // 100}.0.0 {'queued' if c == 250 else 'refused'}")
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    send(self.rset_reply)
                elif verb == "QUIT":
                    if not self.quit_reply:
                        try:
                            while f.readline():  # no 221: wait for the client to go
                                pass
                            conn.close_notify = conn.tls  # TLS: a clean end needs the alert
                        except OSError:  # TLS: closed without a close_notify (SSLEOFError), or reset
                            conn.close_notify = False
                        conn.closed_after_quit = time.time()
                        s.close()
                        return
                    send("221 2.0.0 Bye")
                    s.close()
                    return
                else:
                    send("250 2.0.0 Ok")
        except (OSError, ssl.SSLError):
            return


class SmtpSink:
    """Postfix's smtp-sink on host:port, one dump file per mail transaction in `directory`
    (format: X-Mail-Args/X-Rcpt-Args headers, a Received: header, then the message).
    smtp-sink announces no STARTTLS, so delivery to it is plaintext."""

    BIN = "/usr/sbin/smtp-sink"

    def __init__(self, directory, host="127.0.0.1", port=0, backlog=256, extra_args=()):
        import pathlib
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        if not port:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.port = port
        self.backlog = backlog
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        import subprocess
        self.errf = open(self.dir.parent / f"smtp-sink-{self.port}.stderr", "wb")
        self.proc = subprocess.Popen([self.BIN, "-u", "root", "-h", "sink.test", *self.extra_args,
                                      "-d", str(self.dir / "msg."), f"{self.host}:{self.port}", str(self.backlog)],
                                     stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"smtp-sink exited with {self.proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.recv(512)
                    s.sendall(b"QUIT\r\n")
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("smtp-sink not listening")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "errf", None) is not None:
            self.errf.close()
            self.errf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def files(self):
        return sorted(p for p in self.dir.iterdir() if p.name.startswith("msg."))

    def count(self):
        return len(self.files())

    def messages(self):
        """[bytes] of every dump; one still being written, or cut short by a dropped
        connection, is incomplete."""
        return [p.read_bytes() for p in self.files()]

    def wait_count(self, n, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count() >= n:
                return self.messages()
            time.sleep(0.05)
        raise AssertionError(f"smtp-sink got {self.count()} of {n} messages")


def make_test_ca(directory, names=("peer.test", "localhost"), ip="127.0.0.1"):
    """A test CA and a server certificate signed by it (openssl CLI). Returns paths dict."""
    import subprocess
    d = str(directory)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "30", "-subj", "/CN=Postern Test CA")
    san = ",".join([f"DNS:{n}" for n in names] + ([f"IP:{ip}"] if ip else []))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", f"/CN={names[0]}")
    with open(f"{d}/ext.cnf", "w") as e:
        e.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "30", "-extfile", f"{d}/ext.cnf")
    return {"ca": f"{d}/ca.pem", "cert": f"{d}/server.pem", "key": f"{d}/server.key"}


# --- certificates for mandatory-TLS tests (openssl CLI only) ----------------------------------


def _openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], check=True, capture_output=True, input=stdin).stdout


def make_ca(directory, cn="Postern Test CA", stem="ca"):
    """A self-signed test CA (P-256): {"ca": PEM path, "ca_key": key path}."""
    d = str(directory)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{d}/{stem}.key", "-out", f"{d}/{stem}.pem", "-days", "30", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return {"ca": f"{d}/{stem}.pem", "ca_key": f"{d}/{stem}.key"}


def _utc(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def make_cert(directory, ca=None, names=("peer.test",), ip=None, cn=None, stem="server",
              not_before=None, not_after=None, eku="serverAuth"):
    """A server certificate (P-256) with SAN dNSName `names` (and IP `ip`), CN `cn` (default the
    first name). ca = make_ca(...) signs it; ca=None makes it self-signed. not_before/not_after
    (aware datetimes) set the validity exactly (e.g. already expired, or not yet valid); by default
    it is valid from an hour ago for 30 days. `eku` is the extendedKeyUsage value ("clientAuth",
    "serverAuth,clientAuth", ...; None: no EKU extension). Returns {"cert", "key", "ca"} (ca: the
    issuer's PEM, or the certificate itself when self-signed)."""
    d = str(directory)
    cn = cn or (names[0] if names else "server")
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = not_before or now - datetime.timedelta(hours=1)
    not_after = not_after or now + datetime.timedelta(days=30)
    san = ",".join([f"DNS:{n}" for n in names] + ([f"IP:{ip}"] if ip else []))
    ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature"]
    if eku:
        ext.append(f"extendedKeyUsage={eku}")
    if san:
        ext.append(f"subjectAltName={san}")
    cert, key = f"{d}/{stem}.pem", f"{d}/{stem}.key"
    if ca is None:
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "30", "-subj", f"/CN={cn}"]
        for e in ext:
            args += ["-addext", e]
        _openssl(*args)
        return {"cert": cert, "key": key, "ca": cert}
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", f"{d}/{stem}.csr", "-subj", f"/CN={cn}")
    # `openssl ca` (not `x509 -req`) because only it sets exact start and end dates
    cadir = f"{d}/{stem}.cadb"
    os.makedirs(cadir, exist_ok=True)
    open(f"{cadir}/index.txt", "w").close()
    with open(f"{cadir}/serial", "w") as f:
        f.write(f"{int.from_bytes(os.urandom(8), 'big') | 1:016X}\n")
    with open(f"{cadir}/ca.cnf", "w") as f:
        f.write(f"""[ca]
default_ca = test_ca
[test_ca]
dir = {cadir}
database = {cadir}/index.txt
new_certs_dir = {cadir}
serial = {cadir}/serial
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
[any_policy]
commonName = supplied
[server_ext]
""" + "\n".join(ext) + "\n")
    _openssl("ca", "-batch", "-notext", "-config", f"{cadir}/ca.cnf", "-extensions", "server_ext",
             "-cert", ca["ca"], "-keyfile", ca["ca_key"], "-in", f"{d}/{stem}.csr", "-out", cert,
             "-startdate", _utc(not_before), "-enddate", _utc(not_after))
    return {"cert": cert, "key": key, "ca": ca["ca"]}


def cert_sha256(pem_path):
    """SHA-256 of the certificate's DER encoding, lower-case hex (a "sha256:" pin)."""
    with open(pem_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def openssl_fingerprint(pem_path):
    """`openssl x509 -fingerprint -sha256` as a pin: "sha256:AB:CD:..." (upper-case, colons)."""
    out = _openssl("x509", "-in", str(pem_path), "-noout", "-fingerprint", "-sha256").decode()
    return "sha256:" + out.strip().split("=", 1)[1]


def spki_sha256(pem_path):
    """SHA-256 of the certificate's SubjectPublicKeyInfo (DER), lower-case hex (an "spki-sha256:" pin)."""
    pub = _openssl("x509", "-in", str(pem_path), "-noout", "-pubkey")
    der = _openssl("pkey", "-pubin", "-outform", "DER", stdin=pub)
    return hashlib.sha256(der).hexdigest()
