#!/usr/bin/python3
"""bench/inbound/summarize.py [RESULTS_FILE ...] - Postern vs Postfix table from run.sh output.

Reads the "RESULT inbound server=... scenario=... rep=..." lines that bench/inbound/run.sh
appends to bench/results/inbound-DATE.txt (default: the newest such file) and prints, per
scenario and metric: Postfix and Postern as "median [min–max] (n=R)" over the repetitions,
and the ratio Postern/Postfix as "ratio of the medians [min–max of the per-repetition
ratios]" (repetitions are paired: Postfix and Postern ran back to back).
"""
import glob
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = [  # key, label, scale, format
    ("msgs_per_s", "msgs/s accepted", 1, "{:.0f}"),
    ("cpu_ms_per_msg", "server CPU ms/msg", 1, "{:.2f}"),
    ("peak_rss_kb", "peak RSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_pss_kb", "peak PSS MiB (sum over tree)", 1 / 1024, "{:.1f}"),
    ("peak_procs", "processes (peak)", 1, "{:.0f}"),
    ("client_cpu_ms_per_msg", "load client CPU ms/msg", 1, "{:.2f}"),
]


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] != "RESULT" or parts[1] != "inbound":
                continue
            d = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            try:
                d["client_cpu_ms_per_msg"] = str(float(d["client_cpu_s"]) * 1000 / float(d["n"]))
            except (KeyError, ValueError, ZeroDivisionError):
                pass
            rows.append(d)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def cell(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f"{fmt.format(med)} (n=1)"
    return f"{fmt.format(med)} [{fmt.format(min(vals))}–{fmt.format(max(vals))}] (n={len(vals)})"


def table(rows):
    scen = []
    for r in rows:
        if r.get("scenario") not in scen:
            scen.append(r.get("scenario"))
    n = sorted({r.get("n") for r in rows})
    print(f"N={','.join(x or '?' for x in n)} messages per run; cells: median [min–max] over repetitions")
    print()
    print("| scenario | metric | Postfix 3.7 | Postern | Postern/Postfix |")
    print("|---|---|---|---|---|")
    for s in scen:
        by = {"postfix": {}, "postern": {}}
        for r in rows:
            if r.get("scenario") == s and r.get("server") in by:
                by[r["server"]][r.get("rep")] = r
        for key, label, scale, fmt in METRICS:
            vals = {}
            for srv in by:
                vals[srv] = {rep: (num(r.get(key)) * scale if num(r.get(key)) is not None else None)
                             for rep, r in by[srv].items()}
            pf = [v for v in vals["postfix"].values() if v is not None]
            pt = [v for v in vals["postern"].values() if v is not None]
            ratio = "—"
            if pf and pt and statistics.median(pf) > 0:
                rm = statistics.median(pt) / statistics.median(pf)
                paired = [vals["postern"][k] / vals["postfix"][k] for k in vals["postern"]
                          if vals["postern"].get(k) is not None and vals["postfix"].get(k)]
                ratio = f"{rm:.2f}"
                if len(paired) > 1:
                    ratio += f" [{min(paired):.2f}–{max(paired):.2f}]"
            print(f"| {s} | {label} | {cell(pf, fmt)} | {cell(pt, fmt)} | {ratio} |")
        oks = {srv: " ".join(f"{r.get('ok')}/{r.get('stored')}" for _, r in sorted(by[srv].items())) or "—"
               for srv in by}
        print(f"| {s} | accepted/stored, per rep | {oks['postfix']} | {oks['postern']} | |")
    print()


def main():
    files = sys.argv[1:]
    if not files:
        found = sorted(glob.glob(os.path.join(HERE, "..", "results", "inbound-*.txt")))
        files = found[-1:]
    if not files:
        sys.exit("summarize.py: no results file")
    for f in files:
        rows = parse(f)
        print(f"### {os.path.basename(f)}\n")
        if rows:
            table(rows)
        else:
            print("(no RESULT inbound lines)\n")


if __name__ == "__main__":
    main()
