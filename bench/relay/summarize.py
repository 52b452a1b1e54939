#!/usr/bin/python3
"""bench/relay/summarize.py [RESULTS_FILE ...] - Postern vs Postfix relay table from run.sh output.

Reads the "RESULT relay server=... scenario=... rep=..." lines that bench/relay/run.sh appends
to bench/results/relay-DATE.txt (default: the newest such file) and prints, per scenario and
metric: Postfix and Postern as "median [min–max] (n=R)" over the repetitions, and the ratio
Postern/Postfix as "ratio of the medians [min–max of the per-repetition ratios]" (repetitions
are paired: Postfix and Postern ran back to back).  Then one check row per scenario
(accepted/delivered/queue left, per repetition) and the connection counts seen at the sink.
"""
import glob
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
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


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] != "RESULT" or parts[1] != "relay":
                continue
            d = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            try:
                d["msgs_per_conn"] = str(float(d["delivered"]) / float(d["sink_conns"]))
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
    notes = []
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


def main():
    files = sys.argv[1:]
    if not files:
        found = sorted(glob.glob(os.path.join(HERE, "..", "results", "relay-*.txt")))
        files = found[-1:]
    if not files:
        sys.exit("summarize.py: no results file")
    for f in files:
        rows = parse(f)
        print(f"### {os.path.basename(f)}\n")
        if rows:
            table(rows)
        else:
            print("(no RESULT relay lines)\n")


if __name__ == "__main__":
    main()
