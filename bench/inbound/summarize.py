#!/usr/bin/python3
"""bench/inbound/summarize.py [RESULTS_FILE ...] - Postern vs Postfix table from run.sh output.

Reads the "RESULT inbound server=... scenario=... rep=..." lines that bench/inbound/run.sh
appends to bench/results/inbound-DATE.txt (default: the newest such file) and prints, per
scenario and metric: Postfix and Postern as "median [min–max] (n=R)" over the repetitions,
and the ratio Postern/Postfix as "ratio of the medians [min–max of the per-repetition
ratios]" (repetitions are paired: Postfix and Postern ran back to back).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import summary  # noqa: E402  (bench/summary.py)

METRICS = [  # key, label, scale, format
    ("msgs_per_s", "msgs/s accepted", 1, "{:.0f}"),
    ("cpu_ms_per_msg", "server CPU ms/msg", 1, "{:.2f}"),
    ("peak_rss_kb", "peak RSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_pss_kb", "peak PSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_procs", "processes (peak)", 1, "{:.0f}"),
    ("client_cpu_ms_per_msg", "load client CPU ms/msg", 1, "{:.2f}"),
]


def derive(d):
    d["client_cpu_ms_per_msg"] = str(float(d["client_cpu_s"]) * 1000 / float(d["n"]))


def parse(path):
    return summary.parse(path, "inbound", derive)


def table(rows):
    summary.header(rows)
    for s in summary.scenarios(rows):
        by = summary.by_server(rows, s)
        summary.metric_rows(s, by, METRICS)
        oks = {srv: " ".join(f"{r.get('ok')}/{r.get('stored')}" for _, r in sorted(by[srv].items())) or "—"
               for srv in by}
        print(f"| {s} | accepted/stored, per rep | {oks['postfix']} | {oks['postern']} | |")
    print()


if __name__ == "__main__":
    summary.main(HERE, "inbound", parse, table)
