"""tests/e2e/test_config_tls_files.py - how check-config, serve and a SIGHUP reload report the TLS
files a config names and the mistakes in the file itself (README "Commands"): a profile's
ca_file is loaded like tls.ca_file; a TLS file error is `FILE:LINE: key: message` however the key
is written, with the same words from all three; opportunistic TLS without a certificate is a
warning; duplicate keys or tables and bytes that are not UTF-8 are errors at their line."""
import signal
import subprocess

import pytest

from conftest import POSTERN, render_config, wait_until

GARBAGE = "this is not a certificate\n"


def run_check(path):
    return subprocess.run([POSTERN, "check-config", "-c", str(path)], capture_output=True, text=True, timeout=20)


def run_serve(path):
    """`serve` on a config it must refuse: its exit status and stderr."""
    return subprocess.run([POSTERN, "serve", "-c", str(path)], capture_output=True, text=True, timeout=20)


def line_of(text, needle):
    return next(i for i, l in enumerate(text.splitlines()) if needle in l) + 1


def reload_failed_error(inst):
    """The `error` of the one reload_failed event, after a SIGHUP."""
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: inst.events("reload_failed"), what="reload_failed logged")
    assert inst.alive
    failed = inst.events("reload_failed")
    assert len(failed) == 1, failed
    return failed[0]["error"]


def profile_with_ca(direction):
    """A profile whose `direction` table names var/tls/partner-ca.pem (verify = "ca")."""
    select = 'recipient_domains = ["partner.test"]' if direction == "outbound" else 'hosts = ["127.0.0.9"]'
    return (f'[[profile]]\nname = "partner"\n{select}\n\n[profile.{direction}]\ntls = "mandatory"\n'
            f'verify = "ca"\nca_file = "var/tls/partner-ca.pem"\n')


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
def test_profile_ca_file_without_a_certificate_is_refused_like_tls_ca_file(make_instance, direction):
    """A profile's ca_file holding no certificate used to pass check-config and serve, and then
    fail every session under the profile ("cannot load CA file"). Now: an error at its line from
    check-config (exit 2), serve (exit 2) and a reload (reload_failed, the old config kept)."""
    inst = make_instance()  # running with a good config, no profile
    (inst.dir / "var/tls/partner-ca.pem").write_text(GARBAGE)
    inst.write_config(render_config(inst.dir, inst.port, extra=profile_with_ca(direction)))
    line = line_of(inst.config.read_text(), "partner-ca.pem")
    want = (f"{inst.config}:{line}: profile.{direction}.ca_file: cannot load CA file "
            f"{inst.dir / 'var/tls/partner-ca.pem'}: ")
    r = run_check(inst.config)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(want) and r.stderr.count("\n") == 1, r.stderr
    assert reload_failed_error(inst) == r.stderr.strip()
    assert inst.send("a@example.test", ["bob@localhost"]) and inst.wait_maildir("bob")  # the old config
    inst.stop()
    s = run_serve(inst.config)
    assert s.returncode == 2 and r.stderr.strip() in s.stderr.splitlines(), (s.returncode, s.stderr)


def tls_written(form):
    """The [tls] certificate and key, naming var/tls/bad.pem as the certificate, written in
    `form`, and where it goes: at the top (before any table) or in place of [tls]."""
    if form == "inline":
        return "top", 'tls = { cert_file = "var/tls/bad.pem", key_file = "var/tls/key.pem" }\n'
    if form == "dotted":
        return "top", 'tls.cert_file = "var/tls/bad.pem"\ntls.key_file = "var/tls/key.pem"\n'
    return "table", '[tls]\n"cert_file" = "var/tls/bad.pem"\n"key_file" = "var/tls/key.pem"\n'


@pytest.mark.parametrize("form", ["inline", "quoted", "dotted"])
def test_tls_file_error_has_its_line_however_the_key_is_written(make_instance, form):
    """check-config found the line by scanning the text for `cert_file = ` under `[tls]`: an
    inline table or a quoted key lost it. serve said `FILE: tls: message`. Now all three (and a
    reload) say `FILE:LINE: tls.cert_file: message`, the line from the TOML parser."""
    inst = make_instance()
    good = inst.config.read_text()
    (inst.dir / "var/tls/bad.pem").write_text(GARBAGE)
    where, tls = tls_written(form)
    text = good.replace('[tls]\ncert_file = "var/tls/cert.pem"\nkey_file = "var/tls/key.pem"\n', "")
    assert text != good
    if where == "top":
        text = text.replace('hostname = "mx.postern.test"\n', 'hostname = "mx.postern.test"\n' + tls)
    else:
        text = text.replace("[queue]\n", tls + "\n[queue]\n")
    inst.write_config(text)
    line = line_of(text, "bad.pem")
    r = run_check(inst.config)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"{inst.config}:{line}: tls.cert_file: cannot load certificate "), r.stderr
    assert reload_failed_error(inst) == r.stderr.strip()
    inst.stop()
    s = run_serve(inst.config)
    assert s.returncode == 2 and r.stderr.strip() in s.stderr.splitlines(), (s.returncode, s.stderr)


@pytest.mark.parametrize("written", ["key", "table", "absent"])
def test_opportunistic_tls_without_a_certificate_warns(make_instance, written):
    """SPEC 1.1: with opportunistic TLS on (the default) EHLO advertises STARTTLS; without
    tls.cert_file it cannot, and it used to be silently left out. check-config warns at the
    tls.opportunistic line (else [tls], else line 1) and serve logs the same warning."""
    inst = make_instance(start=False)
    text = inst.config.read_text().replace('cert_file = "var/tls/cert.pem"\nkey_file = "var/tls/key.pem"\n', "")
    if written == "key":
        text = text.replace("[tls]\n", "[tls]\nopportunistic = true\n")
        line = line_of(text, "opportunistic = true")
    elif written == "table":
        line = line_of(text, "[tls]")
    else:
        text = text.replace("[tls]\n", "")
        line = 1
    inst.write_config(text)
    want = (f"{inst.config}:{line}: warning: tls.opportunistic is on but tls.cert_file is not set: STARTTLS will "
            "not be offered inbound without a certificate (set tls.cert_file and tls.key_file; outbound STARTTLS "
            "is not affected)")
    r = run_check(inst.config)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stderr.strip() == want and r.stdout == f"{inst.config}: OK\n", r.stderr
    inst.start()
    assert [e["message"] for e in inst.events("config")] == [want], inst.log()[-1500:]
    with inst.smtp() as c:
        assert "STARTTLS" not in c.ehlo().lines  # what the warning says


@pytest.mark.parametrize("table,lines", [
    ("[server]", [b"max_errors = 3", b"max_errors = 4"]),
    ("[queue]", [b"hold = false", b"[queue]"]),
    ("[server]", [b"max_errors = 3", b'command_timeout = "5m\xff"']),
    ("[server]", [b"max_errors = 3", b"# caf\xe9 au lait"]),
], ids=["duplicate-key", "duplicate-table", "non-utf8-value", "non-utf8-comment"])
def test_duplicates_and_non_utf8_are_errors_at_their_line(make_instance, table, lines):
    """Two lines after `table`, the second one wrong: check-config names that line, exit 2."""
    inst = make_instance(start=False)
    text = inst.config.read_bytes().splitlines()
    idx = text.index(table.encode())
    text[idx + 1:idx + 1] = lines
    inst.config.write_bytes(b"\n".join(text) + b"\n")
    r = subprocess.run([POSTERN, "check-config", "-c", str(inst.config)], capture_output=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == b""
    err = r.stderr.decode("utf-8", "replace").strip()
    assert err.startswith(f"{inst.config}:{idx + 3}: ") and "\n" not in err, err
