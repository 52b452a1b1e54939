"""tests/e2e/test_control_socket.py - the control socket `<spool.dir>/control.sock` is 0600 from
the moment it exists, whatever the umask `postern serve` was started with and whatever the mode
of an existing spool directory (runtime/control_server.cpp); a spool.dir too long for the
socket's path is a configuration error at its line.

The moment between bind() and the chmod that follows it cannot be seen from outside, so the
real binary runs with a small LD_PRELOAD shim (compiled here with gcc into the test's temporary
directory; nothing in the product) that records the mode of every UNIX socket right after a
successful bind().
"""
import os
import shutil
import stat
import subprocess

import pytest

from conftest import POSTERN, wait_port

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int bind(int fd, const struct sockaddr *sa, socklen_t len) {
    int (*real)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int r = real(fd, sa, len);
    const char *log = getenv("BIND_MODE_LOG");
    if (r == 0 && log && sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        struct stat st;
        if (un->sun_path[0] && lstat(un->sun_path, &st) == 0) {
            FILE *f = fopen(log, "a");
            if (f) {
                fprintf(f, "%o %s\n", (unsigned)(st.st_mode & 07777), un->sun_path);
                fclose(f);
            }
        }
    }
    return r;
}
"""


@pytest.fixture
def bind_mode_shim(tmp_path):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    if os.environ.get("POSTERN_SANITIZED"):
        pytest.skip("LD_PRELOAD shim and the ASan runtime do not mix here")
    src = tmp_path / "bind_mode.c"
    src.write_text(SHIM)
    so = tmp_path / "bind_mode.so"
    r = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(so), str(src), "-ldl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return so


def proc_umask(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return None


def test_control_socket_is_0600_from_bind_on_under_umask_000(make_instance, bind_mode_shim, tmp_path):
    inst = make_instance(start=False)
    spool = inst.dir / "var/spool"
    os.chmod(spool, 0o755)  # an existing spool keeps its own mode: it does not shield the socket
    log = tmp_path / "bind_modes.log"
    env = dict(os.environ, LD_PRELOAD=str(bind_mode_shim), BIND_MODE_LOG=str(log))
    inst.logf = open(inst.log_path, "ab")
    inst.proc = subprocess.Popen([POSTERN, "serve", "-c", str(inst.config)], stdout=inst.logf, stderr=inst.logf,
                                 cwd=inst.dir, env=env, umask=0)
    wait_port(inst.host, inst.port, proc=inst.proc)
    sock = spool / "control.sock"
    seen = [l.split(" ", 1) for l in log.read_text().splitlines()]
    modes = [int(m, 8) for m, path in seen if os.path.realpath(path) == os.path.realpath(sock)]
    assert modes, f"no bind() of {sock} seen: {seen}"
    assert modes == [0o600], f"control socket mode right after bind(): {[oct(m) for m in modes]}"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    # the restrictive umask was only for the bind: the server runs on with the one it was given
    assert proc_umask(inst.proc.pid) in (0, None)
    r = subprocess.run([POSTERN, "queue", "list", "-c", str(inst.config)], capture_output=True, text=True,
                       timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr


def test_spool_dir_too_long_for_the_socket_is_a_config_error(make_instance):
    """`<spool.dir>/control.sock` must fit in a UNIX socket address (107 bytes): a longer
    spool.dir is reported by check-config at its line (exit 2), and `serve` and `queue` refuse
    the file with the same line. Before, check-config accepted it and serve then failed to bind
    its control socket (exit 1); a spool.dir 1 byte shorter still works."""
    inst = make_instance(start=False)
    base = str(inst.dir / "var")
    text = inst.config.read_text()

    def with_spool(length):
        spool = base + "/" + "s" * (length - len(base) - 1)
        assert len(spool) == length
        lines = text.replace('dir = "var/spool"', f'dir = "{spool}"').splitlines()
        return spool, lines.index(f'dir = "{spool}"') + 1, "\n".join(lines) + "\n"

    spool, line, too_long = with_spool(95)  # + "/control.sock": 108 bytes
    inst.write_config(too_long)
    expected = (f"{inst.config}:{line}: spool.dir: the control socket {spool}/control.sock would be 108 bytes "
                f"long, over the 107 a UNIX socket's path can have: choose a shorter spool directory")
    for cmd in (["check-config"], ["serve"], ["queue", "list"]):
        r = subprocess.run([POSTERN, *cmd, "-c", str(inst.config)], capture_output=True, text=True, timeout=30,
                           cwd="/")
        assert r.returncode == 2, (cmd, r)
        assert expected in r.stderr.splitlines(), (cmd, r.stderr)

    spool, _, fits = with_spool(94)  # 107 bytes: the longest that works
    inst.write_config(fits)
    r = subprocess.run([POSTERN, "check-config", "-c", str(inst.config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    inst.start()
    assert stat.S_ISSOCK(os.stat(spool + "/control.sock").st_mode)
    r = subprocess.run([POSTERN, "queue", "list", "-c", str(inst.config)], capture_output=True, text=True,
                       timeout=30, cwd="/")
    assert r.returncode == 0 and r.stdout == "-- 0 messages\n", r
