"""Where a bench's processes spent their time while the machine was busy: each second, the
on-CPU time and the run-queue wait (runnable, but no core free) of every thread of the named
processes (Linux's /proc/PID/task/TID/schedstat). /proc/stat's busy time is no use here: with a
tickless kernel, busy spells shorter than a tick between idle ones are never counted. A delta
that crosses three processes waits for a core at each hop; when their threads wait as long as
they run, the latency is the machine's queueing, not one process's code.

  cpu_wait.py sample OUT NAME=PID...   samples every second into OUT (JSON lines) until killed,
                                       or every PID ends
  cpu_wait.py report OUT START         prints it by 10 s from START (epoch seconds)
"""
import json
import os
import sys
import time


def threads(pid):
    """[on-CPU ns, run-queue wait ns, name] by thread id, over the threads of pid; None once it
    has ended."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    by_tid = {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue  # a thread that ended between the listing and the read
        by_tid[tid] = [int(fields[0]), int(fields[1]), name]
    return by_tid


def grown(before, after):
    """(on-CPU ns, wait ns) that the threads of `after` (by thread id) added since `before`: a
    thread new since then counts whole, and one that ended is not taken off (a sum over the live
    threads shrank when a process's threads ended, as a driver's do as it finishes)."""
    cpu = wait = 0
    for tid, (c, w, _) in after.items():
        c0, w0, _ = before.get(tid, (0, 0, None))
        cpu += c - c0
        wait += w - w0
    return cpu, wait


def sample(out, named):
    with open(out, "w") as f:
        while True:
            row = {"t": time.time(), "procs": {}}
            for name, pid in named:
                got = threads(pid)
                if got is not None:
                    row["procs"][name] = got
            f.write(json.dumps(row) + "\n")
            f.flush()
            if not row["procs"]:
                return
            time.sleep(1)


def cpu_by_thread_name(out, name):
    """The process `name`'s on-CPU seconds by thread name at its last sample in OUT ({} if none)."""
    last = {}
    for line in open(out):
        got = json.loads(line)["procs"].get(name)
        if got is not None:
            last = got
    by_name = {}
    for cpu, _, thread in last.values():
        by_name[thread] = by_name.get(thread, 0) + cpu / 1e9
    return by_name


def report(out, start):
    rows = [json.loads(line) for line in open(out)]
    windows = {}
    for a, b in zip(rows, rows[1:]):
        if b["t"] < start:
            continue
        w = windows.setdefault(int((b["t"] - start) // 10) * 10, {"wall": 0.0, "procs": {}})
        w["wall"] += b["t"] - a["t"]
        for name, got in b["procs"].items():
            if name in a["procs"]:
                cpu, wait = grown(a["procs"][name], got)
                p = w["procs"].setdefault(name, [0, 0])
                p[0] += cpu / 1e9
                p[1] += wait / 1e9
    if not windows:
        return
    cores = os.cpu_count() or 1
    totals = {}
    parts = []
    for at in sorted(windows):
        w = windows[at]
        procs = ", ".join(f"{name} {cpu:.1f}/{wait:.1f}" for name, (cpu, wait) in w["procs"].items())
        for name, (cpu, wait) in w["procs"].items():
            t = totals.setdefault(name, [0, 0])
            t[0] += cpu
            t[1] += wait
        used = sum(cpu for cpu, _ in w["procs"].values())
        parts.append(f"{at}-{at + 10} s {100 * used / max(w['wall'] * cores, 1e-9):.0f}% of the cores, {procs}")
    print("threads waiting for a core, by 10 s (the share of the cores these processes used; each one's threads: "
          "s on a CPU / s runnable but waiting): " + "; ".join(parts))
    print("  over the run: " + ", ".join(
        f"{name} {cpu:.1f} s on a CPU, {wait:.1f} s waiting for one ({100 * wait / max(cpu, 1e-9):.0f}% of it)"
        for name, (cpu, wait) in totals.items()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["sample"] and len(sys.argv) > 2:
        sample(sys.argv[2], [tuple(a.split("=", 1)) for a in sys.argv[3:]])
    elif sys.argv[1:2] == ["report"] and len(sys.argv) == 4:
        report(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(__doc__)
