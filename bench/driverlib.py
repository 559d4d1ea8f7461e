"""Shared helpers of the bench drivers that start a server of their own (bench/code_driver.py,
bench/health_under_load_driver.py)."""
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
