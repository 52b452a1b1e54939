"""tests/e2e/test_thread_names.py - the server names its threads (runtime/thread_name.hpp): the
session loops `session-N`, the committer `committer`, each disk-pool thread `disk`, the control
socket's reader `control`; the main loop keeps the process's name. That is what `top -H`,
`ps -L` and `bench/profile.sh stat` (perf stat --per-thread) show."""
import collections
import pathlib
import smtplib


def _thread_names(pid):
    names = collections.Counter()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except FileNotFoundError:  # a thread that has just ended
            pass
    return names


def test_threads_are_named_by_role(make_instance):
    inst = make_instance(server_extra="threads = 3\n")
    with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:  # the committer and disk threads at work
        s.sendmail("alice@example.test", ["bob@localhost"], b"Subject: names\r\n\r\nhello\r\n")
    names = _thread_names(inst.proc.pid)
    assert names["session-0"] == 1 and names["session-1"] == 1 and names["session-2"] == 1, names
    assert names["committer"] == 1, names
    assert names["disk"] == 24, names
    assert names["control"] == 1, names
    main = (pathlib.Path(f"/proc/{inst.proc.pid}") / "comm").read_text().strip()
    assert main not in ("session-0", "committer", "disk", "control") and names[main] >= 1, (main, names)


def test_no_committer_thread_with_a_sync_per_file(make_instance):
    inst = make_instance(spool_extra='sync = "file"\n')
    names = _thread_names(inst.proc.pid)
    assert names["committer"] == 0 and names["disk"] == 24, names
