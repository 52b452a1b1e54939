"""tests/e2e/test_bench_table.py - bench/table.py (issue 6's table) on the raw data of a committed
`make bench` run (bench/results/all-20261201-000731/): the row saying what CPU inbound STARTTLS
at 2x Postfix needs is recomputed here from the RESULT lines, and the whole table must be the
committed summary of that run (bench/results/summary-20261201-000731.md). No server is started.
"""
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "results" / "all-20261201-000731"
SUMMARY = ROOT / "bench" / "results" / "summary-20261201-000731.md"


def _table():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "table.py"), str(RUN),
                        "--command", "bench/all.sh (REPS=3 N=5000)"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _inbound(server, scenario):
    rows = []
    for f in sorted(RUN.glob("inbound-*.txt")):
        for line in f.read_text().splitlines():
            if line.startswith("RESULT inbound ") and f"server={server} " in line and f"scenario={scenario} " in line:
                rows.append(dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv))
    assert len(rows) == 3, rows
    return rows


def test_starttls_cpu_need_row_is_recomputed_from_the_raw_results():
    postfix = _inbound("postfix", "tls")
    postern = _inbound("postern", "tls")
    rate = 2 * statistics.median(float(r["msgs_per_s"]) for r in postfix)
    server_ms = statistics.median(float(r["cpu_ms_per_msg"]) for r in postern)
    client_ms = statistics.median(1000 * float(r["client_cpu_s"]) / float(r["ok"]) for r in postern)
    busy = statistics.median(float(r["sys_busy_pct"]) for r in postern)
    server_pct, client_pct = rate * server_ms / 10, rate * client_ms / 10
    out = _table()
    m = re.search(r"^\| inbound STARTTLS at 2× Postfix \((\d+) msgs/s\) \| (\d+)% \(Postern (\d+)% \+ "
                  r"TLS load generator (\d+)%\): (fits|more than the machine has); "
                  r"this step kept the machine (\d+)% busy \|", out, re.M)
    assert m, out
    assert int(m[1]) == round(rate)
    assert (int(m[3]), int(m[4])) == (round(server_pct), round(client_pct))
    assert int(m[2]) == round(server_pct + client_pct)
    assert m[5] == ("fits" if server_pct + client_pct <= 200 else "more than the machine has")
    assert int(m[6]) == round(busy)
    # This run's figures, as the README quotes them.
    assert (m[1], m[2], m[6]) == ("1343", "186", "177"), m[0]


def test_table_is_the_committed_summary_of_that_run():
    assert _table() == SUMMARY.read_text()
