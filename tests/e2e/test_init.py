"""tests/e2e/test_init.py - `postern init DIR` and the TLS key pair it writes (SPEC §4).

init never overwrites a key or a certificate: an existing pair is kept, a lone key or a lone
certificate is refused (exit 1, naming the file), and only a missing pair is made anew.
"""
import subprocess

import pytest

from conftest import POSTERN


def init(d):
    return subprocess.run([POSTERN, "init", str(d)], capture_output=True, text=True, timeout=30)


def check_config(d):
    return subprocess.run([POSTERN, "check-config", "-c", str(d / "postern.toml")], capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def initialised(tmpdir_postern):
    d = tmpdir_postern / "d"
    r = init(d)
    assert r.returncode == 0, r.stderr
    return d


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


def test_init_keeps_an_existing_pair_and_makes_a_missing_one(initialised):
    d = initialised
    tls = d / "var/tls"
    pair = {n: (tls / n).read_bytes() for n in ("cert.pem", "key.pem")}
    (d / "postern.toml").unlink()
    r = init(d)
    assert r.returncode == 0, r.stderr
    assert {n: (tls / n).read_bytes() for n in pair} == pair
    assert check_config(d).returncode == 0
    # both gone: a new pair, key 0600 (or 0640 for server.user's group, see test_inbound_basic.py)
    (d / "postern.toml").unlink()
    for n in pair:
        (tls / n).unlink()
    r = init(d)
    assert r.returncode == 0, r.stderr
    assert (tls / "key.pem").read_bytes() != pair["key.pem"]
    assert (tls / "cert.pem").stat().st_mode & 0o777 == 0o644
    assert (tls / "key.pem").stat().st_mode & 0o007 == 0
    assert check_config(d).returncode == 0


def test_init_does_not_follow_a_dangling_key_symlink(tmpdir_postern):
    """O_EXCL: a symbolic link where the key goes (pointing anywhere) is not written through."""
    d = tmpdir_postern / "d"
    (d / "var/tls").mkdir(parents=True)
    target = tmpdir_postern / "elsewhere.pem"
    (d / "var/tls/key.pem").symlink_to(target)
    r = init(d)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert not target.exists()
