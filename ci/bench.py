#!/usr/bin/env python3
"""Orchestrate `ci/bench.sh`: pollmux serve against the reference servers.

For every profile (a..e) the servers run interleaved (A B C D E, A B C D E, ...),
each run on a fresh server process, with `pollmux bench --json --server-pid`
measuring msgs/s, MiB/s, p99 latency, the server's CPU microseconds per
message and (profile e) its RSS per connection held. Server and bench are
pinned to different cores when there are two or more. A separate short pass
counts the server's system calls per echoed message with `strace -c -f`
(and, where `perf` works, with a `raw_syscalls` counter, which does not slow
the server down). The medians (with min and max) go into one table with each
figure's ratio to pollmux, printed and written to BENCHMARKS.md.

Standard library only; Linux only (it reads /proc).
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Everything after this line in BENCHMARKS.md is hand-written analysis that a
# new run keeps (the figures above it are replaced).
KEEP_MARKER = "<!-- analysis below: kept when ci/bench.sh rewrites this file -->"

# name -> argv after the binary (each prints `listening on ADDR`).
SERVERS = [
    ("pollmux", "pollmux", ["serve", "--host", "127.0.0.1", "--port", "0", "-q",
                            "--max-connections", "20000"]),
    ("mio", "ref-mio", ["--port", "0"]),
    ("tokio-ct", "ref-tokio-ct", ["--port", "0"]),
    ("tokio-mt", "ref-tokio-mt", ["--port", "0"]),
    ("threads", "ref-threads", ["--port", "0"]),
]

# The profiles; `count` is the fixed message count of the syscall
# pass. e has none: its idle connections cost only setup and teardown, which
# the marginal count cancels, so its per-message figure is that of its active
# load -- and 10,000 connections under ptrace take minutes.
PROFILES = {
    "a": dict(title="1 conn, 64 B ping-pong", args=["-c", "1", "-s", "64"], count=10000),
    "b": dict(title="50 conns, 1 KiB ping-pong", args=["-c", "50", "-s", "1024"], count=30000),
    "c": dict(title="500 conns, 1 KiB ping-pong", args=["-c", "500", "-s", "1024"], count=30000),
    "d": dict(title="10 conns, 64 KiB, depth 4", args=["-c", "10", "-s", "64k", "-d", "4"],
              count=2000, mib=True),
    "e": dict(title="10,000 idle + 100 active 1 KiB ping-pong",
              args=["-c", "100", "-s", "1024", "--idle", "10000"], count=None),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pin(cpu):
    """taskset prefix for one core, when there are two or more and taskset exists."""
    if os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """A server process started fresh for one run, stopped afterwards."""

    def __init__(self, argv, wrap=()):
        self.proc = subprocess.Popen(list(wrap) + argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.time() + 30
        buf = b""
        while time.time() < deadline and self.port is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            m = re.search(rb"listening on \S*:(\d+)\n", buf)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{argv[0]} printed no `listening on` line")

    def pid(self):
        return self.proc.pid

    def stop(self, pid=None):
        """SIGTERM (pollmux drains and exits; the references just exit), then SIGKILL."""
        target = pid or self.proc.pid
        try:
            os.kill(target, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def run_bench(bench, port, args, server_pid=None, timeout=300):
    cmd = pin(1) + [bench, "bench", "--host", "127.0.0.1", "--port", str(port), "--json"] + args
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    line = out.stdout.strip().splitlines()[-1:] or ["{}"]
    try:
        result = json.loads(line[0])
    except json.JSONDecodeError:
        result = {}
    if not result:
        raise RuntimeError(f"bench printed no JSON (exit {out.returncode}): {out.stderr.strip()}")
    result["exit"] = out.returncode
    return result


def strace_total(path):
    """Total calls from `strace -c` output."""
    with open(path) as f:
        for line in f:
            tokens = line.split()
            if tokens and tokens[-1] == "total":
                return int(tokens[3])
    raise RuntimeError(f"no total line in {path}")


def count_syscalls(tool, binary, argv, bench, args):
    """System calls the server makes for one bench run (setup included)."""
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as tmp:
        out = tmp.name
    try:
        if tool == "strace":
            wrap = pin(0) + ["strace", "-f", "-c", "-o", out, "--"]
            server = Server([binary] + argv, wrap=wrap)
            kids = children(server.pid())
            real = kids[0] if kids else server.pid()
            result = run_bench(bench, server.port, args)
            server.stop(pid=real)
            return strace_total(out), result
        # perf: count raw_syscalls:sys_enter of the whole process (all threads;
        # taskset execs the server, so the pid is the server's).
        server = Server(pin(0) + [binary] + argv)
        real = server.pid()
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter",
                                 "-p", str(real), "-o", out],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            result = run_bench(bench, server.port, args)
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=20)
            server.stop(pid=real)
        with open(out) as f:
            for line in f:
                if "raw_syscalls:sys_enter" in line:
                    return int(line.split(",")[0]), result
        raise RuntimeError("perf printed no count")
    finally:
        os.unlink(out)


def syscalls_per_message(tool, binary, argv, bench, profile):
    """Marginal system calls per echoed message: a run with N messages minus
    a run with one message per connection, so connection setup and teardown
    cancel out."""
    base_args = profile["args"] + ["--warmup", "0"]
    conns = int(profile["args"][profile["args"].index("-c") + 1])
    n = profile["count"]
    small, r0 = count_syscalls(tool, binary, argv, bench, base_args + ["--messages", str(conns)])
    large, r1 = count_syscalls(tool, binary, argv, bench, base_args + ["--messages", str(n)])
    ok = r0.get("ok") and r1.get("ok")
    return (large - small) / (n - conns), ok


def perf_works():
    if not shutil.which("perf"):
        return False
    probe = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and "not supported" not in probe.stderr


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return (statistics.median(values), min(values), max(values))


def fmt(stat, digits=1, spread=True):
    if stat is None:
        return "–"
    m, lo, hi = stat
    if not spread or lo == hi:
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def ratio(value, base):
    if value is None or base is None or base[0] in (0, None):
        return "–"
    return f"{value[0] / base[0]:.2f}×"


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--runs", type=int, default=3, help="runs per cell (median kept)")
    ap.add_argument("--duration", default="2", help="measured seconds per run")
    ap.add_argument("--warmup", default="0.5", help="warmup seconds per run")
    ap.add_argument("--profiles", default="abcde")
    ap.add_argument("--servers", default=",".join(s[0] for s in SERVERS))
    ap.add_argument("--no-syscalls", action="store_true", help="skip the syscall pass")
    ap.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"),
                    help="where to write the report ('-' for nowhere)")
    ap.add_argument("--command", default="ci/bench.sh", help="the command line, for the report")
    opts = ap.parse_args()

    bench = os.path.join(opts.bin, "pollmux")
    wanted = opts.servers.split(",")
    servers = [(n, os.path.join(opts.bin, b), a) for n, b, a in SERVERS if n in wanted]
    profiles = [p for p in opts.profiles if p in PROFILES]
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = loadavg()

    results = {}  # (profile, server) -> list of bench JSON objects
    loads = []  # 1-minute load average before each run
    for p in profiles:
        prof = PROFILES[p]
        for r in range(opts.runs):
            for name, binary, argv in servers:
                log(f"[{p}] run {r + 1}/{opts.runs}: {name}")
                loads.append(float(loadavg().split()[0]))
                # taskset execs the server: the pid is the server's own.
                server = Server(pin(0) + [binary] + argv)
                pid = server.pid()
                try:
                    res = run_bench(bench, server.port, prof["args"] + [
                        "--duration", opts.duration, "--warmup", opts.warmup], server_pid=pid)
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    log(f"  failed: {err}")
                    res = {"ok": False, "exit": -1}
                finally:
                    server.stop(pid=pid)
                results.setdefault((p, name), []).append(res)
                log(f"  {res.get('msgs_per_s', 0):,.0f} msg/s, p99 {res.get('latency_us_p99')} us, "
                    f"server {res.get('server_cpu_us_per_msg')} us/msg, "
                    f"bench {res.get('bench_cpu_us_per_msg')} us/msg, ok={res.get('ok')}")

    syscalls = {}  # (profile, server, tool) -> (per message, ok)
    tools = []
    if not opts.no_syscalls:
        if shutil.which("strace"):
            tools.append("strace")
        if perf_works():
            tools.append("perf")
    for tool in tools:
        for p in profiles:
            if PROFILES[p]["count"] is None or (tool == "perf" and p != "b"):
                continue
            for name, binary, argv in servers:
                log(f"[{p}] syscalls ({tool}): {name}")
                try:
                    syscalls[(p, name, tool)] = syscalls_per_message(
                        tool, binary, argv, bench, PROFILES[p])
                except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as err:
                    log(f"  failed: {err}")
                log(f"  {syscalls.get((p, name, tool))}")

    finished = datetime.datetime.now(datetime.timezone.utc)
    report = render(opts, profiles, servers, results, syscalls, tools, started, finished,
                    load_before, loadavg(), loads)
    print(report)
    if opts.output != "-":
        kept = ""
        try:
            with open(opts.output) as f:
                old = f.read()
            if KEEP_MARKER in old:
                kept = old[old.index(KEEP_MARKER):]
        except OSError:
            pass
        with open(opts.output, "w") as f:
            f.write(report + ("\n" + kept if kept else ""))
        log(f"wrote {opts.output}")
    failed = [k for k, runs in results.items() for r in runs if not r.get("ok")]
    return 1 if failed else 0


def cell_stats(runs, profile):
    idle = 10000 if "--idle" in PROFILES[profile]["args"] else 0
    conns = int(PROFILES[profile]["args"][PROFILES[profile]["args"].index("-c") + 1]) + idle

    def rss(r):
        if r.get("server_rss_kib") is None or r.get("server_rss_before_kib") is None:
            return None
        return (r["server_rss_kib"] - r["server_rss_before_kib"]) / conns

    return {
        "msgs": med([r.get("msgs_per_s") for r in runs]),
        "mib": med([r.get("mib_per_s") for r in runs]),
        "p99": med([r.get("latency_us_p99") for r in runs]),
        "cpu": med([r.get("server_cpu_us_per_msg") for r in runs]),
        "bench_cpu": med([r.get("bench_cpu_us_per_msg") for r in runs]),
        "rss": med([rss(r) for r in runs]) if idle else None,
        "faults": sum((r.get("connect_failures", 0) + r.get("resets", 0) + r.get("timeouts", 0)
                       + r.get("verification_failures", 0) + r.get("errors", 0))
                      for r in runs),
        "ok": all(r.get("ok") for r in runs),
        "idle_ok": all(r.get("idle_verified") == r.get("idle") for r in runs),
    }


def render(opts, profiles, servers, results, syscalls, tools, started, finished,
           load_before, load_after, loads):
    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w(f"Measured {started:%Y-%m-%d %H:%M} UTC, {(finished - started).total_seconds() / 60:.1f} "
      f"minutes, by `{opts.command}`.")
    w("")
    w(f"- Machine: {machine()}.")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    w(f"- Commit: `{commit}`; release build (`lto = true`, `codegen-units = 1`).")
    pinned = "server on core 0, bench on core 1 (`taskset`)" if pin(0) else "not pinned"
    w(f"- Pinning: {pinned}; every run starts a fresh server; {opts.runs} runs per cell, "
      f"interleaved (each profile runs the servers in turn, round after round); "
      f"{opts.duration} s measured after {opts.warmup} s warmup.")
    w(f"- Load average before / after: {load_before} / {load_after}.")
    cores = os.cpu_count() or 1
    if loads:
        w(f"- 1-minute load average sampled before each run: median "
          f"{statistics.median(loads):.1f}, max {max(loads):.1f}, on {cores} cores "
          f"(the server and the bench themselves account for up to 2).")
        if statistics.median(loads) > cores + 1:
            w("- **This run was disturbed by other load**: other processes wanted the "
              "cores the server and the bench were pinned to for much of it, which "
              "inflates latency percentiles and scatters throughput; ratios of CPU per "
              "message and syscalls per message are the least affected figures.")
    w("- **This machine is shared and noisy**: other people build and test on the same two "
      "cores while this runs. Absolute figures move from run to run; compare the ratios "
      "within one table, and look at min–max before trusting a difference under ~10%.")
    w("")
    w("Figures are medians with (min–max) over the runs. Ratios are *server / pollmux* for "
      "every column: above 1× means more msgs/s, more latency, more CPU, more syscalls, "
      "more memory than pollmux. CPU µs/msg is the server's user + system time from "
      "/proc/PID/stat over the measured phase divided by the messages echoed. "
      "Syscalls/msg is the marginal count per echoed message (a run of N messages minus a "
      "run of one message per connection, so setup and teardown cancel), "
      "from `strace -c -f` on the server" + (" and, for b, from a `perf stat -e "
      "raw_syscalls:sys_enter` counter that does not slow the server" if "perf" in tools else "")
      + " (not for e: its idle connections only add setup and teardown, which the "
      "marginal count cancels, and 10,000 connects under ptrace take minutes). "
      "strace slows the server, so an event loop sees larger batches (fewer waits per "
      "message) than without it. RSS/conn is the server's VmRSS with all connections open minus before the "
      "first connect, divided by the connections held (10,100 in e).")
    w("")
    header = ("| profile | server | msgs/s | × | MiB/s | × | p99 µs | × | CPU µs/msg | × | "
              "syscalls/msg | × | RSS KiB/conn | × | faults |")
    for p in profiles:
        w(f"## {p}. {PROFILES[p]['title']}")
        w("")
        w(header)
        w("|" + "---|" * 15)
        base = cell_stats(results.get((p, "pollmux"), []), p)
        base_sys = syscalls.get((p, "pollmux", "strace"))
        for name, _, _ in servers:
            st = cell_stats(results.get((p, name), []), p)
            sc = syscalls.get((p, name, "strace"))
            sc_txt = f"{sc[0]:.2f}" if sc else "–"
            sc_ratio = f"{sc[0] / base_sys[0]:.2f}×" if sc and base_sys and base_sys[0] else "–"
            w(f"| {p} | {name} | {fmt(st['msgs'], 0)} | {ratio(st['msgs'], base['msgs'])} "
              f"| {fmt(st['mib'], 1)} | {ratio(st['mib'], base['mib'])} "
              f"| {fmt(st['p99'], 0)} | {ratio(st['p99'], base['p99'])} "
              f"| {fmt(st['cpu'], 2)} | {ratio(st['cpu'], base['cpu'])} "
              f"| {sc_txt} | {sc_ratio} "
              f"| {fmt(st['rss'], 2)} | {ratio(st['rss'], base['rss'])} "
              f"| {st['faults']}{'' if st['idle_ok'] else ' (idle echo failed)'} |")
        w("")
        if p == "b" and "perf" in tools:
            figures = ", ".join(
                f"{name} {syscalls[(p, name, 'perf')][0]:.2f}"
                for name, _, _ in servers if (p, name, "perf") in syscalls)
            w(f"Syscalls per message on b counted with perf (no ptrace slowdown): {figures}.")
            w("")
        if p == "b":
            bc = cell_stats(results.get((p, "pollmux"), []), p)
            w(f"The bench itself (one thread) on b against pollmux: {fmt(bc['bench_cpu'], 2)} "
              f"CPU µs/msg, against the server's {fmt(bc['cpu'], 2)}.")
            w("")
    w("## Targets for pollmux")
    w("")
    w(targets(profiles, results, syscalls, tools))
    w("")
    w("## Reproduce")
    w("")
    w("```")
    w(opts.command)
    w("```")
    w("")
    w("`ci/bench.sh` builds pollmux and `refservers/` (tokio multi-thread and current-thread, "
      "mio single-thread, std thread-per-connection) in release mode, then runs "
      "`ci/bench.py`, which writes this file. `ci/bench.sh --help` lists the knobs "
      "(runs, duration, profiles, servers).")
    return "\n".join(lines) + "\n"


def targets(profiles, results, syscalls, tools):
    rows = ["| target | measured | met? |", "|---|---|---|"]

    def st(p, s):
        return cell_stats(results.get((p, s), []), p) if (p, s) in results else None

    def check(label, value_txt, ok):
        rows.append(f"| {label} | {value_txt} | {'yes' if ok else '**no**'} |")

    for p in "bce":
        if p not in profiles:
            continue
        pm = st(p, "pollmux")
        for ref in ("mio", "tokio-ct"):
            other = st(p, ref)
            if pm and other and pm["msgs"] and other["msgs"]:
                r = pm["msgs"][0] / other["msgs"][0]
                check(f"{p}: msgs/s ≥ 0.95× {ref}", f"{r:.2f}×", r >= 0.95)
    if "d" in profiles:
        pm, mio = st("d", "pollmux"), st("d", "mio")
        if pm and mio and pm["mib"] and mio["mib"]:
            r = pm["mib"][0] / mio["mib"][0]
            check("d: MiB/s ≥ 1.0× mio", f"{r:.2f}×", r >= 1.0)
    for p in "bc":
        if p not in profiles:
            continue
        pm, mio = st(p, "pollmux"), st(p, "mio")
        if pm and mio and pm["cpu"] and mio["cpu"]:
            check(f"{p}: server CPU µs/msg ≤ mio", f"{pm['cpu'][0]:.2f} vs {mio['cpu'][0]:.2f}",
                  pm["cpu"][0] <= mio["cpu"][0])
    for tool in tools:
        sc = syscalls.get(("b", "pollmux", tool))
        if sc:
            check(f"b: syscalls/msg ≤ 2.2 ({tool})", f"{sc[0]:.2f}", sc[0] <= 2.2)
    if "e" in profiles:
        pm = st("e", "pollmux")
        if pm and pm["rss"]:
            check("e: RSS per idle connection ≤ 0.5 KiB", f"{pm['rss'][0]:.2f} KiB",
                  pm["rss"][0] <= 0.5)
    if "b" in profiles:
        pm, mio = st("b", "pollmux"), st("b", "mio")
        if pm and mio and pm["p99"] and mio["p99"]:
            check("b: p99 latency ≤ mio", f"{pm['p99'][0]:.0f} vs {mio['p99'][0]:.0f} µs",
                  pm["p99"][0] <= mio["p99"][0])
        if pm and pm["bench_cpu"] and pm["cpu"]:
            check("b: one bench thread uses less CPU/msg than pollmux",
                  f"{pm['bench_cpu'][0]:.2f} vs {pm['cpu'][0]:.2f}",
                  pm["bench_cpu"][0] < pm["cpu"][0])
    faults = sum(cell_stats(runs, p)["faults"] for (p, _), runs in results.items())
    idle_ok = all(cell_stats(runs, p)["idle_ok"] for (p, _), runs in results.items())
    check("zero verification failures anywhere", f"{faults} faults", faults == 0)
    if "e" in profiles:
        check("all 10,000 idle connections echo after every run", "yes" if idle_ok else "no",
              idle_ok)
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
