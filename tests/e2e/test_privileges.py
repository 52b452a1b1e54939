"""tests/e2e/test_privileges.py - privilege drop (issue 5): `postern serve` started as root binds
its port and reads its key, then runs as server.user (the spool and maildirs handed to it);
without server.user it refuses to run as root unless server.allow_root = true.
These tests need root (the suite runs as root) and the `postern` system user that
scripts/install-deps.sh creates."""
import os
import pwd
import signal
import subprocess

import pytest

from conftest import POSTERN, relay_domain, wait_port, wait_until
from peers import ScriptedPeer, envelope_sender, make_ca, make_cert

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def ids_of(pid):
    """Real, effective, saved, filesystem uid and gid, and supplementary groups of `pid`."""
    status = open(f"/proc/{pid}/status").read().splitlines()
    get = lambda key: next(l.split(":", 1)[1].split() for l in status if l.startswith(key + ":"))
    return [int(x) for x in get("Uid")], [int(x) for x in get("Gid")], [int(x) for x in get("Groups")]


def searchable(path):
    """mkdtemp makes 0700 folders: let the server user reach the instance's folder."""
    for p in (path, path.parent):
        os.chmod(p, 0o755)


def start(inst):
    inst.start(wait=False)
    try:
        inst.proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        return None
    return inst.proc.returncode


def test_drops_to_server_user_and_keeps_working(make_instance):
    pw = pwd.getpwnam("postern")  # created by scripts/install-deps.sh
    inst = make_instance(start=False, server_extra='user = "postern"')
    searchable(inst.dir)
    inst.start()
    uids, gids, groups = ids_of(inst.proc.pid)
    assert uids == [pw.pw_uid] * 4 and gids == [pw.pw_gid] * 4, (uids, gids)
    assert groups == [pw.pw_gid] or groups == [], groups  # no root group, nothing inherited
    for task in os.listdir(f"/proc/{inst.proc.pid}/task"):  # every thread, not just the main one
        t_uids = [int(x) for x in next(l for l in open(f"/proc/{inst.proc.pid}/task/{task}/status")
                                       if l.startswith("Uid:")).split()[1:]]
        assert t_uids == [pw.pw_uid] * 4, (task, t_uids)
    inst.wait_log("running as user postern")
    # it still accepts, spools and delivers
    qid = inst.send("a@example.test", ["bob@localhost"])
    assert qid
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1
    for p in [inst.dir / "var/spool", *inst.dir.joinpath("var/mail/localhost").rglob("*")]:
        assert p.stat().st_uid == pw.pw_uid, p
    # the private key stays root's, readable by the server user's group only (init, as root,
    # gives it that group so that a SIGHUP reload can read it again), never by others
    key = inst.dir / "var/tls/key.pem"
    assert key.stat().st_uid == 0 and key.stat().st_gid == pw.pw_gid, key.stat()
    assert key.stat().st_mode & 0o777 == 0o640, oct(key.stat().st_mode)
    assert (inst.dir / "var/tls").stat().st_mode & 0o777 == 0o750
    # the control socket works for the administrator
    assert inst.queue_json("list") == []


def test_maildir_not_there_yet_is_created_and_handed_over(make_instance):
    """A hosted domain whose maildir does not exist yet (a new domain, before its first
    message): started as root with server.user, the server creates it (and a missing parent
    folder, root's and searchable), hands it over, starts, and delivers into it. Before, the
    check after the switch refused to start ("cannot use ...: No such file or directory"),
    although the same configuration ran without root."""
    pw = pwd.getpwnam("postern")
    domains = ('[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'
               '[[domain]]\nname = "new.test"\nmaildir = "var/mail/new.test"\n'
               '[[domain]]\nname = "deep.test"\nmaildir = "var/mail2/deep.test/"\n')
    inst = make_instance(start=False, server_extra='user = "postern"', domains=domains)
    searchable(inst.dir)
    fresh, parent = inst.dir / "var/mail/new.test", inst.dir / "var/mail2"
    deep = parent / "deep.test"
    assert not fresh.exists() and not parent.exists()
    assert start(inst) is None, inst.log()  # still running
    inst.wait_log("running as user postern")
    for d in (fresh, deep):
        st = d.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (pw.pw_uid, pw.pw_gid, 0o700), (d, st)
    st = parent.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o755), st
    assert inst.send("a@example.test", ["bob@new.test", "carol@deep.test", "dave@localhost"])
    assert len(inst.wait_maildir("bob", domain="new.test")) == 1
    assert len(inst.wait_maildir("dave")) == 1
    wait_until(lambda: len(list((deep / "carol/new").glob("*"))) == 1, what="carol@deep.test delivered")


def test_refuses_to_run_as_root_without_a_user(make_instance):
    inst = make_instance(start=False, server_extra="allow_root = false")
    assert start(inst) == 1
    log = inst.log()
    assert "refusing to run as root" in log and "server.user" in log, log
    # told to, it runs as root, and says so
    inst.write_config(inst.config.read_text().replace("allow_root = false", "allow_root = true"))
    inst.start()
    assert ids_of(inst.proc.pid)[0][1] == 0
    inst.wait_log("running as root (server.allow_root = true)")


def test_unknown_user_is_a_clear_error(make_instance):
    """A server.user that does not exist is a config error at its line, from check-config as
    from serve (exit 2): the check must not pass a config that serve then refuses."""
    inst = make_instance(start=False, server_extra='user = "nosuchuser-postern"')
    line = next(i for i, l in enumerate(inst.config.read_text().splitlines(), 1) if "nosuchuser-postern" in l)
    want = f"{inst.config}:{line}: server.user: no such user 'nosuchuser-postern'"
    r = subprocess.run([POSTERN, "check-config", "-c", str(inst.config)], capture_output=True, text=True)
    assert r.returncode == 2 and want in r.stderr, r.stderr
    assert start(inst) == 2
    assert want in inst.log(), inst.log()
    # Not root, serve would not switch users: check-config passes, with a warning at that line.
    searchable(inst.dir)
    for d in (inst.dir / "var", inst.dir / "var/tls"):
        os.chmod(d, 0o755)
    for f in (inst.config, inst.dir / "var/tls/cert.pem", inst.dir / "var/tls/key.pem"):
        os.chmod(f, 0o644)
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", POSTERN, "check-config",
                        "-c", str(inst.config)], capture_output=True, text=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert f"{inst.config}:{line}: warning: server.user: no such user 'nosuchuser-postern'" in r.stderr, r.stderr
    assert "serve started as root refuses this configuration" in r.stderr, r.stderr


def test_unreachable_spool_is_a_clear_error(make_instance):
    inst = make_instance(start=False, server_extra='user = "postern"')
    os.chmod(inst.dir, 0o700)  # the server user cannot get into the instance folder
    assert start(inst) == 1
    log = inst.log()
    assert "running as postern, cannot use" in log and "searchable" in log, log


def test_root_user_name_is_refused_by_check_config(make_instance):
    inst = make_instance(start=False, server_extra='user = "root"')
    r = subprocess.run([POSTERN, "check-config", "-c", str(inst.config)], capture_output=True, text=True)
    assert r.returncode == 2 and "server.user: must not be root" in r.stderr, r.stderr


def test_sighup_reload_after_the_drop_reads_the_key_again(make_instance):
    """SPEC §4: SIGHUP reloads the config and the certificate. The server runs as server.user
    by then: the key `postern init` wrote (group postern, 0640) loads again; a key left 0600
    root is warned about at start-up and the failed reload keeps the old configuration."""
    inst = make_instance(start=False, server_extra='user = "postern"')
    searchable(inst.dir)
    inst.start()
    inst.wait_log("running as user postern")
    assert "cannot read" not in inst.log()
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload" in [e["event"] for e in inst.events()], what="reload logged")
    assert "reload_failed" not in inst.log(), inst.log()[-2000:]
    inst.stop()

    key = inst.dir / "var/tls/key.pem"
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    inst.start()
    inst.wait_log("running as user postern")
    inst.wait_log(f"postern cannot read {key}")
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload_failed" in inst.log(), what="reload_failed logged")
    assert inst.send("a@example.test", ["bob@localhost"]), "the old configuration keeps serving"


def test_hand_over_never_follows_a_link(make_instance, tmp_path):
    """Root hands the spool and maildirs to the server user at start-up; a symbolic link planted
    there (a folder swapped for a link to /etc, say) must not hand out what it points to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim_dir = outside / "dir"
    victim_dir.mkdir()
    (victim_dir / "file").write_text("root's")
    victim = outside / "file"
    victim.write_text("root's")
    inst = make_instance(start=False, server_extra='user = "postern"')
    searchable(inst.dir)
    mail = inst.dir / "var/mail/localhost"
    (mail / "evil-file").symlink_to(victim)
    (mail / "evil-dir").symlink_to(victim_dir)
    os.link(victim, inst.dir / "var/spool/hard-link")  # a second name for a file elsewhere
    inst.start()
    inst.wait_log("running as user postern")
    for p in (victim, victim_dir, victim_dir / "file"):
        assert p.stat().st_uid == 0, f"{p} was handed to the server user through a link"


def test_hand_over_leaves_other_users_files_alone(make_instance):
    """Found by review: root handed every file and folder below a configured maildir (or the
    spool) to the server user, another user's included - a maildir pointed at a shared tree
    took bob's 0700 folder and its files. Now only what root owns is handed over; another
    user's file or folder is left to its owner (not descended into), and a warning counts
    them. The server's own folders are still handed over and mail is still delivered."""
    pw = pwd.getpwnam("postern")
    inst = make_instance(start=False, server_extra='user = "postern"')
    searchable(inst.dir)
    mail = inst.dir / "var/mail/localhost"
    other = mail / "someone"
    other.mkdir(mode=0o700)
    (other / "secret").write_text("not postern's")
    (mail / "their-file").write_text("not postern's either")
    for p in (other, other / "secret", mail / "their-file"):
        os.chown(p, 1234, 1234)
    inst.start()
    inst.wait_log("running as user postern")
    for p in (other, other / "secret", mail / "their-file"):
        st = p.stat()
        assert (st.st_uid, st.st_gid) == (1234, 1234), f"{p} was handed to the server user"
    inst.wait_log("2 file(s) or folder(s) under")  # the folder (not descended into) and the file
    assert mail.stat().st_uid == pw.pw_uid
    inst.send("a@example.test", ["bob@localhost"])
    assert len(inst.wait_maildir("bob")) == 1


@pytest.mark.parametrize("where", ["profile", "tls"])
def test_ca_file_readable_by_root_only_is_loaded_before_the_drop(make_instance, where):
    """README: a CA file is loaded at start-up, as root, like the key: the trust store the
    sessions verify with is that one, not a file opened again after the drop to server.user.
    A CA left 0600 root: mandatory TLS with verify = "ca" under the profile delivers, verified
    against it (before: every attempt deferred, "cannot load CA file ... Permission denied").
    profile: the profile's own ca_file; tls: tls.ca_file, the trust store of a profile without
    one (found by review: only the profiles' files were loaded before the drop)."""
    inst = make_instance(start=False, server_extra='user = "postern"')
    searchable(inst.dir)
    pki = inst.dir / "pki"
    pki.mkdir(mode=0o755)
    ca = make_ca(pki)
    leaf = make_cert(pki, ca, names=("internal.test",), stem="peer")
    os.chown(ca["ca"], 0, 0)
    os.chmod(ca["ca"], 0o600)
    ca_line = f'ca_file = "{ca["ca"]}"\n'
    profile = ('[[profile]]\nname = "partner"\nrecipient_domains = ["internal.test"]\n\n'
               '[profile.outbound]\ntls = "mandatory"\nverify = "ca"\n' + (ca_line if where == "profile" else ""))
    with ScriptedPeer(cert=leaf["cert"], key=leaf["key"]) as peer:
        cfg = inst.config.read_text()
        if where == "tls":
            cfg = cfg.replace("[tls]\n", "[tls]\n" + ca_line, 1)
            assert ca_line in cfg
        inst.write_config(cfg + "\n" + relay_domain("internal.test", f"127.0.0.1:{peer.port}") + "\n" + profile)
        inst.start()
        inst.wait_log("running as user postern")
        qid = inst.send("alice@sender.test", ["bob@internal.test"], "root-only CA")
        msgs = peer.wait_messages(1, timeout=10)
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent" and e["profile"] == "partner" and e["tls"] == "verified", e
        assert len(msgs) == 1 and msgs[0][3] is True, msgs
        assert envelope_sender(msgs[0][0]) == "alice@sender.test"


def test_existing_spool_under_a_folder_the_user_cannot_read_still_starts(make_instance):
    """Started as a non-root user, the spool's parent folder may be searchable but not readable
    (0711): it cannot be opened to be fsynced; an existing spool still starts (its name was made
    durable when it was made) and takes mail."""
    pw = pwd.getpwnam("postern")
    inst = make_instance(start=False)
    searchable(inst.dir)
    var = inst.dir / "var"
    for sub in ("spool", "mail/localhost"):
        (var / sub).mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(inst.dir):
        for n in [root, *(os.path.join(root, f) for f in dirs + files)]:
            os.chown(n, pw.pw_uid, pw.pw_gid)
    os.chown(var, 0, 0)
    os.chmod(var, 0o711)
    log = open(inst.log_path, "ab")
    proc = subprocess.Popen(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                             POSTERN, "serve", "-c", str(inst.config)], stdout=log, stderr=log)
    try:
        wait_port(inst.host, inst.port, timeout=10, proc=proc)
        assert proc.poll() is None, inst.log()
        qid = inst.send("a@example.test", ["bob@localhost"])
        assert qid
        assert len(inst.wait_maildir("bob")) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_no_thread_can_be_started_is_a_clear_error(make_instance):
    """What serve cannot handle itself (here: no thread can be created, RLIMIT_NPROC) ends with
    `postern: REASON` and exit 1, not std::terminate's abort (exit 134, a core dump)."""
    pw = pwd.getpwnam("postern")
    inst = make_instance(start=False)
    searchable(inst.dir)
    for root, dirs, files in os.walk(inst.dir):
        for n in [root, *(os.path.join(root, f) for f in dirs + files)]:
            os.chown(n, pw.pw_uid, pw.pw_gid)
    r = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                        "prlimit", "--nproc=1", POSTERN, "serve", "-c", str(inst.config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert any(l.startswith("postern: ") and "Resource temporarily unavailable" in l
               for l in r.stderr.splitlines()), r.stderr
    assert "terminate called" not in r.stderr, r.stderr
