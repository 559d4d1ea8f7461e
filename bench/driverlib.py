"""Shared helpers of the bench drivers that start a server of their own (bench/code_driver.py,
bench/health_under_load_driver.py), and of the reports that read a server's /metrics
(bench/streams.sh)."""
from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import IO, Callable


def shut_down(server: subprocess.Popen, upstream, server_log: IO, work: str | Path, *,
              timeout: float, keep: bool, say: Callable[[str], None]) -> None:
    """The end of such a driver: SIGTERM the server (SIGKILL when it has not exited within
    `timeout` s), stop the scripted upstream, close the server's log, and remove the work dir,
    or, with `keep`, `say` where it is kept."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    upstream.stop()
    server_log.close()
    if keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def prometheus_histogram(text: str, name: str) -> tuple[dict, int, float]:
    """The histogram `name` in a /metrics page (Prometheus text), summed over its label sets:
    ({upper bound in s: how many were at most that}, how many in all, their sum); empty and zero
    when the page does not have it."""
    buckets: dict = {}
    count, total = 0, 0.0
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        series = key.split("{", 1)[0]
        if series == name + "_bucket":
            le = key.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0) + int(float(value))
        elif series == name + "_count":
            count += int(float(value))
        elif series == name + "_sum":
            total += float(value)
    return buckets, count, total
