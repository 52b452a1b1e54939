"""tests/e2e/test_init.py - `postern init DIR` and the TLS key pair it writes (SPEC §4).

init writes DIR/postern.toml, a self-signed certificate, and the spool and maildir folders
that config names (SPEC §4: "a working default").

init never overwrites a key or a certificate: an existing pair is kept, a lone key or a lone
certificate is refused (exit 1, naming the file), and only a missing pair is made anew. The file
init writes serves mail as written (every other e2e test replaces it: conftest.render_config).
"""
import os
import pwd
import smtplib
import subprocess
import tomllib

import pytest

from conftest import POSTERN, Instance, free_port, tls_client_context


def init(d):
    return subprocess.run([POSTERN, "init", str(d)], capture_output=True, text=True, timeout=30)


def check_config(d):
    return subprocess.run([POSTERN, "check-config", "-c", str(d / "postern.toml")], capture_output=True,
                          text=True, timeout=30)


def assert_default_checks(d):
    """check-config passes the file init wrote; as root it needs server.user "postern" to exist
    (scripts/install-deps.sh creates it), and says so at that line when it does not."""
    r = check_config(d)
    try:
        pwd.getpwnam("postern")
        missing = False
    except KeyError:
        missing = os.geteuid() == 0
    if missing:
        assert r.returncode == 2 and "server.user: no such user 'postern'" in r.stderr, (r.returncode, r.stderr)
    else:
        assert r.returncode == 0, r.stderr


@pytest.fixture
def initialised(tmpdir_postern):
    d = tmpdir_postern / "d"
    r = init(d)
    assert r.returncode == 0, r.stderr
    return d


def test_init_writes_config_certificate_spool_and_maildir(tmpdir_postern):
    """SPEC §4: `postern init DIR` writes DIR/postern.toml, a self-signed certificate, and the
    spool and maildir folders; the default listens on 127.0.0.1:2525 and hosts `localhost` into
    a maildir. The paths are read from the config init wrote (relative paths are relative to
    its folder), so the check follows the config, not a fixed layout."""
    d = tmpdir_postern / "d"
    r = init(d)
    assert r.returncode == 0, r.stderr
    cfg = tomllib.loads((d / "postern.toml").read_text())
    assert cfg["server"]["listen"] == ["127.0.0.1:2525"], cfg["server"]
    spool = d / cfg["spool"]["dir"]
    assert spool.is_dir(), f"spool.dir {spool} not made by init: {r.stdout}"
    maildirs = {x["name"]: d / x["maildir"] for x in cfg.get("domain", []) if "maildir" in x}
    assert set(maildirs) == {"localhost"}, cfg.get("domain")
    for name, m in maildirs.items():
        assert m.is_dir(), f"the maildir of {name}, {m}, not made by init: {r.stdout}"
    cert, key = d / cfg["tls"]["cert_file"], d / cfg["tls"]["key_file"]
    assert cert.is_file() and key.is_file(), (cert, key)
    # self-signed: the certificate is its own issuer, and verifies against itself
    v = subprocess.run(["openssl", "verify", "-CAfile", str(cert), str(cert)], capture_output=True, text=True,
                       timeout=30)
    assert v.returncode == 0, (v.stdout, v.stderr)
    assert_default_checks(d)


@pytest.mark.parametrize("kept,removed", [("key.pem", "cert.pem"), ("cert.pem", "key.pem")],
                         ids=["lone-key", "lone-certificate"])
def test_init_refuses_a_lone_key_or_certificate(initialised, kept, removed):
    d = initialised
    tls = d / "var/tls"
    before = (tls / kept).read_bytes()
    (d / "postern.toml").unlink()
    (tls / removed).unlink()
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert f"{tls / kept} exists but {tls / removed} does not; not overwriting {tls / kept}" in r.stderr, r.stderr
    assert (tls / kept).read_bytes() == before  # the old code made a new pair over it
    assert not (tls / removed).exists()
    assert not (d / "postern.toml").exists()  # nothing half-done: run init again once fixed


def tree(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_a_refused_init_writes_nothing(tmpdir_postern):
    """A refused init leaves nothing behind: a lone key in a fresh folder gets no spool or maildir
    folders beside it; a folder too deep for the control socket's path gets no config (which
    would not load, and would stop the next init with "already exists"), no key, no folders."""
    d = tmpdir_postern / "lone"
    (d / "var/tls").mkdir(parents=True)
    (d / "var/tls/key.pem").write_text("a key kept elsewhere too\n")
    r = init(d)
    assert r.returncode == 1 and "not overwriting" in r.stderr, (r.returncode, r.stderr)
    assert tree(d) == ["var", "var/tls", "var/tls/key.pem"], tree(d)

    deep = tmpdir_postern / ("x" * 90)
    r = init(deep)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "control socket" in r.stderr and "cannot be used in" in r.stderr, r.stderr
    assert not deep.exists(), tree(deep)


def test_init_keeps_an_existing_pair_and_makes_a_missing_one(initialised):
    d = initialised
    tls = d / "var/tls"
    pair = {n: (tls / n).read_bytes() for n in ("cert.pem", "key.pem")}
    (d / "postern.toml").unlink()
    r = init(d)
    assert r.returncode == 0, r.stderr
    assert {n: (tls / n).read_bytes() for n in pair} == pair
    assert_default_checks(d)
    # both gone: a new pair, key 0600 (or 0640 for server.user's group, see test_inbound_basic.py)
    (d / "postern.toml").unlink()
    for n in pair:
        (tls / n).unlink()
    r = init(d)
    assert r.returncode == 0, r.stderr
    assert (tls / "key.pem").read_bytes() != pair["key.pem"]
    assert (tls / "cert.pem").stat().st_mode & 0o777 == 0o644
    assert (tls / "key.pem").stat().st_mode & 0o007 == 0
    assert_default_checks(d)


def test_init_does_not_follow_a_dangling_key_symlink(tmpdir_postern):
    """O_EXCL: a symbolic link where the key goes (pointing anywhere) is not written through."""
    d = tmpdir_postern / "d"
    (d / "var/tls").mkdir(parents=True)
    target = tmpdir_postern / "elsewhere.pem"
    (d / "var/tls/key.pem").symlink_to(target)
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert not target.exists()
    assert tree(d) == ["var", "var/tls", "var/tls/key.pem"], tree(d)  # refused before writing anything


@pytest.mark.parametrize("link", ["postern.toml", "var/tls", "var/spool", "var/mail/localhost"])
def test_init_does_not_write_through_a_symlink_in_the_folder(tmpdir_postern, link):
    """Found by review: init followed symbolic links already in DIR: a dangling postern.toml was
    written through (a file created wherever it pointed), and a linked var/tls, var/spool or
    maildir got the key, or its target was chmodded (and chowned, as root). Now each is refused,
    before anything is written, and the target is untouched."""
    d = tmpdir_postern / "d"
    target = tmpdir_postern / "victim"
    if link == "postern.toml":
        d.mkdir()
    else:
        target.mkdir(mode=0o755)
        target.chmod(0o755)
        (d / link).parent.mkdir(parents=True)
    (d / link).symlink_to(target)
    before = tree(d)
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert str(d / link) in r.stderr, r.stderr
    assert tree(d) == before, tree(d)
    if link == "postern.toml":
        assert not target.exists()
    else:
        assert os.listdir(target) == [] and target.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("owner", ["writable", "other-user"])
def test_init_refuses_a_folder_others_could_swap(tmpdir_postern, owner):
    """Found by review of the symlink check: a folder already there that another user can
    write to (or owns) let that user swap var/tls for a link between init's check and its
    writes, so that init, as root, wrote the key and chowned the folder elsewhere. Each folder
    init writes in must be a real directory of its own, writable by no one else: refused, and
    nothing written."""
    d = tmpdir_postern / "d"
    (d / "var/spool").mkdir(parents=True)
    if owner == "writable":
        (d / "var").chmod(0o777)
        why = "is writable by others"
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to give a folder to another user")
        os.chown(d / "var/spool", pwd.getpwnam("nobody").pw_uid, -1)
        why = "belongs to uid"
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert why in r.stderr, r.stderr
    assert tree(d) == ["var", "var/spool"], tree(d)


def test_init_refuses_an_unusable_kept_pair(tmpdir_postern):
    """Found by review: a key and a certificate already there were kept even when they could
    not be loaded, and init said "wrote" a config that check-config and serve then refused.
    Now init refuses (exit 1, naming them) and writes nothing."""
    d = tmpdir_postern / "d"
    (d / "var/tls").mkdir(parents=True)
    (d / "var/tls/cert.pem").write_text("not a certificate\n")
    (d / "var/tls/key.pem").write_text("not a key\n")
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "cert.pem" in r.stderr and "cannot be used" in r.stderr, r.stderr
    assert tree(d) == ["var", "var/tls", "var/tls/cert.pem", "var/tls/key.pem"], tree(d)


def test_the_file_init_writes_serves_mail_over_starttls(tmpdir_postern):
    """`postern serve` on the embedded default as written, changed as little as the test needs:
    the listen port only (a free one instead of 2525). As root, server.user = "postern" (as
    written) needs that user, which scripts/install-deps.sh creates, and a folder it can reach;
    not as root, server.user is ignored (README), so nothing else changes."""
    d = tmpdir_postern / "d"
    assert init(d).returncode == 0
    cfg = d / "postern.toml"
    text = cfg.read_text()
    port = free_port()
    assert text.count('listen = ["127.0.0.1:2525"]') == 1
    cfg.write_text(text.replace('listen = ["127.0.0.1:2525"]', f'listen = ["127.0.0.1:{port}"]'))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postern")
        except KeyError:
            pytest.skip('server.user = "postern" as written, and there is no such user (make deps creates it)')
        for p in (d, d.parent):  # mkdtemp makes 0700 folders: let the server user reach its own
            os.chmod(p, 0o755)
    inst = Instance(d, port)
    inst.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.ehlo("client.test")
            assert c.has_extn("starttls"), c.esmtp_features
            c.starttls(context=tls_client_context())
            c.ehlo("client.test")
            c.sendmail("alice@example.test", ["bob@localhost"],
                       b"From: <alice@example.test>\r\nSubject: default config\r\n\r\nhello\r\n")
        msgs = inst.wait_maildir("bob")
        assert len(msgs) == 1 and b"Subject: default config" in msgs[0], msgs
        assert b"ESMTPS" in msgs[0]  # the Received header: it came over TLS (RFC 3848)
    finally:
        inst.stop()
