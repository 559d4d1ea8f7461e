"""/health latency while the server does heavy work (issue 16): PDFs ingest into a vector
store and a large file is staged into a code-interpreter session, at the same time.

Used by bench/health_under_load.sh (50 MB PDFs, a 200 MB file; prints the figures) and by
tests/conformance/test_event_loop_health.py (smaller; asserts that every probe answered 200
and the work finished, never a time).

* ``make_pdf``: a PDF of ``size_mb`` written here, no library needed: pages of text (so that
  pdftotext has real work) and each page an incompressible grey image (so the file has the size).
* ``HealthProbe``: GET /health every ``interval`` seconds on one keep-alive connection, from a
  process of its own; records each latency and status.
* ``run_scenario``: uploads the files, then, with the probe running, attaches the PDFs to a
  vector store and starts a run whose model calls code_interpreter with the large file
  attached, and waits until both are done.
"""

from __future__ import annotations

import os
import random
import statistics
import gc
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx

WORDS = ("river mountain harbour lantern orchard meadow quarry beacon glacier canyon prairie "
         "archive ledger compass anchor furnace vessel spindle thimble marble copper velvet").split()


def make_pdf(path: Path, size_mb: float, seed: int = 1) -> Path:
    """Writes a valid PDF of about ``size_mb`` MB to ``path`` (kept if already that size)."""
    target = int(size_mb * 1024 * 1024)
    if path.exists() and abs(path.stat().st_size - target) < 256 * 1024:
        return path
    rng = random.Random(seed)
    side = 120                      # a 120x120 8-bit grey image: 14,400 bytes a page
    per_page = side * side + 4900   # image + text + objects, roughly
    pages = max(1, target // per_page)
    tmp = path.with_suffix(".partial")
    offsets: list = []
    with open(tmp, "wb") as f:
        def obj(number: int, body: bytes):
            offsets.append((number, f.tell()))
            f.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

        f.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        # 1: catalog, 2: pages, 3: font; page i: 4+3i (page), 5+3i (content), 6+3i (image)
        kids = b" ".join(b"%d 0 R" % (4 + 3 * i) for i in range(pages))
        obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(2, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (pages, kids))
        obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        for i in range(pages):
            page, content, image = 4 + 3 * i, 5 + 3 * i, 6 + 3 * i
            obj(page, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> "
                      b"/XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>" % (image, content))
            lines = [f"Page {i + 1}, section {rng.randint(1, 999)}: " + " ".join(rng.choice(WORDS) for _ in range(12))
                     for _ in range(40)]
            text = "BT /F1 9 Tf 40 760 Td 11 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
            stream = (text + f" q {side} 0 0 {side} 400 40 cm /Im1 Do Q").encode()
            obj(content, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
            pixels = rng.randbytes(side * side)
            obj(image, b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                       b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (side, side, len(pixels)) + pixels + b"\nendstream")
        xref = f.tell()
        count = 4 + 3 * pages
        table = dict(offsets)
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        for n in range(1, count):
            f.write(b"%010d 00000 n \n" % table[n])
        f.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref))
    os.replace(tmp, path)
    return path


def make_blob(path: Path, size_mb: float) -> Path:
    """A file of ``size_mb`` MB of random bytes (kept if already that size)."""
    target = int(size_mb * 1024 * 1024)
    if path.exists() and path.stat().st_size == target:
        return path
    with open(path.with_suffix(".partial"), "wb") as f:
        left = target
        while left > 0:
            n = min(left, 4 * 1024 * 1024)
            f.write(os.urandom(n))
            left -= n
    os.replace(path.with_suffix(".partial"), path)
    return path


@dataclass
class HealthProbe:
    """GET ``base_url``/health every ``interval`` s on one keep-alive connection, from a process of
    its own: in this one the scripted upstream and the polling share the GIL, which held probes
    back by hundreds of ms while the server's loops were free (its own lag ticks said so)."""
    base_url: str
    interval: float = 0.02
    latencies_ms: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    offsets: list = field(default_factory=list)  # when each probe was sent, in s from the start
    errors: list = field(default_factory=list)
    _stop: Optional[object] = None
    _results: Optional[object] = None
    _process: Optional[object] = None

    def start(self) -> "HealthProbe":
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=self._loop, args=(self._stop, sender), name="health-probe", daemon=True)
        self._process.start()
        sender.close()
        return self

    def _loop(self, stop, sender):
        # The parent's heap (the PDFs' bytes among it) came with the fork: a collection walking it
        # would pause the probe itself. The child is short-lived and allocates little.
        gc.disable()
        latencies, statuses, offsets, errors = [], [], [], []
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            next_at = origin = time.monotonic()
            while not stop.is_set():
                offsets.append(time.monotonic() - origin)
                started = time.perf_counter()
                try:
                    status = client.get("/health").status_code
                except httpx.HTTPError as e:
                    status = None
                    errors.append(repr(e))
                latencies.append((time.perf_counter() - started) * 1000)
                statuses.append(status)
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                else:
                    next_at = time.monotonic()
        sender.send((latencies, statuses, offsets, errors))
        sender.close()

    def stop(self):
        if self._process is None:
            return
        self._stop.set()
        if self._results.poll(15):
            self.latencies_ms, self.statuses, self.offsets, self.errors = self._results.recv()
        self._process.join(15)

    def corrected_latencies(self) -> list:
        """The latencies with the probes a stall kept from being sent added back (each probe is
        sent after the previous answer, so one stall of L ms hides L / interval probes, which would
        have waited L - interval, L - 2 interval, ... ms): coordinated omission, corrected as
        HdrHistogram's recordValueWithExpectedInterval does."""
        step = self.interval * 1000
        values = []
        for ms in self.latencies_ms:
            values.append(ms)
            missed = ms - step
            while missed > step:
                values.append(missed)
                missed -= step
        return values

    def percentile(self, p: float, corrected: bool = False) -> float:
        values = sorted(self.corrected_latencies() if corrected else self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    def summary(self) -> dict:
        return {
            "probes": len(self.latencies_ms),
            "non_200": sum(1 for s in self.statuses if s != 200),
            "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99),
            "p50_corrected_ms": self.percentile(50, corrected=True),
            "p99_corrected_ms": self.percentile(99, corrected=True),
            "max_ms": max(self.latencies_ms) if self.latencies_ms else float("nan"),
            "mean_ms": statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan"),
            "slowest": sorted(((round(ms, 1), round(at, 2)) for ms, at in zip(self.latencies_ms, self.offsets)), reverse=True)[:5],
        }


@dataclass
class ScenarioResult:
    probe: dict
    ingest_seconds: float
    run_seconds: float
    file_counts: dict
    run_status: str
    staged_size_logged: bool
    total_seconds: float


def upload(http: httpx.Client, path: Path, purpose: str = "assistants") -> str:
    with open(path, "rb") as f:
        r = http.post("/files", files={"file": (path.name, f)}, data={"purpose": purpose}, timeout=600)
    r.raise_for_status()
    return r.json()["id"]


def run_scenario(http: httpx.Client, base_url: str, upstream, model: str, pdfs: list, blob: Path,
                 interval: float = 0.02, timeout: float = 900.0, log=print) -> ScenarioResult:
    """Uploads ``pdfs`` and ``blob`` (not measured), then measures /health while the PDFs ingest
    into a new vector store and a run stages ``blob`` into its code-interpreter session."""
    from upstream import text, tool_call  # tests/conformance/upstream.py, on sys.path

    started_upload = time.monotonic()
    pdf_ids = [upload(http, p) for p in pdfs]
    blob_id = upload(http, blob)
    log(f"uploaded {len(pdfs)} PDFs and {blob.name} in {time.monotonic() - started_upload:.1f} s")

    assistant = http.post("/assistants", json={"model": model, "instructions": "You run code.",
                                               "tools": [{"type": "code_interpreter"}]}).json()["id"]
    marker = f"health-{os.getpid()}-{random.randrange(1 << 30)}"
    code = f"import os\nprint('staged', os.path.getsize('/mnt/data/{blob.name}'))"
    upstream.enqueue(tool_call("code_interpreter", {"code": code}), text("Done."), match=marker)
    thread = http.post("/threads", json={"messages": [{
        "role": "user", "content": f"Measure the file [{marker}]",
        "attachments": [{"file_id": blob_id, "tools": [{"type": "code_interpreter"}]}]}]}).json()["id"]

    probe = HealthProbe(base_url, interval).start()
    time.sleep(1.0)  # a quiet second first, for the baseline
    t0 = time.monotonic()
    store = http.post("/vector_stores", json={"name": "health-under-load", "file_ids": pdf_ids}).json()["id"]
    run = http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}).json()["id"]
    ingest_done = run_done = None
    counts: dict = {}
    status = "queued"
    deadline = t0 + timeout
    while (ingest_done is None or run_done is None) and time.monotonic() < deadline:
        time.sleep(0.25)
        if ingest_done is None:
            counts = http.get(f"/vector_stores/{store}").json()["file_counts"]
            if counts["in_progress"] == 0:
                ingest_done = time.monotonic() - t0
        if run_done is None:
            status = http.get(f"/threads/{thread}/runs/{run}").json()["status"]
            if status in ("completed", "failed", "cancelled", "expired", "incomplete", "requires_action"):
                run_done = time.monotonic() - t0
    probe.stop()
    steps = http.get(f"/threads/{thread}/runs/{run}/steps").json()["data"]
    logs = "".join(o.get("logs", "") for s in steps if s["type"] == "tool_calls"
                   for c in s["step_details"]["tool_calls"] for o in c.get("code_interpreter", {}).get("outputs", []))
    return ScenarioResult(
        probe=probe.summary(), ingest_seconds=ingest_done if ingest_done is not None else float("nan"),
        run_seconds=run_done if run_done is not None else float("nan"), file_counts=counts, run_status=status,
        staged_size_logged=f"staged {blob.stat().st_size}" in logs, total_seconds=time.monotonic() - t0)


def main() -> int:
    import argparse
    import socket
    import subprocess
    import sys
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--pdf-mb", type=float, default=50)
    parser.add_argument("--pdfs", type=int, default=2)
    parser.add_argument("--stage-mb", type=float, default=200)
    parser.add_argument("--interval-ms", type=float, default=20)
    parser.add_argument("--cache", default=os.environ.get("BENCH_CACHE", "/tmp/assistants-bench-cache"),
                        help="where the generated PDFs and the blob are kept between runs")
    parser.add_argument("--keep", action="store_true", help="keep the server's temp dir")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "conformance"))
    from upstream import ScriptedUpstream

    from driverlib import shut_down

    def log(message: str):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    pdfs = [make_pdf(cache / f"load-{int(args.pdf_mb)}mb-{i}.pdf", args.pdf_mb, seed=i) for i in range(args.pdfs)]
    blob = make_blob(cache / f"stage-{int(args.stage_mb)}mb.bin", args.stage_mb)
    log(f"inputs ready in {time.monotonic() - t:.1f} s: {', '.join(f'{p.name} {p.stat().st_size >> 20} MiB' for p in pdfs)}, "
        f"{blob.name} {blob.stat().st_size >> 20} MiB")

    upstream = ScriptedUpstream().start()
    work = Path(tempfile.mkdtemp(prefix="assistants-health."))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update({"ASSISTANTS_UPSTREAM_URL": upstream.base_url, "ASSISTANTS_LOCAL_MODEL": "off",
                "ASSISTANTS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning")})
    server_log = open(work / "server.log", "wb")
    server = subprocess.Popen([args.server_bin, "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--database-url", f"sqlite://{work}/assistants.sqlite", "--data-dir", str(work / "files")],
                              env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log("the server did not start; its log:\n" + (work / "server.log").read_text(errors="replace")[-3000:])
                return 1
            time.sleep(0.1)
        cpu_before = _cpu_seconds(server.pid)
        lag_before = _loop_lag_buckets(base)
        with httpx.Client(base_url=base + "/v1", timeout=120,
                          headers={"Authorization": "Bearer bench", "OpenAI-Beta": "assistants=v2"}) as http:
            result = run_scenario(http, base, upstream, "gpt-4o-mini", pdfs, blob,
                                  interval=args.interval_ms / 1000, log=log)
        cpu = _cpu_seconds(server.pid) - cpu_before
        lag = _loop_lag_summary(lag_before, _loop_lag_buckets(base))
        p = result.probe
        print()
        print(f"/health under load: {args.pdfs} x {args.pdf_mb:g} MB PDFs ingesting + {args.stage_mb:g} MB staged "
              f"into a code-interpreter session (probe every {args.interval_ms:g} ms, one keep-alive connection)")
        print(f"  probes            {p['probes']} ({p['non_200']} not 200)")
        print(f"  /health p50       {p['p50_ms']:.2f} ms   (corrected for the probes stalls held back: {p['p50_corrected_ms']:.2f} ms)")
        print(f"  /health p99       {p['p99_ms']:.2f} ms   (corrected: {p['p99_corrected_ms']:.2f} ms; "
              f"target < 50 ms: {'met' if p['p99_corrected_ms'] < 50 else 'MISSED'})")
        print(f"  /health max       {p['max_ms']:.2f} ms   (slowest: {', '.join(f'{ms} ms at +{at} s' for ms, at in p['slowest'])})")
        print(f"  ingestion         {result.ingest_seconds:.1f} s  file_counts {result.file_counts}")
        print(f"  run (stage+exec)  {result.run_seconds:.1f} s  status {result.run_status}, "
              f"size seen in the sandbox: {'yes' if result.staged_size_logged else 'NO'}")
        print(f"  server CPU        {cpu:.1f} s over {result.total_seconds:.1f} s")
        print(f"  event-loop lag    {lag}  (the server's own ticks, every 100 ms on each loop: how long a loop was held;"
              f" a slow probe with no lag here waited outside the server's event loops)")
        ok = (p["non_200"] == 0 and result.file_counts.get("completed") == args.pdfs
              and result.run_status == "completed" and result.staged_size_logged)
        return 0 if ok else 1
    finally:
        shut_down(server, upstream, server_log, work, timeout=20, keep=args.keep, say=log)


def _loop_lag_buckets(base: str) -> dict:
    """The server's `assistants_event_loop_lag_seconds` histogram, all loops summed: {le: count}."""
    from driverlib import prometheus_histogram

    try:
        text = httpx.get(base + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    return prometheus_histogram(text, "assistants_event_loop_lag_seconds")[0]


def _loop_lag_summary(before: dict, after: dict) -> str:
    """Ticks in the scenario, and the bucket bounds under which 99% and all of them fell."""
    cumulative = sorted((bound, count - before.get(bound, 0)) for bound, count in after.items())
    if not cumulative or cumulative[-1][1] == 0:
        return "not reported (no /metrics histogram)"
    total = cumulative[-1][1]
    p99 = next(bound for bound, count in cumulative if count >= 0.99 * total)
    worst = next(bound for bound, count in cumulative if count >= total)
    show = lambda bound: "> 10 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
    return f"{total} ticks: p99 {show(p99)}, max {show(worst)}"


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
