#!/usr/bin/python3
"""bench/reap.py CMD ARGS... - run CMD as a child subreaper: every process CMD leaves behind (an
orphan, such as the sink that the shared sink.sh starts in the background and leaves) is
reparented to this process instead of to PID 1, and reaped the moment it exits.

Why: the shared e2e.sh times a relay run until the sink exits (`sink.sh wait`: `kill -0 PID`
every 20 ms), and an exited process answers `kill -0` until its parent reaps it. On this
machine PID 1 (`process_api`) reaps orphaned zombies only every ~1.5-2 s (a `sleep 0.2` left by
a subshell stayed a zombie for 1.77 s), so every relay run was timed up to 2 s too long - the
same seconds added to Postfix's and Postern's runs, which shrank the ratio of the faster one.
Exit status: CMD's (128+N if a signal N ended it)."""
import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: reap.py CMD [ARGS...]")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"reap.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    child = subprocess.Popen(sys.argv[1:])
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # nothing left (cannot happen before CMD itself is reaped)
            sys.exit(1)
        except InterruptedError:
            continue
        if pid == child.pid:
            child.returncode = 0  # reaped here, not by Popen
            sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()
