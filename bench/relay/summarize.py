#!/usr/bin/python3
"""bench/relay/summarize.py [RESULTS_FILE ...] - Postern vs Postfix relay table from run.sh output.

Reads the "RESULT relay server=... scenario=... rep=..." lines that bench/relay/run.sh appends
to bench/results/relay-DATE.txt (default: the newest such file) and prints, per scenario and
metric: Postfix and Postern as "median [min–max] (n=R)" over the repetitions, and the ratio
Postern/Postfix as "ratio of the medians [min–max of the per-repetition ratios]" (repetitions
are paired: Postfix and Postern ran back to back).  Then one check row per scenario
(accepted/delivered/queue left, per repetition) and the connection counts seen at the sink.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import summary  # noqa: E402  (bench/summary.py)

METRICS = [  # key, label, scale, format
    ("deliver_per_s", "msgs/s delivered (end to end)", 1, "{:.0f}"),
    ("accept_per_s", "msgs/s accepted (injection)", 1, "{:.0f}"),
    ("cpu_ms_per_msg", "server CPU ms/msg", 1, "{:.2f}"),
    ("peak_rss_kb", "peak RSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_pss_kb", "peak PSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_procs", "processes (peak)", 1, "{:.0f}"),
    ("sys_busy_pct", "machine busy % (of 200)", 1, "{:.0f}"),
    ("msgs_per_conn", "msgs per connection to the sink", 1, "{:.1f}"),
]


def derive(d):
    d["msgs_per_conn"] = str(float(d["delivered"]) / float(d["sink_conns"]))


def parse(path):
    return summary.parse(path, "relay", derive)


def table(rows):
    summary.header(rows)
    notes = []
    for s in summary.scenarios(rows):
        by = summary.by_server(rows, s)
        summary.metric_rows(s, by, METRICS)

        def check(srv):
            out = []
            for _, r in sorted(by[srv].items()):
                c = f"{r.get('accepted')}/{r.get('delivered')}"
                if srv == "postern":
                    c += f" q={r.get('queue_after_e2e')}→{r.get('queue_left')}"
                else:
                    c += f" q={r.get('queue_left')}"
                out.append(c)
            return " ".join(out) or "—"

        print(f"| {s} | accepted/delivered, queue left, per rep | {check('postfix')} | {check('postern')} | |")

        def conns(srv):
            out = []
            for _, r in sorted(by[srv].items()):
                c = f"{r.get('sink_conns')}"
                if r.get("sink_tls_sessions", "0") != "0":
                    c += f" (TLS {r.get('sink_tls_sessions')})"
                if srv == "postfix":
                    c += f" reused={r.get('log_sent_on_reused_conn')}"
                out.append(c)
            return " ".join(out) or "—"

        print(f"| {s} | connections seen by the sink, per rep | {conns('postfix')} | {conns('postern')} | |")
        if any(r.get("sink_conns_exact") == "0" for srv in by for r in by[srv].values()):
            notes.append(f"{s}: connections to the sink are an estimate: the kernel's TCP ActiveOpens "
                         "counter over the run minus the N injection connections (smtp-sink itself only counts "
                         "sessions that ended, and the relays' cached connections were still open when it "
                         "exited). The TLS scenario's count comes from the STARTTLS front's log and is exact.")
    print()
    for x in notes:
        print("Note:", x)
    if notes:
        print()


if __name__ == "__main__":
    summary.main(HERE, "relay", parse, table)
