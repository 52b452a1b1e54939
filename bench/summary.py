"""bench/summary.py - shared by bench/*/summarize.py: parse "RESULT <kind> ..." lines and print
Postern-vs-Postfix rows as "median [min–max] (n=R)" per server and the ratio of the medians
[min–max of the per-repetition ratios] (repetitions are paired: the two ran back to back)."""
import glob
import os
import statistics
import sys


def parse(path, kind, derive=None):
    """RESULT lines of `kind` as dicts; `derive(d)` may add computed keys (errors ignored)."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] != "RESULT" or parts[1] != kind:
                continue
            d = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            if derive:
                try:
                    derive(d)
                except (KeyError, ValueError, ZeroDivisionError):
                    pass
            rows.append(d)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def cell(vals, fmt, show_n=True):
    """"median [min–max] (n=R)" of the values that are not None; "—" if none."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "—"
    med = statistics.median(vals)
    n = f" (n={len(vals)})" if show_n else ""
    if len(vals) == 1:
        return f"{fmt.format(med)}{n}"
    return f"{fmt.format(med)} [{fmt.format(min(vals))}–{fmt.format(max(vals))}]{n}"


def scenarios(rows):
    scen = []
    for r in rows:
        if r.get("scenario") not in scen:
            scen.append(r.get("scenario"))
    return scen


def header(rows):
    n = sorted({r.get("n") for r in rows})
    print(f"N={','.join(x or '?' for x in n)} messages per run; cells: median [min–max] over repetitions")
    print()
    print("| scenario | metric | Postfix 3.7 | Postern | Postern/Postfix |")
    print("|---|---|---|---|---|")


def by_server(rows, scenario):
    by = {"postfix": {}, "postern": {}}
    for r in rows:
        if r.get("scenario") == scenario and r.get("server") in by:
            by[r["server"]][r.get("rep")] = r
    return by


def metric_rows(scenario, by, metrics):
    """One table row per (key, label, scale, format) metric."""
    for key, label, scale, fmt in metrics:
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
        print(f"| {scenario} | {label} | {cell(pf, fmt)} | {cell(pt, fmt)} | {ratio} |")


def main(here, kind, parse_file, table):
    """Summarize the files on the command line, or the newest results/<kind>-*.txt."""
    files = sys.argv[1:]
    if not files:
        files = sorted(glob.glob(os.path.join(here, "..", "results", f"{kind}-*.txt")))[-1:]
    if not files:
        sys.exit("summarize.py: no results file")
    for f in files:
        rows = parse_file(f)
        print(f"### {os.path.basename(f)}\n")
        if rows:
            table(rows)
        else:
            print(f"(no RESULT {kind} lines)\n")
