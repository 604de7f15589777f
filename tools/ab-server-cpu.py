#!/usr/bin/env python3
"""ab-server-cpu.py: server CPU per hello connection, two hello-server builds paired.

    tools/ab-server-cpu.py --a OLD/hello-server --b NEW/hello-server --load target/release/hello-load \
        --model epoll --count 100000 --rounds 16

Each round starts each build afresh on 127.0.0.1 port 0 (its start-up line gives the
port), warms it with 500 connections, then runs `hello-load -n COUNT -c 16` against it
and reads the server's CPU time before and after: for a one-process model every thread's
time on a CPU from /proc/PID/task/*/schedstat (nanoseconds: no 10 ms tick rounding); for
the fork model utime + stime + cutime + cstime from /proc/PID/stat (its reaped children
count). The two builds run back to back in an order that alternates between rounds, so
that drift on a shared machine hits both alike. Printed: each run, each round's ratio
B / A, and the median, minimum and maximum of the ratios. Loopback only; every run is
bounded (hello-load's own limits, and a timeout here).
"""
import argparse
import os
import statistics
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def cpu_threads(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def cpu_with_children(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def one(server, load, model, count, cpu):
    srv = subprocess.Popen(
        [server, "0", "--bind", "127.0.0.1", "--model", model],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        port = srv.stdout.readline().strip().rsplit(":", 1)[1]
        subprocess.run([load, "-n", "500", "-c", "16", "127.0.0.1", port], capture_output=True, timeout=120)
        before = cpu(srv.pid)
        run = subprocess.run([load, "-n", str(count), "-c", "16", "127.0.0.1", port], capture_output=True, timeout=600)
        after = cpu(srv.pid)
        if run.returncode != 0:
            raise SystemExit(f"hello-load failed against {server}: {run.stderr.decode()[-500:]}")
        return (after - before) / count * 1e6
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="the reference hello-server")
    p.add_argument("--b", required=True, help="the hello-server compared with it")
    p.add_argument("--load", required=True, help="hello-load")
    p.add_argument("--model", default="epoll")
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--rounds", type=int, default=16)
    args = p.parse_args()
    cpu = cpu_with_children if args.model == "fork" else cpu_threads
    ratios = []
    for i in range(args.rounds):
        order = [("a", args.a), ("b", args.b)]
        if i % 2:
            order.reverse()
        got = {}
        for name, server in order:
            got[name] = one(server, args.load, args.model, args.count, cpu)
            print(f"round {i} {name}: {got[name]:.2f} us CPU/connection", flush=True)
        ratios.append(got["b"] / got["a"])
        print(f"round {i} ratio b/a {ratios[-1]:.3f}", flush=True)
    print(
        f"{args.model}: b/a median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} rounds"
    )


if __name__ == "__main__":
    main()
