"""tests/e2e/test_config_cli.py - operating the daemon (SPEC §4, §5, §6): SIGHUP reload (good
and bad files; held during start-up, ignored during the drain), `check-config` errors as
FILE:LINE (TLS files loaded as serve loads them), JSON logs, SIGTERM."""
import datetime
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import POSTERN, qid_of, relay_domain, render_config, wait_port, wait_until
from peers import ScriptedPeer, make_ca, make_cert


def size_in_ehlo(inst):
    with inst.smtp() as c:
        ehlo = c.ehlo()
    sizes = [l for l in ehlo.lines if l.startswith("SIZE ")]
    assert len(sizes) == 1, ehlo
    return int(sizes[0].split()[1])


def count_events(inst, event):
    return sum(1 for l in inst.log().splitlines() if f" {event} " in l)


def test_sighup_reload_applies_to_new_sessions(make_instance):
    inst = make_instance(server_extra="max_message_size = 10240")
    assert size_in_ehlo(inst) == 10240
    old = inst.smtp()
    try:
        old.ehlo()
        inst.write_config(render_config(inst.dir, inst.port, server_extra="max_message_size = 20480"))
        inst.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: count_events(inst, "reload") == 1, what="reload logged")
        assert inst.alive
        assert size_in_ehlo(inst) == 20480  # a new session sees the new config
        # the session that started before the reload keeps its config
        r = old.cmd("MAIL FROM:<a@example.test> SIZE=15000")
        assert r.code == 552, r
        assert old.cmd("EHLO again.test").lines.count("SIZE 10240") == 1
    finally:
        old.close()


def test_sighup_with_bad_file_keeps_old_config(make_instance):
    inst = make_instance(server_extra="max_message_size = 10240")
    good = inst.config.read_text()
    lines = good.splitlines()
    idx = lines.index("[server]")
    lines.insert(idx + 1, "max_mesage_size = 20480")  # typo: unknown key
    bad_line = idx + 2
    inst.write_config("\n".join(lines) + "\n")
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload_failed" in inst.log(), what="reload_failed logged")
    time.sleep(0.1)
    assert inst.alive
    failed = [l for l in inst.log().splitlines() if "reload_failed" in l]
    assert len(failed) == 1
    assert f"{inst.config}:{bad_line}:" in failed[0], failed[0]
    assert "max_mesage_size" in failed[0]
    assert size_in_ehlo(inst) == 10240
    # still accepts mail with the old config
    with inst.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: after bad reload\r\n\r\nx\r\n"))
    assert inst.wait_maildir("bob")
    # fixing the file and reloading again works
    inst.write_config(good.replace("max_message_size = 10240", "max_message_size = 30720"))
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: count_events(inst, "reload") == 1, what="reload logged")
    assert size_in_ehlo(inst) == 30720


def run_check(path, cwd=None):
    return subprocess.run([POSTERN, "check-config", "-c", str(path)], capture_output=True, text=True,
                          timeout=20, cwd=cwd)


@pytest.mark.parametrize("section,insert,needle", [
    ("[server]", "bogus_key = 1", "unknown key 'server.bogus_key'"),
    ("[tls]", "opportunistic = 1", "tls.opportunistic"),
    ("[server]", 'command_timeout = "5 parsecs"', "server.command_timeout"),
    ("[queue]", "frobnicate = true", "unknown key 'queue.frobnicate'"),
    ("[server]", "max_errors = 3 3", "Error while parsing"),
    ("[server]", "max_message_size = 10", "server.max_message_size"),
], ids=["unknown-server-key", "bad-bool", "bad-duration", "unknown-queue-key", "toml-syntax", "size-too-small"])
def test_check_config_reports_file_and_line(make_instance, section, insert, needle):
    inst = make_instance(start=False)
    assert run_check(inst.config).returncode == 0
    lines = inst.config.read_text().splitlines()
    idx = lines.index(section)
    lines.insert(idx + 1, insert)
    inst.write_config("\n".join(lines) + "\n")
    r = run_check(inst.config)
    assert r.returncode == 2, (r.returncode, r.stderr)
    out = r.stderr.strip()
    assert "\n" not in out, out  # one message: the first error
    assert out.startswith(f"{inst.config}:{idx + 2}: "), out
    assert needle in out, out
    assert r.stdout == ""


def test_check_config_unknown_top_level_key_and_good_file(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('hostname = "mx.test"\n\n[spool]\ndir = "spool"\n\nmystery = 3\n')
    r = run_check(cfg)
    assert r.returncode == 2
    # `mystery` is inside [spool] (TOML): line 6
    assert r.stderr.strip().startswith(f"{cfg}:6: unknown key 'spool.mystery'"), r.stderr
    cfg.write_text('hostname = "mx.test"\nwhatever = 1\n\n[spool]\ndir = "spool"\n')
    r = run_check(cfg)
    assert r.returncode == 2 and r.stderr.strip().startswith(f"{cfg}:2: unknown key 'whatever'"), r.stderr
    cfg.write_text('hostname = "mx.test"\n\n[spool]\ndir = "spool"\n')
    r = run_check(cfg)
    assert r.returncode == 0, r.stderr


def test_serve_refuses_bad_config(make_instance):
    inst = make_instance(start=False, server_extra="bogus = 1")
    r = subprocess.run([POSTERN, "serve", "-c", str(inst.config)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert f"{inst.config}:" in r.stderr and "unknown key 'server.bogus'" in r.stderr


def test_json_log_lines(make_instance):
    inst = make_instance(extra='[log]\nformat = "json"\n')
    with inst.smtp() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        qid = qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: json\r\n\r\nx\r\n"))
        assert c.cmd("BOGUS").code == 500
        assert c.cmd("QUIT").code == 221
    inst.wait_maildir("bob")
    inst.wait_log('"result":"sent"')
    inst.stop()
    assert inst.proc.returncode == 0
    events = []
    for line in inst.log().splitlines():
        obj = json.loads(line)  # every line is one JSON object
        assert isinstance(obj, dict) and isinstance(obj.get("event"), str), line
        events.append(obj)
    names = [e["event"] for e in events]
    for expected in ("start", "connect", "tls", "queued", "delivery", "disconnect", "stop"):
        assert expected in names, (expected, names)
    queued = [e for e in events if e["event"] == "queued"]
    assert len(queued) == 1 and queued[0]["id"] == qid, queued
    # counts and times are JSON numbers, not strings
    assert queued[0]["nrcpt"] == 1 and type(queued[0]["size"]) is int and queued[0]["size"] > 0, queued
    tls = [e for e in events if e["event"] == "tls"]
    assert len(tls) == 1 and tls[0]["bits"] in (128, 256), tls
    closed = [e for e in events if e["event"] == "disconnect"]
    assert any(e["messages"] == 1 and e["errors"] == 1 for e in closed), closed
    delivery = [e for e in events if e["event"] == "delivery"]
    assert len(delivery) == 1, delivery
    e = delivery[0]
    assert e["id"] == qid and e["result"] == "sent"
    # SPEC §6, the fields of the text line (test_delivery.py::test_deferred_log_line); a maildir
    # delivery has no relay host and no TLS, and its reason names the file it wrote
    assert set(DELIVERY_FIELDS) <= set(e), (sorted(set(DELIVERY_FIELDS) - set(e)), e)
    assert e["to"] == "<bob@localhost>" and e["relay"] == "maildir" and e["profile"] == "-", e
    assert (e["tls"], e["proto"], e["cipher"]) == ("none", "-", "-"), e
    assert e["dsn"] == "2.0.0" and e["attempt"] == 1 and type(e["attempt"]) is int, e
    assert type(e["delay"]) is float and 0 <= e["delay"] < 60, e
    assert os.path.isfile(e["reason"]) and "/var/mail/localhost/bob/new/" in e["reason"], e


# The fields every delivery line carries (SPEC §6), in text and in JSON alike.
DELIVERY_FIELDS = ("id", "to", "relay", "profile", "tls", "proto", "cipher", "result", "dsn", "delay",
                   "attempt", "reason")


def test_json_delivery_lines_carry_every_field(make_instance, tmp_path):
    """SPEC §6 with log.format = "json": each delivery attempt is one JSON object with the queue
    id, the recipient, the relay host[ip]:port, the profile, tls (verified here: a CA-signed
    certificate naming the recipient domain, trusted through tls.ca_file), the TLS version and
    cipher, the result, the enhanced status code and the reason - for a message sent over TLS
    and for one deferred by a peer that greets 421, whose reply the reason quotes."""
    c = make_cert(tmp_path, make_ca(tmp_path), names=("good.test",))
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as good, \
            ScriptedPeer(starttls=False, greeting_codes=(421,)) as busy:
        inst = make_instance(domains=relay_domain("good.test", f"127.0.0.1:{good.port}")
                             + relay_domain("busy.test", f"127.0.0.1:{busy.port}"),
                             tls_extra=f'ca_file = "{c["ca"]}"', queue_extra='retry_schedule = ["1h"]',
                             extra='[log]\nformat = "json"\n')
        q_sent = inst.send("alice@example.test", ["bob@good.test"], "json sent")
        q_deferred = inst.send("alice@example.test", ["carol@busy.test"], "json deferred")
        good.wait_messages(1, timeout=10)
        inst.wait_log('"result":"deferred"')
        inst.wait_log('"result":"sent"')
        inst.stop()
    lines = [json.loads(l) for l in inst.log().splitlines()]
    delivery = {e["id"]: e for e in lines if e.get("event") == "delivery"}
    assert set(delivery) == {q_sent, q_deferred}, lines

    sent = delivery[q_sent]
    assert_delivery_object(sent, "info", "<bob@good.test>", good.port, "sent")
    assert sent["tls"] == "verified", sent
    assert sent["proto"] == good.connections[0].tls_version == "TLSv1.3", sent
    assert re.fullmatch(r"TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)", sent["cipher"]), sent
    assert sent["dsn"] == "2.0.0" and sent["reason"].startswith("250"), sent  # the reply to the end of data

    deferred = delivery[q_deferred]
    assert_delivery_object(deferred, "warning", "<carol@busy.test>", busy.port, "deferred")
    assert (deferred["tls"], deferred["proto"], deferred["cipher"]) == ("none", "-", "-"), deferred
    assert re.fullmatch(r"4\.\d{1,3}\.\d{1,3}", deferred["dsn"]), deferred
    assert "421" in deferred["reason"] and "not now" in deferred["reason"], deferred


def assert_delivery_object(e, level, to, port, result):
    """The SPEC §6 fields every JSON delivery object carries, for a first attempt at the relay
    host on 127.0.0.1:port with no profile; attempt and delay are JSON numbers."""
    assert set(DELIVERY_FIELDS) <= set(e), (sorted(set(DELIVERY_FIELDS) - set(e)), e)
    assert (e["level"], e["to"], e["profile"], e["result"]) == (level, to, "-", result), e
    assert e["relay"] == f"127.0.0.1[127.0.0.1]:{port}", e
    assert e["attempt"] == 1 and type(e["delay"]) is float and e["delay"] >= 0, e


def test_sigterm_exits_zero(postern):
    with postern.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: t\r\n\r\nx\r\n"))
    postern.wait_maildir("bob")
    postern.wait_sessions_closed()
    t0 = time.time()
    postern.proc.send_signal(signal.SIGTERM)
    rc = postern.proc.wait(timeout=5)
    assert rc == 0
    assert time.time() - t0 < 3
    assert " stop " in postern.log()
    import socket
    with pytest.raises(OSError):
        socket.create_connection((postern.host, postern.port), timeout=1).close()


@pytest.mark.parametrize("sighup", [False, True], ids=["sigterm", "then-sighup"])
def test_sigterm_lets_a_session_finish(postern, sighup):
    """A session in a transaction may finish it during the drain. Then-sighup: after SIGTERM only
    SIGTERM or SIGINT again stops at once; a SIGHUP (a reload script, a logrotate hook) is
    ignored and logged, and the session still finishes (a SIGHUP used to end the drain)."""
    c = postern.smtp()
    try:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        postern.proc.send_signal(signal.SIGTERM)
        if sighup:
            postern.wait_log(" stop ")
            postern.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: not postern.alive or "SIGHUP while stopping" in postern.log(), what="SIGHUP handled")
        time.sleep(0.3)
        # draining: the open session is not cut
        assert postern.alive, f"the drain ended early (exit {postern.proc.returncode})"
        c.expect("DATA", 354)
        c.send(b"Subject: drain\r\n\r\nx\r\n.\r\n")
        qid_of(c.read_reply())
        # The transaction is over: the session waits for no further command (RFC 5321 3.8).
        data = c.wait_closed(3)
        assert data.startswith(b"421 4.3.2 "), data
    finally:
        c.close()
    assert postern.proc.wait(timeout=5) == 0
    assert count_events(postern, "reload") == 0
    # accepted during drain: it is in the queue (delivered at once or at the next start)
    msgs = postern.maildir_messages("bob")
    if not msgs:
        assert len(postern.spool_files("queue")) == 1
        postern.start()
        postern.wait_maildir("bob")


def fifo_writer(path, timeout=10.0):
    """Opens the FIFO for writing once a reader waits on it (O_NONBLOCK: ENXIO until then)."""
    deadline = time.time() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.time() > deadline:
                raise
            time.sleep(0.02)


def test_sighup_during_start_up_is_not_fatal(make_instance):
    """A SIGHUP that arrives before the server handles signals (here: while it reads its config
    file, a FIFO so that the moment is certain) must not kill it (SIGHUP's default action): it
    is held, and becomes a reload once the server runs."""
    inst = make_instance(start=False)
    text = inst.config.read_text().encode()
    fifo = inst.dir / "fifo.toml"
    os.mkfifo(fifo)
    logf = open(inst.log_path, "ab")
    inst.proc = subprocess.Popen([POSTERN, "serve", "-c", str(fifo)], stdout=logf, stderr=logf, cwd=inst.dir)
    fd = fifo_writer(fifo)  # serve is in its first config read
    inst.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    if not inst.alive:
        os.close(fd)
        pytest.fail(f"SIGHUP during start-up killed the server (exit {inst.proc.returncode})")
    os.write(fd, text)
    os.close(fd)
    inst.wait_log(" start ")  # the first read is over (else the next write would join it)
    fd = fifo_writer(fifo)  # the reload reads the file again
    os.write(fd, text)
    os.close(fd)
    inst.wait_log(" reload ")
    wait_port(inst.host, inst.port, proc=inst.proc)
    assert inst.alive


def test_refusals_are_logged_as_reject(postern):
    # README "Logs": a `reject` event; an administrator must see relay attempts in the log.
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<spammer@example.test>", 250)
        r = c.cmd("RCPT TO:<victim@elsewhere.test>")
        assert r.code == 554, r
    postern.wait_sessions_closed()
    rejects = [l for l in postern.log().splitlines() if " reject " in l]
    assert len(rejects) == 1, postern.log()
    assert "554 5.7.1" in rejects[0] and "victim@elsewhere.test" in rejects[0], rejects[0]


def test_json_log_escapes_hostile_input(make_instance):
    inst = make_instance(extra='[log]\nformat = "json"\n')
    sender = '"we\\"i\\\\rd"@example.test'
    with inst.smtp() as c:
        c.ehlo('h\\"x')
        c.expect(f"MAIL FROM:<{sender}>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("RCPT TO:<\"q\\\"x\"@elsewhere.test>", 554)
        c.expect("DATA", 354)
        c.send(b"Subject: j\r\n\r\nx\r\n.\r\n")
        qid = qid_of(c.read_reply())
    inst.wait_maildir("bob")
    inst.wait_log('"result":"sent"')
    inst.wait_sessions_closed()
    events = [json.loads(l) for l in inst.log().splitlines()]
    queued = [e for e in events if e["event"] == "queued"]
    assert queued[0]["id"] == qid and sender in queued[0]["from"], queued


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "starttls"])
def test_sigterm_tells_idle_sessions_421_and_exits_at_once(postern, tls):
    """RFC 5321 3.8: shutting down, the server tells a client that waits between transactions
    "421 4.3.2" and closes, instead of holding the drain (10 s) and then cutting it off."""
    idle, greeted = postern.smtp(), postern.smtp()
    try:
        idle.ehlo()
        if tls:
            idle.starttls()
            idle.ehlo()
        idle.expect("MAIL FROM:<a@example.test>", 250)
        idle.expect("RSET", 250)  # a finished (reset) transaction: idle again
        t0 = time.time()
        postern.proc.send_signal(signal.SIGTERM)
        for c in (idle, greeted):
            data = c.wait_closed(3)
            assert b"421 4.3.2 " in data, data
        assert postern.proc.wait(timeout=5) == 0
        assert time.time() - t0 < 3, "the drain waited for idle sessions"
        assert "reason=shutdown" in postern.log() or '"reason":"shutdown"' in postern.log()
    finally:
        idle.close()
        greeted.close()


def test_serve_fails_cleanly_when_port_is_taken(postern, make_instance):
    other = make_instance(start=False)
    other.write_config(render_config(other.dir, postern.port))
    r = subprocess.run([POSTERN, "serve", "-c", str(other.config)], capture_output=True, text=True,
                       timeout=20, cwd=other.dir)
    assert r.returncode != 0
    assert f"127.0.0.1:{postern.port}" in r.stderr and "cannot listen" in r.stderr, r.stderr
    with postern.smtp() as c:  # the running instance is unaffected
        assert c.ehlo().code == 250


def peer_cert_der(inst):
    with inst.smtp() as c:
        c.ehlo()
        c.starttls()
        der = c.sock.getpeercert(binary_form=True)
        c.ehlo()
    return der


def test_sighup_picks_up_a_renewed_certificate(make_instance):
    import ssl
    inst = make_instance()
    old_der = peer_cert_der(inst)
    assert old_der == ssl.PEM_cert_to_DER_cert((inst.dir / "var/tls/cert.pem").read_text())
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(inst.dir / "var/tls/new-key.pem"),
                        "-out", str(inst.dir / "var/tls/new-cert.pem"), "-days", "2",
                        "-subj", "/CN=renewed.test"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    inst.write_config(render_config(inst.dir, inst.port).replace("var/tls/cert.pem", "var/tls/new-cert.pem")
                      .replace("var/tls/key.pem", "var/tls/new-key.pem"))
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: count_events(inst, "reload") == 1, what="reload logged")
    new_der = peer_cert_der(inst)
    assert new_der == ssl.PEM_cert_to_DER_cert((inst.dir / "var/tls/new-cert.pem").read_text())
    # a key that does not match the certificate: reload fails, the renewed certificate stays
    inst.write_config(render_config(inst.dir, inst.port).replace("var/tls/cert.pem", "var/tls/new-cert.pem"))
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload_failed" in inst.log(), what="reload_failed logged")
    assert inst.alive
    assert peer_cert_der(inst) == new_der


def test_reload_that_changes_spool_sync_warns_and_keeps_accepting(make_instance):
    # spool.sync takes effect at restart: a reload says so, and mail keeps flowing meanwhile.
    inst = make_instance(spool_extra='sync = "filesystem"')
    inst.write_config(render_config(inst.dir, inst.port, spool_extra='sync = "file"'))
    inst.proc.send_signal(signal.SIGHUP)
    # two "reload" lines: the warning, then the reload itself (it names the config file)
    wait_until(lambda: any(" reload " in l and "config=" in l for l in inst.log().splitlines()),
               what="reload logged")
    warned = [l for l in inst.log().splitlines() if "spool.sync" in l and "restart" in l]
    assert len(warned) == 1, inst.log()[-2000:]
    qid = inst.send("alice@localhost", ["bob@localhost"], subject="after reload")
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and f"id {qid}".encode() in msgs[0]


def test_check_config_and_serve_report_a_missing_key_file_at_its_line(make_instance):
    """A typo in a file name is reported by check-config (and serve) at its line, instead of
    `OK` and a failure at start-up or at the first delivery that needs the file."""
    inst = make_instance(start=False)
    lines = inst.config.read_text().splitlines()
    idx = next(i for i, l in enumerate(lines) if l.startswith("key_file = "))
    lines[idx] = 'key_file = "var/tls/kye.pem"'
    inst.write_config("\n".join(lines) + "\n")
    r = run_check(inst.config)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip() == (f"{inst.config}:{idx + 1}: tls.key_file: {inst.dir / 'var/tls/kye.pem'}: "
                                "No such file or directory"), r.stderr
    s = subprocess.run([POSTERN, "serve", "-c", str(inst.config)], capture_output=True, text=True, timeout=20)
    assert s.returncode == 2 and f"{inst.config}:{idx + 1}: tls.key_file" in s.stderr, (s.returncode, s.stderr)


@pytest.mark.parametrize("valid_days,needle", [(-1, "expired on"), (10, "in less than 30 days"), (90, None)],
                         ids=["expired", "expires-soon", "fine"])
def test_certificate_dates_are_warned_about_at_start(make_instance, tmp_path, valid_days, needle):
    """An expired certificate (or one about to expire) is still served - opportunistic peers
    mostly do not check - but the administrator is told at start-up (and at each reload)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    not_after = now + datetime.timedelta(days=valid_days)
    not_before = min(now, not_after) - datetime.timedelta(days=10)
    # signed by a CA: only `openssl ca` sets exact dates (peers.make_cert)
    c = make_cert(tmp_path, make_ca(tmp_path), names=("localhost",), not_before=not_before, not_after=not_after)
    inst = make_instance(start=False)
    shutil.copy(c["cert"], inst.dir / "var/tls/cert.pem")
    shutil.copy(c["key"], inst.dir / "var/tls/key.pem")
    inst.start()  # the certificate is loaded before the port listens
    warnings = [e for e in inst.events("tls") if "certificate" in e.get("message", "")]
    if needle is None:
        assert warnings == [], warnings
    else:
        assert len(warnings) == 1 and needle in warnings[0]["message"], inst.log()[-1500:]
        assert str(inst.dir / "var/tls/cert.pem") in warnings[0]["message"]
    # check-config says the same, as a warning at the line of tls.cert_file, and still OK; in
    # line order with the config's own warnings (a dane profile, written after [tls])
    inst.write_config(inst.config.read_text() + '\n[[profile]]\nname = "later"\nrecipient_domains = ["d.test"]\n'
                      '[profile.outbound]\ntls = "mandatory"\nverify = "dane"\n')
    r = run_check(inst.config)
    line = next(i for i, l in enumerate(inst.config.read_text().splitlines(), 1) if l.startswith("cert_file = "))
    assert r.returncode == 0 and r.stdout.strip() == f"{inst.config}: OK", (r.returncode, r.stdout, r.stderr)
    said = r.stderr.strip().splitlines()
    assert said[-1].startswith(f"{inst.config}:") and "verify = \"dane\" is not implemented" in said[-1], said
    if needle is None:
        assert "certificate" not in r.stderr, r.stderr
    else:
        assert len(said) == 2 and said[0].startswith(f"{inst.config}:{line}: warning: tls.cert_file: certificate "
                                                      f"{inst.dir / 'var/tls/cert.pem'} "), said
        assert needle in said[0] and " tls " not in r.stderr, r.stderr  # not a server log line


def test_reload_names_every_key_it_cannot_apply(make_instance):
    """server.listen moved to another port (same number of addresses) and dns.servers changed:
    neither can change without a restart, and the reload says so by name instead of a silent
    `reload`."""
    inst = make_instance()
    other_port = inst.port + 1 if inst.port < 65535 else inst.port - 1
    text = render_config(inst.dir, inst.port, extra='[dns]\nservers = ["127.0.0.1:5399"]\n')
    inst.write_config(text.replace(f'listen = ["127.0.0.1:{inst.port}"]', f'listen = ["127.0.0.1:{other_port}"]'))
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any(" reload " in l and "config=" in l for l in inst.log().splitlines()),
               what="reload logged")
    warned = [e["message"] for e in inst.events("reload") if "message" in e]
    assert len(warned) == 1, inst.log()[-2000:]
    assert warned[0].startswith("server.listen, dns.servers changed: applied at the next restart"), warned
    assert inst.send("alice@localhost", ["bob@localhost"], subject="still on the old port")


def test_check_config_and_serve_warn_that_dane_is_not_implemented(make_instance):
    """verify = "dane" is a valid setting (SPEC §1.3) that this version cannot honour: every
    session under the profile is refused. check-config accepts it but says so at its line, and
    serve logs it, instead of mail silently deferred for days."""
    inst = make_instance(start=False, extra='[[profile]]\nname = "partner"\nrecipient_domains = ["partner.test"]\n\n'
                                             '[profile.outbound]\ntls = "mandatory"\nverify = "dane"\n')
    r = run_check(inst.config)
    line = inst.config.read_text().splitlines().index("[[profile]]") + 1
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (f"{inst.config}:{line}: warning: profile 'partner': verify = \"dane\" is not "
                                "implemented yet: every outbound session under this profile is refused (no mail flows)"), r.stderr
    inst.start()
    assert any("dane" in e.get("message", "") for e in inst.events("config")), inst.log()[-1500:]


def test_check_config_and_serve_warn_when_a_hosts_profile_shadows_mandatory_senders(make_instance):
    """A profile for a partner's MX hosts with only [profile.outbound] also matches those hosts
    as clients, and SPEC §1.4 puts that before the sender domain: a mandatory sender-domain
    profile then never applies to their mail. check-config says so at the hosts profile's
    line (exit 0) and serve logs it; an explicit [profile.inbound] silences it."""
    mx = '[[profile]]\nname = "partner-mx"\nhosts = ["127.0.0.9"]\n\n[profile.outbound]\ntls = "mandatory"\n'
    senders = ('\n[[profile]]\nname = "partner"\nsender_domains = ["partner.test"]\n\n'
               '[profile.inbound]\ntls = "mandatory"\n')
    inst = make_instance(start=False, extra=mx + senders)
    r = run_check(inst.config)
    line = inst.config.read_text().splitlines().index('name = "partner-mx"')  # the [[profile]] line above it
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == (f"{inst.config}:{line}: warning: profile 'partner-mx' matches clients by hosts and has "
                                "no [profile.inbound]: mail from the clients it matches is never under a sender-domain "
                                "profile (profile 'partner' requires TLS for its senders), so it is accepted as "
                                "tls.opportunistic says; add [profile.inbound] to say what applies"), r.stderr
    inst.start()
    assert any("partner-mx" in e.get("message", "") for e in inst.events("config")), inst.log()[-1500:]
    inst.stop()
    text = inst.config.read_text()
    explicit = text.replace('tls = "mandatory"\n\n[[profile]]\nname = "partner"',
                            'tls = "mandatory"\n\n[profile.inbound]\ntls = "opportunistic"\n\n[[profile]]\nname = "partner"')
    assert explicit != text
    inst.config.write_text(explicit)
    r = run_check(inst.config)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def line_of(inst, prefix):
    return next(i for i, l in enumerate(inst.config.read_text().splitlines()) if l.startswith(prefix)) + 1


@pytest.mark.parametrize("what", ["garbage-certificate", "garbage-key", "mismatched-key"])
def test_check_config_refuses_tls_files_that_serve_refuses(make_instance, tmpdir_postern, what):
    """check-config loads the certificate and key as serve does: a file that exists and can be
    read but holds no certificate, no key, or a key of another certificate is an error at the
    line of the key that names it (it used to say OK, and serve then exited 2)."""
    inst = make_instance(start=False)
    tls = inst.dir / "var/tls"
    if what == "garbage-certificate":
        (tls / "cert.pem").write_text("garbage\n")
        key, needle = "tls.cert_file", "cannot load certificate"
    elif what == "garbage-key":
        (tls / "key.pem").write_text("garbage\n")
        key, needle = "tls.key_file", "cannot load private key"
    else:
        other = tmpdir_postern / "other"
        assert subprocess.run([POSTERN, "init", str(other)], capture_output=True).returncode == 0
        shutil.copy(other / "var/tls/key.pem", tls / "key.pem")
        # OpenSSL 3 finds the mismatch as it loads the key; said as such, without the hint
        # about encrypted keys that a key which cannot be loaded gets
        key, needle = "tls.key_file", "does not match certificate"
    r = run_check(inst.config)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    line = line_of(inst, key.split(".")[1] + " = ")
    assert r.stderr.startswith(f"{inst.config}:{line}: {key}: "), r.stderr
    assert re.search(needle, r.stderr), r.stderr
    assert what != "mismatched-key" or "encrypted" not in r.stderr, r.stderr
    s = subprocess.run([POSTERN, "serve", "-c", str(inst.config)], capture_output=True, text=True, timeout=20)
    assert s.returncode == 2 and re.search(needle, s.stderr), (s.returncode, s.stderr)


def test_check_config_refuses_a_ca_file_that_is_no_certificate(make_instance):
    inst = make_instance(start=False, tls_extra='ca_file = "var/tls/ca.pem"')
    (inst.dir / "var/tls/ca.pem").write_text("not a certificate\n")
    r = run_check(inst.config)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"{inst.config}:{line_of(inst, 'ca_file = ')}: tls.ca_file: "), r.stderr


def test_c_defaults_to_postern_toml_in_the_working_directory(make_instance, tmp_path):
    """SPEC §4: `-c` defaults to `./postern.toml`. Run from the instance's directory (where its
    postern.toml is) without -c, `check-config` exits 0 and `queue list` shows that instance's
    queue; run from a directory without a postern.toml, they fail instead of finding some other
    file. With an unknown key added, both exit 2 with `postern.toml:LINE: ...` (the file as it
    was named: the default). Fails if the default is another name or place, or if an error in
    the default file is not reported at its line."""
    inst = make_instance(queue_extra="hold = true")
    assert inst.config == inst.dir / "postern.toml"
    qid = inst.send("alice@example.test", ["bob@localhost"], subject="default config")

    def run(*args, cwd):
        return subprocess.run([POSTERN, *args], capture_output=True, text=True, timeout=30, cwd=cwd)

    r = run("check-config", cwd=inst.dir)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    r = run("queue", "list", "--json", cwd=inst.dir)
    assert r.returncode == 0, (r.returncode, r.stderr)
    msgs = json.loads(r.stdout)
    assert [m["id"] for m in msgs] == [qid] and msgs[0]["held"] is True, msgs

    # elsewhere there is no ./postern.toml: an error, not another config or an empty queue
    for args in (("check-config",), ("queue", "list", "--json")):
        r = run(*args, cwd=tmp_path)
        assert r.returncode not in (0, 1), (args, r.returncode, r.stdout, r.stderr)
        assert "postern.toml" in r.stderr and r.stdout == "", (args, r.stderr)

    lines = inst.config.read_text().splitlines()
    idx = lines.index("[server]")
    lines.insert(idx + 1, "bogus_key = 1")
    inst.write_config("\n".join(lines) + "\n")
    r = run("check-config", cwd=inst.dir)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert re.match(rf"^(\./)?postern\.toml:{idx + 2}: unknown key 'server\.bogus_key'", r.stderr), r.stderr
    # the queue commands need only spool.dir: the same line as a warning, and the queue
    r = run("queue", "list", "--json", cwd=inst.dir)
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 1, (r.returncode, r.stdout, r.stderr)
    assert re.search(rf"^(\./)?postern\.toml:{idx + 2}: unknown key 'server\.bogus_key'$", r.stderr, re.M), r.stderr


@pytest.mark.parametrize("args", [
    ("bogus-command",),
    ("queue", "show"),                       # ID missing
    ("check-config", "--no-such-option"),
    ("init",),                               # DIR missing
    (),                                      # no command at all
])
def test_a_command_line_that_cannot_be_understood_exits_2(args, tmp_path):
    """A usage error exits 2 with the problem on stderr and nothing on stdout, the code
    check-config and tls-policy use for theirs, never 0 or 1 (1 is "the server cannot be
    reached" for the queue commands). Fails on CLI11's own codes (106, 109, ...)."""
    r = subprocess.run([POSTERN, *args], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip() and r.stdout == "", (args, r.stdout, r.stderr)
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_help_and_version_exit_0():
    for args in (("--help",), ("--version",), ("queue", "--help")):
        r = subprocess.run([POSTERN, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip(), (args, r.returncode, r.stdout, r.stderr)
