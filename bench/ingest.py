"""Notary ingestion through the real HTTP API: records/s acknowledged durably, batches of 1 and of 1,000.

The notary runs in its own process (uvicorn on 127.0.0.1, the FastAPI app of notary.api, the sealer
anchoring on the embedded ledger every second, as in production). The load generator is this process:
it registers one device key per client, builds realistic `recording_segment` records (the shape
hub/demo.py submits), signs each batch with SubmitterKey.sign_batch (ECDSA P-256, over the batch's
RFC 9162 root) and serialises the JSON bodies *before* the clock starts; the timed loop only POSTs the
pre-signed bytes with httpx and checks each answer (200, one receipt per record, all appended). A
record counts once the notary has answered, i.e. after its transaction committed (SQLite WAL with
synchronous=FULL, PostgreSQL with synchronous_commit=on).

Then one more batch-of-1,000 run with the server instrumented shows where its time goes:
  * stage timers: selected functions of the submit path wrapped with exclusive (self) timers, in the
    server process, non-overlapping, low overhead;
  * cProfile of the whole server thread (inflates pure-Python code; read it for ranking, not totals).
In both, FastAPI's threadpool hop is replaced by a direct call so one thread does all the work.

    python -m bench.ingest                     # SQLite
    BIDTRACE_BENCH_POSTGRES_URL=postgresql+psycopg://user@host:port/db python -m bench.ingest
        # and PostgreSQL too: each scenario uses a fresh schema that is dropped afterwards
"""

import argparse
import contextlib
import hashlib
import json
import os
import pstats
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.common import Deadline, fmt_rate, fmt_us, machine, percentile, table

CST = timezone(timedelta(hours=8))
TARGET = 20_000


# ====================================================================== records (client side)

def segment_records(device: str, venue: str, count: int, start_index: int = 0) -> list[dict[str, Any]]:
    """`count` hash-chained ten-second recording segments of one camera, shaped as hub/demo.py makes them."""
    start = datetime(2026, 11, 26, 9, 30, tzinfo=CST)
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for s in range(start_index, start_index + count):
        digest = hashlib.sha256(f"{device}/{s}".encode()).hexdigest()
        t0, t1 = start + timedelta(seconds=10 * s), start + timedelta(seconds=10 * (s + 1))
        out.append({
            "type": "recording_segment", "project_id": "SD-2026-JN-0417", "session_id": "S-20261126-01",
            "venue_id": venue, "device_id": device, "occurred_at": t1.isoformat(),
            "payload": {
                "camera_id": device.rsplit(".", 1)[-1], "segment_index": s, "start": t0.isoformat(),
                "end": t1.isoformat(), "frame_count": 250, "sha256": digest, "previous_segment": previous,
            },
            "attachments": [{
                "name": f"{venue}-{device.rsplit('.', 1)[-1]}-{s:06d}.mp4", "sha256": digest,
                "size": 2_500_000 + s % 1000, "media_type": "video/mp4",
            }],
        })
        previous = digest
    return out


def signed_bodies(key: Any, venue: str, batch: int, batches: int) -> list[bytes]:
    """Pre-signed request bodies, exactly what NotaryClient.submit sends."""
    bodies = []
    for b in range(batches):
        records = segment_records(key.submitter_id, venue, batch, b * batch)
        body = {"submitter": key.submitter_id, "records": records, "signature": key.sign_batch(records),
                "disclosures": []}
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


# ====================================================================== server process

class StageTimers:
    """Exclusive wall time per stage, for calls made on one thread (the server's event-loop thread)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[list[float]] = []  # [start, time spent in nested timed calls]

    def _enter(self) -> None:
        self.stack.append([time.perf_counter(), 0.0])

    def _exit(self, stage: str) -> None:
        start, nested = self.stack.pop()
        total = time.perf_counter() - start
        self.totals[stage] = self.totals.get(stage, 0.0) + total - nested
        self.calls[stage] = self.calls.get(stage, 0) + 1
        if self.stack:
            self.stack[-1][1] += total

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return fn(*args, **kwargs)
            self._enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit(stage)
        return timed

    def wrap_async(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return await fn(*args, **kwargs)
            self._enter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._exit(stage)
        return timed

    @contextlib.contextmanager
    def span(self, stage: str) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._exit(stage)


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def _inline_threadpool() -> None:
    """Run FastAPI's sync endpoints and dependencies on the event-loop thread (one thread to measure)."""
    import fastapi.dependencies.utils as fdu
    import fastapi.routing as fr

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    fr.run_in_threadpool = inline  # type: ignore[assignment]
    fdu.run_in_threadpool = inline  # type: ignore[assignment]


def _install_stage_timers(timers: StageTimers) -> None:
    """Wrap the functions of the submit path, as the server process imports them (bench-only patching)."""
    import fastapi.dependencies.utils as fdu
    import fastapi.routing as fr
    import sqlalchemy.engine.base as sab
    import starlette.requests as sr

    import notary.api.records as api_records
    import notary.log as nlog
    import notary.tree as ntree

    sr.json = _Namespace(loads=timers.wrap("HTTP body: json.loads", json.loads))  # type: ignore[attr-defined]
    fdu.request_body_to_args = timers.wrap_async(  # type: ignore[assignment]
        "FastAPI/pydantic: SubmissionIn validation", fdu.request_body_to_args
    )
    fr.request_body_to_args = fdu.request_body_to_args  # type: ignore[attr-defined]
    api_records.json = _Namespace(  # type: ignore[attr-defined]
        dumps=timers.wrap("response: json.dumps of receipts", json.dumps), loads=json.loads
    )
    targets: list[tuple[Any, str, str]] = [
        (nlog, "validate_record", "record schema (validate_record, pydantic)"),
        (nlog, "canonical_bytes", "RFC 8785 canonical_bytes"),
        (nlog, "leaf_hash", "SHA-256 leaf hashes (leaf_hash)"),
        (nlog, "batch_tree", "batch tree (paths, submit + receipts)"),
        (nlog, "verify_signature", "ECDSA signature check"),
        (nlog, "_entry_bytes", "entry bytes (_entry_bytes)"),
        (ntree.CompactRange, "append", "CompactRange.append"),
        (nlog.EvidenceLog, "_receipts", "receipts (build dicts + Ed25519 sign)"),
        (nlog.EvidenceLog, "_append", "_append other (row dicts, dedup, Python)"),
        (nlog.EvidenceLog, "submit", "submit other (loops, base64, record sha256)"),
    ]
    for owner, name, stage in targets:
        if hasattr(owner, name):  # the notary may have renamed it; then its time shows in its caller
            setattr(owner, name, timers.wrap(stage, getattr(owner, name)))
        else:
            print(f"stage timer: {owner.__name__}.{name} not found", file=sys.stderr)
    sql = "SQL statements (SQLAlchemy + driver)"
    sab.Connection.execute = timers.wrap(sql, sab.Connection.execute)  # type: ignore[method-assign]
    sab.Connection.exec_driver_sql = timers.wrap(sql, sab.Connection.exec_driver_sql)  # type: ignore[method-assign]
    if hasattr(sab.Connection, "_commit_impl"):
        sab.Connection._commit_impl = timers.wrap(  # type: ignore[method-assign]
            "SQL COMMIT (WAL fsync / PG flush)", sab.Connection._commit_impl
        )


def serve(args: argparse.Namespace) -> int:
    """Server process: run the notary until SIGINT/SIGTERM; then write profiles if asked."""
    import uvicorn

    timers: StageTimers | None = None
    profiler = None
    if args.stage_timers or args.cprofile:
        _inline_threadpool()
    if args.stage_timers:
        timers = StageTimers()
        _install_stage_timers(timers)

    from notary.api import create_app
    from notary.service import Notary, NotaryConfig

    config = NotaryConfig(
        data_dir=Path(args.data), database_url=args.url or None, log_id="bench", seal_interval=1.0,
        access=Path(args.access) if args.access else None, insecure_local=not args.access,
    )
    notary = Notary(config)
    app = create_app(notary)
    if timers is not None:
        inner = app

        async def timed_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope.get("path") != "/v1/records" or scope.get("method") != "POST":
                await inner(scope, receive, send)
                return
            assert timers is not None
            with timers.span("FastAPI/Starlette routing, deps, other"):
                await inner(scope, receive, send)
            timers.calls["requests"] = timers.calls.get("requests", 0) + 1

        asgi: Any = timed_app
    else:
        asgi = app
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=args.port, log_level="warning",
                                           lifespan="on"))
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        server.run()  # handles SIGINT/SIGTERM with a graceful shutdown
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        if timers is not None:
            Path(args.stage_timers).write_text(json.dumps({"totals": timers.totals, "calls": timers.calls}))
        notary.close()
    return 0


# ====================================================================== load generator

@dataclass
class Scenario:
    backend: str
    batch: int
    clients: int
    requests_per_client: int
    seconds: float
    workers: int = 1
    signed: bool = True  # requests signed (RFC 9421) and verified; False: unsigned, --insecure-local


@dataclass
class Outcome:
    scenario: Scenario
    records: int = 0
    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the given PostgreSQL database, dropped afterwards; yields a URL that uses it."""
    from sqlalchemy import create_engine, text

    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


@contextlib.contextmanager
def notary_server(
    workdir: Path, url: str | None, stage_timers: Path | None = None, cprofile: Path | None = None,
    workers: int = 1, signed: bool = True,
) -> Iterator[tuple[str, Any]]:
    """Start the notary in its own process; yield (base URL, the notary administrator's key).

    One worker: `python -m bench.ingest serve` (which can be instrumented). Several: the product's own
    `bidtrace notary serve --workers N`, whose workers append concurrently through the database.
    Unsigned (`signed=False`): the notary runs --insecure-local and checks no request signature."""
    from notary.access import PrincipalKey, Role, write_access_config

    port = _free_port()
    admin = PrincipalKey.generate("bench-admin")
    access = workdir.parent / f"{workdir.name}-access.json"
    write_access_config(access, [admin.principal(Role.NOTARY_ADMIN)])
    env = dict(os.environ)
    if workers > 1:
        cmd = [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(workdir), "--port", str(port),
               "--log-id", "bench", "--workers", str(workers)]
        cmd += [f"--access={access}"] if signed else ["--insecure-local"]
        if url:
            cmd += [f"--database-url={url}"]
    else:
        cmd = [sys.executable, "-m", "bench.ingest", "serve", "--data", str(workdir), "--port", str(port)]
        if signed:
            cmd += [f"--access={access}"]
        if url:
            cmd += [f"--url={url}"]
        if stage_timers:
            cmd += ["--stage-timers", str(stage_timers)]
        if cprofile:
            cmd += ["--cprofile", str(cprofile)]
    log = open(workdir.parent / f"{workdir.name}.server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = Deadline(60)
        while True:
            if proc.poll() is not None:
                log.flush()
                tail = Path(log.name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"notary server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if deadline.passed():
                raise RuntimeError("notary server did not come up within 60 s")
            time.sleep(0.1)
        yield base, admin if signed else None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # our own child, by its handle
                proc.wait(timeout=10)
        log.close()


def run_scenario(sc: Scenario, url: str | None, tmp: Path, tag: str,
                 stage_timers: Path | None = None, cprofile: Path | None = None) -> Outcome:
    from notary.client import NotaryClient, SubmitterKey

    out = Outcome(sc)
    workdir = tmp / tag
    from notary.access import SignedRequests

    with notary_server(workdir, url, stage_timers, cprofile, sc.workers, sc.signed) as (base, admin_key):
        admin = NotaryClient(base, as_principal=admin_key)
        venues = ["V-JINAN-01", "V-QINGDAO-02", "V-YANTAI-03"]
        plans: list[list[httpx.Request]] = []
        t0 = time.perf_counter()
        headers = {"content-type": "application/json"}
        if sc.workers > 1:
            # With several workers, each request comes on a fresh connection: the kernel spreads connections
            # over the workers' SO_REUSEPORT sockets, so four kept-alive ones could all land on one worker.
            headers["connection"] = "close"
        for c in range(sc.clients):
            venue = venues[c % len(venues)]
            key = SubmitterKey.generate(f"{venue}.cam{c + 1}")
            admin.register(key, "device", venue, "recorder")
            # Requests are built and signed (RFC 9421: digest, time, nonce) before the clock starts, so
            # the figures are the server's cost; a signature stays valid for the two minutes of its window.
            requests = [httpx.Request("POST", base + "/v1/records", content=body, headers=headers)
                        for body in signed_bodies(key, venue, sc.batch, sc.requests_per_client)]
            if sc.signed:
                signer = SignedRequests(key)
                for request in requests:
                    signer.sign(request)
            plans.append(requests)
        prep = time.perf_counter() - t0
        lock = threading.Lock()
        barrier = threading.Barrier(sc.clients + 1)
        deadline_box: list[Deadline] = []

        def client(requests: list[httpx.Request]) -> None:
            acked = 0
            lat: list[float] = []
            errs: list[str] = []
            with httpx.Client(base_url=base, timeout=120) as http:
                barrier.wait()
                deadline = deadline_box[0]
                for request in requests:
                    if deadline.passed():
                        break
                    t = time.perf_counter()
                    r = http.send(request)
                    lat.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errs.append(f"{r.status_code} {r.text[:200]}")
                        break
                    answer = r.json()
                    if answer["appended"] != sc.batch or len(answer["receipts"]) != sc.batch:
                        errs.append(f"expected {sc.batch} appended, got {answer['appended']}")
                        break
                    acked += sc.batch
            with lock:
                out.records += acked
                out.requests += len(lat)
                out.latencies.extend(lat)
                out.errors.extend(errs)

        threads = [threading.Thread(target=client, args=(requests,)) for requests in plans]
        for t in threads:
            t.start()
        deadline_box.append(Deadline(sc.seconds))
        start = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join(timeout=sc.seconds + 300)
        out.elapsed = time.perf_counter() - start
        admin.close()
    print(f"  {tag}: {out.records:,} records in {out.requests:,} requests, {out.elapsed:.1f}s → "
          f"{fmt_rate(out.rate)} (bodies pre-signed in {prep:.1f}s)"
          + (f"; ERRORS: {out.errors[:2]}" if out.errors else ""), flush=True)
    return out


# ====================================================================== profile reports

def stage_report(path: Path, records: int) -> str:
    data = json.loads(path.read_text())
    totals: dict[str, float] = data["totals"]
    requests = data["calls"].get("requests", 0)
    grand = sum(totals.values())
    rows = []
    for stage, secs in sorted(totals.items(), key=lambda kv: -kv[1]):
        rows.append([stage, f"{secs:.3f}s", f"{secs / grand:.1%}", fmt_us(secs / records) if records else "-",
                     f"{data['calls'].get(stage, 0):,}"])
    head = (f"server-side stage timers, {requests} POST /v1/records of {records // max(requests, 1):,} records: "
            f"{grand:.2f}s in the app → {records / grand:,.0f} records/s of app time "
            f"(uvicorn's HTTP parsing and socket I/O are outside)")
    return head + "\n" + table(["stage (exclusive time)", "total", "share", "per record", "calls"], rows)


def cprofile_report(path: Path, top: int = 25) -> str:
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    idle = 0.0
    total = 0.0
    for (_file, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        total += tt
        if func in ("<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>"):
            idle += tt
    busy = total - idle
    ranked = sorted((kv for kv in raw.items() if "epoll" not in kv[0][2]), key=lambda kv: -kv[1][2])[:top]
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in ranked:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else "builtin"
        rows.append([f"{func[:60]}", where[:55], f"{nc:,}", f"{tt:.3f}s", f"{tt / busy:.1%}", f"{ct:.3f}s"])
    return (f"cProfile of the server's main thread: {busy:.2f}s busy (epoll wait {idle:.2f}s excluded); "
            f"top {top} by self time\n"
            + table(["function", "where", "calls", "self", "self share", "cumulative"], rows))


# ====================================================================== main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    srv = sub.add_parser("serve", help="(internal) run the notary server for the benchmark")
    srv.add_argument("--data", required=True)
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--access", default="", help="access configuration; none: --insecure-local (unsigned)")
    srv.add_argument("--url", default="")
    srv.add_argument("--stage-timers", default="")
    srv.add_argument("--cprofile", default="")
    parser.add_argument("--singles", type=int, default=3000, help="max requests per client for batches of 1")
    parser.add_argument("--batches", type=int, default=40, help="max requests per client for batches of 1,000")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound of each scenario")
    parser.add_argument("--clients", default="1,4", help="concurrent clients to try, comma-separated")
    parser.add_argument("--workers", default="1,2", help="notary worker processes to try (at most one per client)")
    parser.add_argument("--auth", default="signed",
                        help="signed (RFC 9421 requests verified), unsigned (--insecure-local), or both: "
                             "signed,unsigned, side by side, for the cost of authentication")
    parser.add_argument("--profile-batches", type=int, default=20, help="batches of 1,000 in each profiled run")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--postgres-url", default=os.environ.get("BIDTRACE_BENCH_POSTGRES_URL", ""))
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)

    print(f"# Notary ingestion benchmark (HTTP API)\n{machine()}\n", flush=True)
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if args.postgres_url:
        backends.append(("postgresql", args.postgres_url))
    else:
        print("(PostgreSQL skipped: set BIDTRACE_BENCH_POSTGRES_URL to a scratch database to include it)")
    clients = [int(c) for c in args.clients.split(",") if c]
    workers = [int(w) for w in args.workers.split(",") if w]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bidtrace-ingest-") as tmpdir:
        tmp = Path(tmpdir)
        n = 0
        for backend, base_url in backends:
            for batch, per_client in ((1, args.singles), (1000, args.batches)):
                for c, w, auth in [(c, w, a) for c in clients for w in workers if w <= c
                                   for a in args.auth.split(",")]:
                    n += 1
                    sc = Scenario(backend, batch, c, per_client, args.seconds, w, signed=auth == "signed")
                    tag = f"{n:02d}-{backend}-b{batch}-c{c}-w{w}-{auth}"
                    with contextlib.ExitStack() as stack:
                        url = stack.enter_context(postgres_schema(base_url)) if base_url else None
                        outcomes.append(run_scenario(sc, url, tmp, tag))
        rows = []
        for o in outcomes:
            lat = sorted(o.latencies)
            sc = o.scenario
            rows.append([sc.backend, "signed" if sc.signed else "unsigned", f"{sc.batch:,}", str(sc.clients),
                         str(sc.workers), f"{o.records:,}",
                         f"{o.elapsed:.1f}s",
                         fmt_rate(o.rate), fmt_us(percentile(lat, 0.5)), fmt_us(percentile(lat, 0.99)),
                         f"{o.rate / TARGET:.2f}×" if sc.batch > 1 else "",
                         "; ".join(o.errors[:1])])
        print("\nRecords acknowledged durably (200 from POST /v1/records after COMMIT), signatures checked")
        print(table(["database", "requests", "batch", "clients", "workers", "records", "time", "records/s",
                     "request p50",
                     "request p99", "vs 20k/s target", "errors"], rows))

        if not args.no_profile:
            for backend, base_url in backends:
                sc = Scenario(backend, 1000, 1, args.profile_batches, args.seconds)
                with contextlib.ExitStack() as stack:
                    url = stack.enter_context(postgres_schema(base_url)) if base_url else None
                    stages = tmp / f"stages-{backend}.json"
                    o = run_scenario(sc, url, tmp, f"profile-stages-{backend}", stage_timers=stages)
                    print(f"\n## Where the time goes: {backend}, batch of 1,000, one client "
                          f"(instrumented run: {fmt_rate(o.rate)})")
                    print(stage_report(stages, o.records))
                with contextlib.ExitStack() as stack:
                    url = stack.enter_context(postgres_schema(base_url)) if base_url else None
                    prof = tmp / f"cprofile-{backend}.prof"
                    o = run_scenario(sc, url, tmp, f"profile-cprofile-{backend}", cprofile=prof)
                    print(f"\n(cProfile run: {fmt_rate(o.rate)} under the profiler)")
                    print(cprofile_report(prof))
    return 0

if __name__ == "__main__":
    sys.exit(main())
