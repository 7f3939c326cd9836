#!/usr/bin/env python3
"""bench/report.py OUT [SERVER...] — the reporting half of scripts/bench.

Reads OUT/raw.csv (one row a point and round, from bench/http_compare.sh),
OUT/syscalls.csv and OUT/meta.txt; writes OUT/summary.csv (medians, ratios
with their spread, cost per request), OUT/results.md (the tables, also
printed), and with gnuplot OUT/*.png: requests/s, average, p90 and p99
latency and CPU time per request against connections, a line per server
and path. Standard library only. Exits 1 if a configuration of the SERVERs
named (apache, epoll, flask, peer) has no numbers at some connection count
(the smoke test's check).

Ratios: for each round, kb's figure over the kernel's (or the peer's) from
that same round; the ratio printed is the median of those, the spread their
range (lowest to highest). A spread that includes 1.0 is marked "~" (not
significant: the rounds disagree on which is faster).

Cost per request: the whole machine's busy time (every core, /proc/stat)
during the point, minus the stack process's idle polling (its CPU time
less the time of its busy loop iterations, kbstat's busy_cycles), divided
by the requests. On a machine running other work that work is counted too.
"""
import csv
import os
import statistics
import subprocess
import sys

ORDER = {"apache": 0, "epoll": 1, "flask": 2, "peer": 3, "f64": 0, "f10k": 1, "page": 2,
         "kernel": 0, "kb": 1}
FILES = {"apache": ("f64", "f10k"), "epoll": ("f64",), "flask": ("page",),
         "peer": ("f64", "f10k")}


# a colour per server and file, the same on both paths
COLOURS = {("apache", "f64"): "#1f77b4", ("apache", "f10k"): "#17becf",
           ("epoll", "f64"): "#2ca02c", ("flask", "page"): "#ff7f0e",
           ("peer", "f64"): "#d62728", ("peer", "f10k"): "#9467bd"}


def key(t):
    return tuple(ORDER.get(x, 9) for x in t)


def expected(servers):
    for s in servers:
        for f in FILES[s]:
            for p in (("peer",) if s == "peer" else ("kernel", "kb")):
                yield s, f, p


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def load(out):
    rows = []
    with open(os.path.join(out, "raw.csv")) as f:
        for r in csv.DictReader(f):
            for k in ("round", "conns", "requests", "errors", "stack_busy_cycles", "tsc_hz"):
                r[k] = int(float(r[k] or 0))
            for k in ("seconds", "rps", "avg_us", "p50_us", "p90_us", "p99_us",
                      "machine_busy_s", "stack_cpu_s"):
                r[k] = float(r[k] or 0)
            n = max(r["requests"], 1)
            busy_s = r["stack_busy_cycles"] / r["tsc_hz"] if r["tsc_hz"] else 0.0
            idle_s = max(0.0, r["stack_cpu_s"] - busy_s) if r["tsc_hz"] else 0.0
            r["cpu_us_per_req"] = (r["machine_busy_s"] - idle_s) * 1e6 / n
            r["stack_cycles_per_req"] = r["stack_busy_cycles"] / n
            rows.append(r)
    return rows


def ratio(a, b):
    """Per-round ratios of a over b (lists of rows keyed by round)."""
    bb = {r["round"]: r["rps"] for r in b}
    rs = sorted(r["rps"] / bb[r["round"]] for r in a if bb.get(r["round"]))
    if not rs:
        return None
    return med(rs), rs[0], rs[-1]


def fmt_ratio(t):
    if not t:
        return "—"
    m, lo, hi = t
    mark = " ~" if lo <= 1.0 <= hi else ""
    return f"{m:.2f}x [{lo:.2f}–{hi:.2f}]{mark}"


def main():
    out = sys.argv[1]
    rows = load(out)
    meta = open(os.path.join(out, "meta.txt")).read() if os.path.exists(
        os.path.join(out, "meta.txt")) else ""
    series = {}  # (server, file, path) → conns → rows
    for r in rows:
        series.setdefault((r["server"], r["file"], r["path"]), {}).setdefault(
            r["conns"], []).append(r)
    conns = sorted({r["conns"] for r in rows})
    rounds = max((r["round"] for r in rows), default=0)
    groups = sorted({(s, f) for s, f, _ in series if s != "peer"}, key=key)
    want = set(expected(sys.argv[2:])) | set(series)
    missing = [f"{s} /{f} on {p} at {c}" for s, f, p in sorted(want, key=key)
               for c in conns
               if not any(r["requests"] > 0 for r in series.get((s, f, p), {}).get(c, []))]

    summary = []
    for (s, f, p), pts in sorted(series.items(), key=lambda i: key(i[0])):
        for c in conns:
            rs = pts.get(c, [])
            k = series.get((s, f, "kernel"), {}).get(c, [])
            pe = series.get(("peer", f, "peer"), {}).get(c, []) if s != "peer" else []
            vk = ratio(rs, k) if p == "kb" else None
            vp = ratio(rs, pe) if p != "peer" and pe else None
            summary.append({
                "server": s, "file": f, "path": p, "conns": c, "rounds": len(rs),
                "rps": med([r["rps"] for r in rs]), "avg_us": med([r["avg_us"] for r in rs]),
                "p50_us": med([r["p50_us"] for r in rs]), "p90_us": med([r["p90_us"] for r in rs]),
                "p99_us": med([r["p99_us"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
                "cpu_us_per_req": med([r["cpu_us_per_req"] for r in rs]),
                "stack_cycles_per_req": med([r["stack_cycles_per_req"] for r in rs]),
                "vs_kernel": vk, "vs_peer": vp})

    with open(os.path.join(out, "summary.csv"), "w", newline="") as fo:
        w = csv.writer(fo)
        w.writerow(["server", "file", "path", "conns", "rounds", "rps", "avg_us", "p50_us",
                    "p90_us", "p99_us", "error_rounds", "cpu_us_per_req",
                    "stack_busy_cycles_per_req", "vs_kernel", "vs_kernel_lo", "vs_kernel_hi",
                    "vs_kernel_significant", "vs_peer", "vs_peer_lo", "vs_peer_hi",
                    "vs_peer_significant"])
        for m in summary:
            extra = []
            for which in ("vs_kernel", "vs_peer"):
                t = m[which]
                extra += ([f"{t[0]:.3f}", f"{t[1]:.3f}", f"{t[2]:.3f}",
                           int(not t[1] <= 1.0 <= t[2])] if t else ["", "", "", ""])
            w.writerow([m["server"], m["file"], m["path"], m["conns"], m["rounds"],
                        f"{m['rps']:.0f}", f"{m['avg_us']:.1f}", f"{m['p50_us']:.1f}",
                        f"{m['p90_us']:.1f}", f"{m['p99_us']:.1f}", m["errors"],
                        f"{m['cpu_us_per_req']:.2f}", f"{m['stack_cycles_per_req']:.0f}"] + extra)

    by = {(m["server"], m["file"], m["path"], m["conns"]): m for m in summary}
    md = []
    md.append(f"Medians of {rounds} round(s); ratios are the median of the per-round "
              "ratios of requests/s, [lowest–highest]; `~` marks a spread that includes "
              "1.0 (not significant). CPU µs/req: the whole machine's busy time less the "
              "stack's idle polling, per request. Stack cycles/req: kbstackd's (or the "
              "peer's) busy-loop cycles per request. `(e)`: wrk saw errors in a round."
              + (" With fewer than 3 rounds the spread says little: a smoke run, not a "
                 "result." if rounds < 3 else "") + "\n")
    for s, f in groups:
        title = {"apache": "Apache httpd (event MPM)", "epoll": "Minimal epoll server (kbtest_httpd)",
                 "flask": "Flask (gunicorn gthread)"}.get(s, s)
        md.append(f"**{title}, /{'' if f == 'page' else f}**\n")
        has_peer = ("peer", f, "peer") in series
        hdr = ["conns", "kernel req/s", "kb req/s", "kb vs kernel"]
        if has_peer:
            hdr += ["peer req/s", "kb vs peer"]
        hdr += ["avg µs kernel / kb", "p90 µs kernel / kb", "p99 µs kernel / kb",
                "CPU µs/req kernel / kb", "stack cycles/req"]
        md.append("| " + " | ".join(hdr) + " |")
        md.append("|" + "---:|" * len(hdr))
        for c in conns:
            k, b = by.get((s, f, "kernel", c)), by.get((s, f, "kb", c))
            pe = by.get(("peer", f, "peer", c))
            if not k or not b:
                continue
            e = lambda m: " (e)" if m["errors"] else ""
            cells = [str(c), f"{k['rps']:.0f}{e(k)}", f"{b['rps']:.0f}{e(b)}",
                     fmt_ratio(b["vs_kernel"])]
            if has_peer:
                cells += [f"{pe['rps']:.0f}" if pe else "—", fmt_ratio(b["vs_peer"])]
            cells += [f"{k['avg_us']:.0f} / {b['avg_us']:.0f}",
                      f"{k['p90_us']:.0f} / {b['p90_us']:.0f}",
                      f"{k['p99_us']:.0f} / {b['p99_us']:.0f}",
                      f"{k['cpu_us_per_req']:.1f} / {b['cpu_us_per_req']:.1f}",
                      f"{b['stack_cycles_per_req']:.0f}"]
            md.append("| " + " | ".join(cells) + " |")
        md.append("")
    peers = sorted({f for s, f, _ in series if s == "peer"}, key=lambda f: ORDER.get(f, 9))
    if peers:
        md.append("**In-process peer (kbpeer_httpd: lwIP raw API + DPDK, one process)**\n")
        md.append("| file | conns | req/s | avg µs | p90 µs | p99 µs | CPU µs/req | peer cycles/req |")
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for f in peers:
            for c in conns:
                m = by.get(("peer", f, "peer", c))
                if m:
                    md.append(f"| /{f} | {c} | {m['rps']:.0f} | {m['avg_us']:.0f} | "
                              f"{m['p90_us']:.0f} | {m['p99_us']:.0f} | "
                              f"{m['cpu_us_per_req']:.1f} | {m['stack_cycles_per_req']:.0f} |")
        md.append("")
    sc = os.path.join(out, "syscalls.csv")
    if os.path.exists(sc):
        md.append("**System calls per request** (strace -c -f on the server's processes, "
                  "16 connections, 3 s; network = read/write/sendfile/recv/send/epoll/poll/"
                  "select/accept)\n")
        md.append("| server | path | all | network | largest |")
        md.append("|---|---|---:|---:|---|")
        with open(sc) as f:
            for r in csv.DictReader(f):
                md.append(f"| {r['server']} | {r['path']} | {r['all_per_request']} | "
                          f"{r['network_per_request']} | {r['largest']} |")
        md.append("")
    if missing:
        md.append("**No numbers for:** " + ", ".join(missing) + "\n")
    text = "\n".join(md)
    with open(os.path.join(out, "results.md"), "w") as fo:
        fo.write("```\n" + meta + "```\n\n" + text)
    print(meta)
    print(text)
    if series:
        plot(out, series, meta)
    return 1 if missing else 0


def plot(out, series, meta):
    """One PNG per measure; a line per server, file and path (gnuplot)."""
    names = []
    for (s, f, p), pts in sorted(series.items(), key=lambda i: key(i[0])):
        pts = {c: rs for c, rs in pts.items() if any(r["requests"] > 0 for r in rs)}
        if not pts:
            continue
        fn = f"{s}-{f}-{p}.dat"
        with open(os.path.join(out, fn), "w") as fo:
            fo.write("# conns rps avg_us p90_us p99_us cpu_us_per_req (medians)\n")
            for c in sorted(pts):
                rs = pts[c]
                fo.write(" ".join(str(x) for x in (
                    c, med([r["rps"] for r in rs]), med([r["avg_us"] for r in rs]),
                    med([r["p90_us"] for r in rs]), med([r["p99_us"] for r in rs]),
                    med([r["cpu_us_per_req"] for r in rs]))) + "\n")
        label = f"{s} /{'' if f == 'page' else f} {p}"
        # a colour per server and file; kernel dashed, kb solid, peer bold
        colour = COLOURS.get((s, f), "#7f7f7f")
        dash = {"kernel": 2, "kb": 1, "peer": 1}[p]
        width = 3 if p == "peer" else 2
        names.append((fn, label, dash, width, colour))
    stamp = next((l for l in meta.splitlines() if l.startswith("stamp:")), "stamp: ?")
    stamp = stamp[len("stamp:"):].strip().replace('"', "'")
    figs = [("rps", 2, "requests/s", "Requests per second", False),
            ("latency_avg", 3, "average latency (µs)", "Average latency", True),
            ("latency_p90", 4, "p90 latency (µs)", "90th percentile latency", True),
            ("latency_p99", 5, "p99 latency (µs)", "99th percentile latency", True),
            ("cpu_per_request", 6, "CPU µs per request (whole machine)",
             "Useful CPU time per request", True)]
    gp = []
    for name, col, ylabel, title, logy in figs:
        gp += ["set terminal pngcairo size 1100,700 font 'sans,10'",
               f"set output '{name}.png'",
               "set termoption noenhanced",
               f"set title \"{title} vs connections (wrk, keep-alive)\\n{stamp}\"",
               "set xlabel 'connections'", f"set ylabel '{ylabel}'",
               "set logscale x 2", "set key outside right top", "set grid",
               "set logscale y" if logy else "unset logscale y",
               "plot " + ", ".join(
                   f"'{fn}' using 1:{col} with linespoints dt {d} lw {w} lc rgb '{lc}' "
                   f"title '{lab}'" for fn, lab, d, w, lc in names)]
    with open(os.path.join(out, "figures.gp"), "w") as fo:
        fo.write("\n".join(gp) + "\n")
    try:
        subprocess.run(["gnuplot", "figures.gp"], cwd=out, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report: gnuplot failed ({e}); the CSV files stand", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
