#!/usr/bin/env python3
"""load-vs-loadgen.py: hello-load against a C load generator, the referee, paired and
alternating, on the same C server in one run.

The referee is not part of this project and never a dependency of it: pass its folder
with --referee (required). It must hold, built, `bin/loadgen` (a non-blocking connect +
epoll generator taking `[-q] [-t THREADS] HOST PORT N C [TIME_LIMIT_S]` and printing a last
line `RESULT ok=.. errors=.. unfinished=.. rate=.. p50_us=.. p99_us=..`) and the C server
to measure on: `bin/c_iterative_server PORT BACKLOG` or `bin/c_epoll_server PORT THREADS`.

For each repeat a fresh server is started (with a warm-up), and at each concurrency the
two generators run back to back, in an order that alternates between repeats and
concurrencies, so that drift hits both alike. Each run makes N connections with 2
threads. The rate is the generator's own (ok / seconds); its CPU time is measured from
outside, the same way for both (wait4's rusage: user + system, all threads), and divided
by the ok connections. Reported: per concurrency the median and range of the paired
ratios hello-load / loadgen, and at the end a run of hello-load at 1,024 connections
against hello-server --model epoll.

Everything goes to 127.0.0.1; each run is bounded in count (N) and time (RUN_LIMIT);
only processes started here are stopped, by their pid.

    tools/load-vs-loadgen.py --referee DIR [--repeats 5] [--n 20000] [--concs 1,16,64,256]
        [--hello-load PATH] [--hello-server PATH] [--server c_iterative|c_epoll]

Build first: `cargo build --release -p hello-client -p hello-server`, and the referee's
programs. A run of the defaults takes about two minutes; run it on an otherwise idle
machine, and compare only ratios from one run. `cargo xtask bench` does not need this
script or the referee: it is how hello-load itself was checked.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

RUN_LIMIT = 60  # seconds, per generator run


def free_port():
    """A port nothing listens on now (the C servers take a port number, not 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port, timeout=10.0):
    """Waits (bounded) until 127.0.0.1:port accepts a connection."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def start(cmd):
    """Starts a server command with {port} filled in; returns (process, port)."""
    for _ in range(5):
        port = free_port()
        p = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if answers(port):
            return p, port
        stop(p)
    sys.exit(f"server {cmd} did not start")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def measured(cmd):
    """Runs cmd to its end (bounded); returns (stdout, cpu seconds from wait4's rusage)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + RUN_LIMIT + 20
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            sys.exit(f"{cmd} did not end")
        time.sleep(0.005)
    out = p.stdout.read().decode()
    p.stdout.close()
    p.stderr.close()
    return out, ru.ru_utime + ru.ru_stime


def loadgen(a, port, n, c):
    out, cpu = measured([a.loadgen, "-q", "-t", "2", "127.0.0.1", str(port), str(n), str(c),
                         str(RUN_LIMIT)])
    m = dict(re.findall(r"(\w+)=([\d.]+)", out.strip().splitlines()[-1]))
    ok = int(m["ok"])
    return {"rate": float(m["rate"]), "ok": ok, "errors": int(m["errors"]) + int(m["unfinished"]),
            "cpu_us": cpu * 1e6 / max(ok, 1), "p50": float(m["p50_us"]), "p99": float(m["p99_us"])}


def hello_load(a, port, n, c):
    out, cpu = measured([a.hello_load, "--json", "--threads", "2", "-n", str(n), "-c", str(c),
                         "127.0.0.1", str(port)])
    v = json.loads(out)
    ok = v["ok"]
    lat = v["latency_us"] or {}
    return {"rate": v["rate"], "ok": ok, "errors": v["failed"], "cpu_us": cpu * 1e6 / max(ok, 1),
            "p50": lat.get("p50", 0), "p99": lat.get("p99", 0), "self_cpu_us": v["cpu_us_per_exchange"]}


def spread(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--concs", default="1,16,64,256")
    ap.add_argument("--referee", required=True,
                    help="folder of the referee C load generator and C servers (bin/loadgen, ...)")
    ap.add_argument("--hello-load", default=os.path.join(here, "..", "target", "release", "hello-load"))
    ap.add_argument("--hello-server", default=os.path.join(here, "..", "target", "release", "hello-server"))
    ap.add_argument("--server", default="c_iterative", choices=["c_iterative", "c_epoll"])
    ap.add_argument("--big-n", type=int, default=100000, help="connections of the 1,024-client run")
    a = ap.parse_args()
    a.loadgen = os.path.join(a.referee, "bin", "loadgen")
    if not os.access(a.loadgen, os.X_OK):
        sys.exit(f"no referee load generator at {a.loadgen} (build it first)")
    server = {
        # The textbook server, with a backlog of 4096 instead of its 128, so that 256
        # simultaneous connects measure the generators and not SYN retransmits.
        "c_iterative": [os.path.join(a.referee, "bin", "c_iterative_server"), "{port}", "4096"],
        "c_epoll": [os.path.join(a.referee, "bin", "c_epoll_server"), "{port}", "1"],
    }[a.server]
    concs = [int(c) for c in a.concs.split(",")]
    rows = []
    print(f"# {a.server}, N={a.n}, {a.repeats} repeats, 2 threads each, {os.cpu_count()} cores", flush=True)
    print("rep\tC\tfirst\tlg_rate\thl_rate\trate_ratio\tlg_cpu_us\thl_cpu_us\tcpu_ratio\tlg_err\thl_err", flush=True)
    for rep in range(a.repeats):
        p, port = start(server)
        loadgen(a, port, 1000, 16)  # warm-up, not recorded
        for ci, c in enumerate(concs):
            first_lg = (rep + ci) % 2 == 0
            if first_lg:
                lg = loadgen(a, port, a.n, c)
                hl = hello_load(a, port, a.n, c)
            else:
                hl = hello_load(a, port, a.n, c)
                lg = loadgen(a, port, a.n, c)
            row = (rep + 1, c, "lg" if first_lg else "hl", lg, hl,
                   hl["rate"] / lg["rate"], hl["cpu_us"] / lg["cpu_us"])
            rows.append(row)
            print(f"{rep + 1}\t{c}\t{row[2]}\t{lg['rate']:.0f}\t{hl['rate']:.0f}\t{row[5]:.3f}\t"
                  f"{lg['cpu_us']:.1f}\t{hl['cpu_us']:.1f}\t{row[6]:.3f}\t{lg['errors']}\t{hl['errors']}",
                  flush=True)
        stop(p)
    print("\nC\trate hello-load/loadgen: median (range)\tCPU per connection hello-load/loadgen: median (range)\terrors lg/hl")
    for c in concs:
        rs = [r for r in rows if r[1] == c]
        errs = (sum(r[3]["errors"] for r in rs), sum(r[4]["errors"] for r in rs))
        print(f"{c}\t{spread([r[5] for r in rs])}\t{spread([r[6] for r in rs])}\t{errs[0]}/{errs[1]}")

    p, port = start([a.hello_server, "--model", "epoll", "--bind", "127.0.0.1", "{port}"])
    hl = hello_load(a, port, a.big_n, 1024)
    lg = loadgen(a, port, a.big_n, 1024)
    stop(p)
    print(f"\n1024 clients, hello-server --model epoll, N={a.big_n}: hello-load {hl['ok']} ok, "
          f"{hl['errors']} errors, {hl['rate']:.0f}/s, p50 {hl['p50']} us, p99 {hl['p99']} us, "
          f"{hl['cpu_us']:.1f} us CPU/conn; loadgen {lg['ok']} ok, {lg['errors']} errors, {lg['rate']:.0f}/s")


if __name__ == "__main__":
    main()
