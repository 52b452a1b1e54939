#!/usr/bin/python3
"""bench/table.py RUNDIR [--command TEXT] - issue 6's table from one bench/all.sh run.

RUNDIR is bench/results/all-DATE/: inbound-*.txt and relay-*.txt (one per repetition, in time
order: the k-th file is repetition k, whatever rep= it says inside), and all.txt (fsync ceiling,
latency and idle RESULT lines, each with rep=, and the run's header; sinkcap lines from
bench/relay/sink_ceiling.sh).  Prints Markdown:

  figure | Postern | Postfix | ratio | target | met?

Cells are "median [min–max]" over the repetitions (a single value when there is one).  A ratio
is Postern/Postfix: the ratio of the medians, then in brackets the range of the per-repetition
ratios (Postfix and Postern of one repetition ran back to back).  "met?" judges the median
against the issue's target and says in how many repetitions the paired figure met it.
"""
import argparse
import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summary  # noqa: E402  (bench/summary.py: RESULT-line parsing)

num = summary.num


def parse_all(path):
    head, end, rows = {}, {}, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if line.startswith("# bench/all.sh"):
                head = dict(p.split("=", 1) for p in parts if "=" in p)
                head["date"] = parts[2]
            elif line.startswith("# end"):
                end = dict(p.split("=", 1) for p in parts if "=" in p)
                end["date"] = parts[2]
            elif len(parts) > 2 and parts[0] == "RESULT":
                d = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
                d["kind"] = parts[1]
                rows.append(d)
    return head, end, rows


def parse_runs(rundir, kind):
    """{rep (1-based file order): {(server, scenario): row}}; relay rows get the injector's CPU
    from the RESULT load line that precedes them."""
    reps = {}
    for k, path in enumerate(sorted(glob.glob(os.path.join(rundir, f"{kind}-*.txt"))), 1):
        out, last_load = {}, None
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2 or parts[0] != "RESULT":
                    continue
                d = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
                if parts[1] == "load":
                    last_load = d
                elif parts[1] == kind:
                    if kind == "relay" and last_load:
                        d["client_cpu_s"] = last_load.get("client_cpu_s")
                    out[(d.get("server"), d.get("scenario"))] = d
        reps[k] = out
    return reps


def fmt(v, f):
    return "—" if v is None else f.format(v)


def cell(vals, f):
    return summary.cell(vals, f, show_n=False)


class Table:
    def __init__(self):
        self.lines = ["| figure | Postern | Postfix | ratio Postern/Postfix | target | met? |",
                      "|---|---|---|---|---|---|"]
        self.missed = []
        self.short = ""

    def row(self, figure, pt, pf, ratio="—", target="—", met="—"):
        self.lines.append(f"| {figure} | {pt} | {pf} | {ratio} | {target} | {met} |")
        if met.startswith("**no"):
            self.missed.append(f"{self.short}: {figure}" if self.short else figure)

    def section(self, title, short=""):
        self.short = short
        self.lines.append(f"| **{title}** | | | | | |")

    def paired(self, figure, pt, pf, f, target=None, scale=1.0, limit=None, unit=""):
        """pt, pf: {rep: value}.  target: (op, k) judged on the ratio: ('>=', 3) or ('<=', 0.2).
        limit: k, judged on Postern's own value (value <= k), e.g. a latency bound."""
        ptv = {r: (v * scale if v is not None else None) for r, v in pt.items()}
        pfv = {r: (v * scale if v is not None else None) for r, v in pf.items()}
        a = [v for v in ptv.values() if v is not None]
        b = [v for v in pfv.values() if v is not None]
        ratio, met, tgt = "—", "—", "—"
        if target:
            op, k = target
            tgt = f"≥ {k:g}× Postfix" if op == ">=" else f"≤ 1/{round(1 / k)} of Postfix"
        if a and b and statistics.median(b) > 0:
            rm = statistics.median(a) / statistics.median(b)
            pr = [ptv[r] / pfv[r] for r in ptv if ptv.get(r) is not None and pfv.get(r)]
            ratio = f"{rm:.2f}" + (f" [{min(pr):.2f}–{max(pr):.2f}]" if len(pr) > 1 else "")
            if target:
                ok = (lambda x: x >= k) if op == ">=" else (lambda x: x <= k)
                met = judge(ok(rm), sum(1 for x in pr if ok(x)), len(pr))
        elif target:
            met = "not measured"
        if limit is not None:
            tgt = f"Postern ≤ {limit:g}{unit}"
            met = judge(statistics.median(a) <= limit, sum(1 for x in a if x <= limit), len(a)) if a else "not measured"
        self.row(figure, cell(a, f), cell(b, f), ratio, tgt, met)


def judge(ok, n_ok, n):
    s = "yes" if ok else "**no**"
    if n > 1:
        s += f" ({n_ok}/{n} reps)"
    return s


def get(reps, key, server, scen, conv=num):
    return {r: conv(rows.get((server, scen), {}).get(key)) for r, rows in reps.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rundir")
    ap.add_argument("--command", default="bench/all.sh")
    a = ap.parse_args()
    head, end, rows = parse_all(os.path.join(a.rundir, "all.txt"))
    inb = parse_runs(a.rundir, "inbound")
    rel = parse_runs(a.rundir, "relay")
    fs = [r for r in rows if r["kind"] == "fsyncbench"]
    lat = [r for r in rows if r["kind"] == "latency"]
    idle = [r for r in rows if r["kind"] == "idle"]
    reps = int(head.get("REPS", "1"))
    t = Table()

    # --- throughput ---------------------------------------------------------------------------
    t.section("Throughput (msgs/s)", "throughput")
    pt_plain = get(inb, "msgs_per_s", "postern", "plain")
    pf_plain = get(inb, "msgs_per_s", "postfix", "plain")
    t.paired("Inbound accept, plaintext (smtp-source, 1 msg/session)", pt_plain, pf_plain, "{:.0f}", (">=", 3))
    ceil = {int(r["rep"]): num(r.get("ops_per_s")) for r in fs if r.get("dirsync") == "0"}
    ceil_d = {int(r["rep"]): num(r.get("ops_per_s")) for r in fs if r.get("dirsync") == "1"}
    thr = fs[0].get("threads", "8") if fs else "8"
    t.row(f"fsync group-commit ceiling: {thr} threads, 5 KB write+fsync+rename, one dir (ops/s)",
          cell(list(ceil.values()), "{:.0f}"), "(same disk)")
    t.row(f"— the same with the directory fsynced after each rename (ops/s, info)",
          cell(list(ceil_d.values()), "{:.0f}"), "(same disk)")
    pct_pt = [100 * pt_plain[r] / ceil[r] for r in pt_plain if pt_plain.get(r) and ceil.get(r)]
    pct_pf = [100 * pf_plain[r] / ceil[r] for r in pf_plain if pf_plain.get(r) and ceil.get(r)]
    met = "—"
    if pct_pt:
        met = judge(statistics.median(pct_pt) >= 80, sum(1 for x in pct_pt if x >= 80), len(pct_pt))
    t.row("Inbound plaintext rate as % of that ceiling (same repetition)",
          cell(pct_pt, "{:.0f}%"), cell(pct_pf, "{:.0f}%"), "—", "Postern ≥ 80%", met)
    t.paired("Inbound accept, STARTTLS (full TLS 1.3 handshake per session, ECDSA P-256)",
             get(inb, "msgs_per_s", "postern", "tls"), get(inb, "msgs_per_s", "postfix", "tls"), "{:.0f}", (">=", 2))
    t.paired("End-to-end relay, plaintext (delivered to the sink)",
             get(rel, "deliver_per_s", "postern", "plain"), get(rel, "deliver_per_s", "postfix", "plain"), "{:.0f}", (">=", 3))
    t.paired("End-to-end relay, TLS on both legs (delivered)",
             get(rel, "deliver_per_s", "postern", "tls"), get(rel, "deliver_per_s", "postfix", "tls"), "{:.0f}", (">=", 5))

    # --- CPU and memory -----------------------------------------------------------------------
    t.section("Server CPU per message (ms, user+sys of the whole process tree)", "CPU per message")
    for label, reps_, key, scen in (("inbound plaintext, per accepted msg", inb, "cpu_ms_per_msg", "plain"),
                                    ("inbound STARTTLS, per accepted msg", inb, "cpu_ms_per_msg", "tls"),
                                    ("relay plaintext, per delivered msg", rel, "cpu_ms_per_msg", "plain"),
                                    ("relay TLS both legs, per delivered msg", rel, "cpu_ms_per_msg", "tls")):
        t.paired(label, get(reps_, key, "postern", scen), get(reps_, key, "postfix", scen), "{:.2f}", ("<=", 0.2))
    t.section("Peak memory under the same load (MiB; RSS summed over the server's processes)", "memory")
    for label, reps_, scen in (("inbound plaintext", inb, "plain"), ("inbound STARTTLS", inb, "tls"),
                               ("relay plaintext", rel, "plain"), ("relay TLS both legs", rel, "tls")):
        t.paired(f"peak RSS, {label}", get(reps_, "peak_rss_kb", "postern", scen),
                 get(reps_, "peak_rss_kb", "postfix", scen), "{:.1f}", ("<=", 0.25), scale=1 / 1024)
    for label, reps_, scen in (("inbound plaintext", inb, "plain"), ("relay TLS both legs", rel, "tls")):
        t.paired(f"— peak PSS (shared pages split), {label} (info)", get(reps_, "peak_pss_kb", "postern", scen),
                 get(reps_, "peak_pss_kb", "postfix", scen), "{:.1f}", scale=1 / 1024)
    procs = get(inb, "peak_procs", "postfix", "plain")
    t.row("— processes (inbound plaintext)", cell(list(get(inb, "peak_procs", "postern", "plain").values()), "{:.0f}"),
          cell(list(procs.values()), "{:.0f}"))

    # --- idle ---------------------------------------------------------------------------------
    conns = idle[0].get("conns", "?") if idle else head.get("idle_conns", "?")
    t.section(f"{conns} idle connections held (Postern only)", "idle")
    rss = [num(r.get("rss_mib")) for r in idle]
    rss = [v for v in rss if v is not None]
    mb = [v * 1.048576 for v in rss]
    t.row(f"server RSS while holding {conns} idle connections (MiB)", cell(rss, "{:.1f}"), "not run", "—",
          "≤ 100 MB (95.4 MiB)",
          judge(statistics.median(mb) <= 100, sum(1 for v in mb if v <= 100), len(mb)) if mb else "not measured")
    for key, label in (("greet_p50_ms", "new client meanwhile: greeting, median (ms)"),
                       ("greet_max_ms", "new client meanwhile: greeting, max (ms)"),
                       ("txn_p50_ms", "new client meanwhile: whole transaction to 250, median (ms)"),
                       ("txn_max_ms", "new client meanwhile: whole transaction to 250, max (ms)")):
        v = [num(r.get(key)) for r in idle if num(r.get(key)) is not None]
        target, met = "—", "—"
        if key == "txn_max_ms":
            target = "< 100 ms"
            met = judge(statistics.median(v) < 100, sum(1 for x in v if x < 100), len(v)) if v else "not measured"
        t.row(label, cell(v, "{:.1f}"), "not run", "—", target, met)

    # --- latency ------------------------------------------------------------------------------
    frac = head.get("lat_fraction", "0.5")
    t.section(f"Latency, end of DATA → 250, at {frac} × each server's own plaintext peak "
              f"({head.get('lat_conc', '20')} sessions, messages back to back)", "latency")
    lv = lambda srv, key: {int(r["rep"]): num(r.get(key)) for r in lat if r.get("server") == srv}  # noqa: E731
    t.row("offered → achieved (msgs/s)",
          f"{cell(list(lv('postern', 'offered_per_s').values()), '{:.0f}')} → {cell(list(lv('postern', 'achieved_per_s').values()), '{:.0f}')}",
          f"{cell(list(lv('postfix', 'offered_per_s').values()), '{:.0f}')} → {cell(list(lv('postfix', 'achieved_per_s').values()), '{:.0f}')}")
    t.paired("p50 (ms)", lv("postern", "p50_ms"), lv("postfix", "p50_ms"), "{:.2f}")
    t.paired("p99 (ms)", lv("postern", "p99_ms"), lv("postfix", "p99_ms"), "{:.2f}", limit=20, unit=" ms")
    t.paired("max (ms)", lv("postern", "max_ms"), lv("postfix", "max_ms"), "{:.1f}")
    t.paired("server CPU per message at that rate (ms)", lv("postern", "server_cpu_ms_per_msg"),
             lv("postfix", "server_cpu_ms_per_msg"), "{:.2f}")

    # --- who used the CPU ---------------------------------------------------------------------
    t.section("CPU use during each measurement (% of one core; the machine has "
              f"{head.get('nproc', '2')} cores = {100 * int(head.get('nproc', '2'))}%)")

    def share(reps_, srv, scen, wall_key):
        s, c, b = [], [], []
        for rows_ in reps_.values():
            r = rows_.get((srv, scen))
            if not r or not num(r.get(wall_key)):
                continue
            w = num(r.get(wall_key))
            s.append(100 * (num(r.get("cpu_s")) or 0) / w)
            c.append(100 * (num(r.get("client_cpu_s")) or 0) / w)
            b.append(num(r.get("sys_busy_pct")))
        if not s:
            return "—"
        b = [x for x in b if x is not None]
        other = statistics.median(b) - statistics.median(s) - statistics.median(c) if b else None
        return (f"server {statistics.median(s):.0f}%, load generator {statistics.median(c):.0f}%, "
                f"machine {fmt(statistics.median(b) if b else None, '{:.0f}')}%"
                + (f" (other {other:.0f}%)" if other is not None else ""))

    for label, reps_, scen, wk in (("inbound plaintext", inb, "plain", "wall_s"), ("inbound STARTTLS", inb, "tls", "wall_s"),
                                   ("relay plaintext (other = sink, monitor, rest)", rel, "plain", "deliver_s"),
                                   ("relay TLS both legs (other = STARTTLS sink, monitor, rest)", rel, "tls", "deliver_s")):
        t.row(label, share(reps_, "postern", scen, wk), share(reps_, "postfix", scen, wk))

    def lshare(srv):
        rs = [r for r in lat if r.get("server") == srv]
        if not rs:
            return "—"
        m = lambda k: statistics.median([num(r.get(k)) or 0 for r in rs])  # noqa: E731
        return (f"server {m('server_cpu_pct'):.0f}%, load generator {m('client_cpu_pct'):.0f}%, "
                f"machine {m('sys_busy_pct'):.0f}%")
    t.row("latency runs", lshare("postern"), lshare("postfix"))

    # --- can the machine run the targets at all ----------------------------------------------
    ncpu = int(head.get("nproc", "2"))
    t.section(f"CPU the rate targets need on this machine (at each process's measured CPU per "
              f"message; {ncpu} cores = {100 * ncpu}%)")
    med = lambda v: statistics.median(v) if v else None  # noqa: E731

    def per_msg(reps_, srv, scen, cpu_key, n_key):
        out = []
        for rows_ in reps_.values():
            r = rows_.get((srv, scen), {})
            c, n = num(r.get(cpu_key)), num(r.get(n_key))
            if c is not None and n:
                out.append(1000 * c / n)
        return med(out)

    def need(rate, parts):
        """'X% (a A% + b B% ...)' of one core at `rate` msgs/s; parts: [(name, ms per msg)]."""
        if not rate or any(ms is None for _, ms in parts):
            return "not measured"
        pcts = [(name, rate * ms / 10) for name, ms in parts]
        total = sum(p for _, p in pcts)
        verdict = "more than the machine has" if total > 100 * ncpu else "fits"
        return (f"{total:.0f}% ({' + '.join(f'{name} {p:.0f}%' for name, p in pcts)}): {verdict}")

    if ceil:
        r80 = 0.8 * med([v for v in ceil.values() if v])
        t.row(f"inbound plaintext at 80% of the fsync ceiling ({r80:.0f} msgs/s)",
              need(r80, [("Postern", med([v for v in get(inb, "cpu_ms_per_msg", "postern", "plain").values() if v])),
                         ("smtp-source", per_msg(inb, "postern", "plain", "client_cpu_s", "ok"))]), "—")
    pf_tls = [v for v in get(inb, "msgs_per_s", "postfix", "tls").values() if v]
    if pf_tls:
        # A closed-loop TLS run keeps the 2 cores below 200% busy: say how busy this step got.
        busy = med([num(r.get("sys_busy_pct")) for rows_ in inb.values()
                    for (srv, scen), r in rows_.items() if srv == "postern" and scen == "tls"
                    and num(r.get("sys_busy_pct")) is not None])
        r2 = 2 * med(pf_tls)
        t.row(f"inbound STARTTLS at 2× Postfix ({r2:.0f} msgs/s)",
              need(r2, [("Postern", med([v for v in get(inb, "cpu_ms_per_msg", "postern", "tls").values() if v])),
                        ("TLS load generator", per_msg(inb, "postern", "tls", "client_cpu_s", "ok"))])
              + (f"; this step kept the machine {busy:.0f}% busy" if busy is not None else ""), "—")
    sc = [r for r in rows if r["kind"] == "sinkcap"]
    pf_rtls = [v for v in get(rel, "deliver_per_s", "postfix", "tls").values() if v]
    if sc:
        t.row(f"the relay's STARTTLS sink alone, fed over {sc[0].get('conc', '?')} reused TLS connections "
              "(msgs/s; CPU ms per msg: sink, feeder; machine busy)",
              f"{cell([num(r.get('msgs_per_s')) for r in sc], '{:.0f}')} msgs/s; "
              f"{cell([num(r.get('sink_cpu_ms_per_msg')) for r in sc], '{:.2f}')} ms, "
              f"{cell([num(r.get('client_cpu_ms_per_msg')) for r in sc], '{:.2f}')} ms; "
              f"{cell([num(r.get('sys_busy_pct')) for r in sc], '{:.0f}')}%", "(same sink)")
    if pf_rtls:
        r5 = 5 * med(pf_rtls)
        t.row(f"relay TLS both legs at 5× Postfix ({r5:.0f} msgs/s delivered)",
              need(r5, [("Postern", med([v for v in get(rel, "cpu_ms_per_msg", "postern", "tls").values() if v])),
                        ("TLS injector", per_msg(rel, "postern", "tls", "client_cpu_s", "n")),
                        ("sink", med([num(r.get("sink_cpu_ms_per_msg")) for r in sc if num(r.get("sink_cpu_ms_per_msg"))]))]),
              "—")

    # --- output -------------------------------------------------------------------------------
    print(f"## `make bench`: Postern vs Postfix {head.get('postfix', '?')}, {head.get('date', '?')}\n")
    print(f"Command: `{a.command}`; N={head.get('N', '?')} messages per throughput run, "
          f"{head.get('SIZE', '5120')}-byte bodies, {head.get('CONC', '20')} concurrent sessions, "
          f"{reps} repetition(s){' (QUICK mode: a short, noisy run)' if head.get('quick') == '1' else ''}. "
          f"Cells: median [min–max] over repetitions.\n")
    print("\n".join(t.lines))
    print()
    checks = []
    for name, reps_, okkey, extra in (("inbound", inb, "ok", "stored"), ("relay", rel, "delivered", "queue_left")):
        for rep, rows_ in sorted(reps_.items()):
            for (srv, scen), r in sorted(rows_.items()):
                n = r.get("n")
                if r.get(okkey) != n or (name == "inbound" and r.get("ok") != n) or (name == "relay" and r.get("accepted") != n):
                    checks.append(f"{name} {srv} {scen} rep {rep}: {r.get('accepted', r.get('ok'))} accepted, "
                                  f"{r.get(okkey)} {'stored' if name == 'inbound' else 'delivered'} of {n}")
    for r in lat:
        if r.get("rc") != "0":
            checks.append(f"latency {r.get('server')} rep {r.get('rep')}: {r.get('ok')} of {r.get('scheduled')} answered, "
                          f"{r.get('errors')} errors")
    print(f"- Runs: {sum(len(x) for x in inb.values())} inbound, {sum(len(x) for x in rel.values())} relay, "
          f"{len(lat)} latency, {len([r for r in rows if r['kind'] == 'sinkcap'])} sink, {len(idle)} idle, "
          f"{len(fs)} fsync. "
          + ("Every throughput run had all messages accepted (and delivered, in the relay)." if not checks
             else "Incomplete runs: " + "; ".join(checks) + "."))
    print(f"- Targets missed (median): {'; '.join(t.missed) if t.missed else 'none'}.")
    print(f"- Machine: {head.get('nproc', '?')} cores ({head.get('cpu', '?').replace('_', ' ')}), "
          f"{head.get('mem_gib', '?')} GiB, kernel {head.get('kernel', '?')}, spool file system {head.get('spool_fs', '?')}, "
          f"OpenSSL {head.get('openssl', '?')}. The load generator, the server, the monitor and whatever else runs "
          f"on the machine share the cores. Other load: at the start load average {head.get('loadavg_start', '?')}, "
          f"CPU pressure (PSI some, avg60) {head.get('psi_cpu_some60_start', '?')}%, I/O pressure "
          f"{head.get('psi_io_some60_start', '?')}%, processes over 20% of a core: {head.get('busy_procs_start', '?')}; "
          f"at the end {end.get('loadavg_end', '?')}, {end.get('psi_cpu_some60_end', '?')}%, "
          f"{end.get('psi_io_some60_end', '?')}%, {end.get('busy_procs_end', '?')}.")
    print(f"- Postern binary: {head.get('postern_bin', '?')} (sha256 {head.get('postern_sha256', '?')}, built "
          f"{head.get('postern_mtime', '?')}), checkout {head.get('commit', '?')}; copied before the run.")
    print(f"- Elapsed: {end.get('elapsed_s', '?')} s; failed steps: {end.get('failed_steps') or 'none'}. "
          f"Raw data: `{os.path.relpath(a.rundir, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))}/`.")


if __name__ == "__main__":
    main()
