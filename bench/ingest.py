"""Ingestion side by side: the bidtrace notary and Tessera's POSIX log, driven by one Go load generator.

    python -m bench ingest                 # everything below, then the tables and ratios
    python -m bench ingest --quick         # fewer levels, shorter runs

Both contenders run on this machine in their own processes, on 127.0.0.1, durably (the notary: SQLite
in WAL mode with synchronous=FULL, or PostgreSQL with synchronous_commit=on; Tessera: its POSIX driver,
which fsyncs what it writes). The load generator (bench/loadgen, Go standard library only, built here
with the machine's Go) runs N concurrent clients, each on its own kept-alive connection, one entry per
POST, for a bounded time, and counts an entry only when its 200 answer arrives:

  * Tessera v1.0.4 `cmd/conformance/posix`, installed with `go install`, with a signed-note key made
    here; entries are 630 random bytes, each POST answered with its index once sequenced and durable.
  * the notary, `bidtrace notary serve --workers N`; entries are `recording_segment` records of about
    630 canonical bytes, each POST one record signed by its device (Ed25519, signed before the clock
    starts), answered with its notary-signed receipt after the commit that made it durable.

Then batches of 1,000 records per POST on SQLite and PostgreSQL (a throwaway cluster is started when
PostgreSQL's initdb is installed and BIDTRACE_BENCH_POSTGRES_URL is unset), and a py-spy profile of
the notary under one-record load, all threads, to name what bounds it.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.common import Deadline, fmt_rate, machine, table

CST = timezone(timedelta(hours=8))
TESSERA = "github.com/transparency-dev/tessera/cmd/conformance/posix@v1.0.4"
ENTRY_BYTES = 630
LEVELS = (1, 16, 128, 1024, 4096)
VENUES = ("V-JINAN-01", "V-QINGDAO-02", "V-YANTAI-03")
HERE = Path(__file__).resolve().parent


# ====================================================================== tools

def cache_dir() -> Path:
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bidtrace" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_tools() -> tuple[Path, Path]:
    """Build the load generator from bench/loadgen and install Tessera's POSIX log; return both binaries."""
    go = shutil.which("go")
    if go is None:
        raise SystemExit("this benchmark needs Go (the load generator and Tessera are built with it)")
    bin_dir = cache_dir() / "bin"
    loadgen = bin_dir / "loadgen"
    subprocess.run([go, "build", "-o", str(loadgen), "."], cwd=HERE / "loadgen", check=True)
    posix = bin_dir / "posix"
    if not posix.exists():
        subprocess.run([go, "install", TESSERA], env={**os.environ, "GOBIN": str(bin_dir)}, check=True)
    return loadgen, posix


def note_signer_key(name: str) -> str:
    """A signed-note private key (Ed25519, golang.org/x/mod/sumdb/note format) for Tessera's checkpoints."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    seed = secrets.token_bytes(32)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4].hex()
    encoded = base64.b64encode(b"\x01" + seed).decode()
    return f"PRIVATE+KEY+{name}+{key_hash}+{encoded}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a server process and its direct children (the notary's workers)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    total = 0
    for p in [pid, *map(int, children)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(cmd: list[str], log: Path, ready: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run a server until the block ends; wait until `ready` (a URL) answers; yield its pid."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = Deadline(60)
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready, timeout=2).status_code < 500:
                        break
                if deadline.passed():
                    raise RuntimeError(f"{cmd[0]} did not answer at {ready} within 60 s")
                time.sleep(0.1)
            yield proc.pid
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers, no one else
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@contextlib.contextmanager
def tessera_server(posix: Path, work: Path) -> Iterator[tuple[str, int]]:
    key = work / "tessera.key"
    key.write_text(note_signer_key("bench.bidtrace/tessera"))
    storage = work / "tessera"
    storage.mkdir()
    port = _free_port()
    cmd = [str(posix), f"--storage_dir={storage}", f"--listen=127.0.0.1:{port}", f"--private_key={key}"]
    with _process(cmd, work / "tessera.log", f"http://127.0.0.1:{port}/checkpoint") as pid:
        yield f"http://127.0.0.1:{port}/add", pid


@contextlib.contextmanager
def notary_server(
    work: Path, database_url: str | None, workers: int, http: str = "uvicorn"
) -> Iterator[tuple[str, int]]:
    """`bidtrace notary serve --insecure-local` on a fresh log; yields (base URL, pid). With `http` "granian",
    the same application under granian's HTTP server instead (a trial: one worker, which also seals).

    The load generator sends plain POSTs, as it does to Tessera, so request signatures (RFC 9421) are not
    checked here; every batch's submitter signature still is. `python -m bench.auth` measures what checking
    request signatures adds."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    if http == "granian":
        if workers != 1:
            raise SystemExit("--http granian is tried with one worker only (the worker also seals)")
        granian = Path(sys.executable).parent / "granian"
        if not granian.exists():
            raise SystemExit("--http granian needs granian installed beside this Python (it is not a dependency)")
        cmd = [str(granian), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--loop", "uvloop", "--log-level", "warning",
               "bench.ingest:granian_notary"]
        env = {**os.environ, "BIDTRACE_DATA": str(work / "notary"), "BIDTRACE_LOG_ID": "bench",
               "BIDTRACE_INSECURE_LOCAL": "1", **({"BIDTRACE_DATABASE_URL": database_url} if database_url else {})}
        with _process(cmd, work / "notary.log", f"{base}/healthz", env) as pid:
            yield base, pid
        return
    cmd = [sys.executable, "-m", "bidtrace", "notary", "serve", "--data", str(work / "notary"), "--port", str(port),
           "--log-id", "bench", "--workers", str(workers), "--insecure-local"]
    if database_url:
        cmd.append(f"--database-url={database_url}")
    with _process(cmd, work / "notary.log", f"{base}/healthz", dict(os.environ)) as pid:
        yield base, pid


def granian_notary() -> Any:
    """The notary's application, configured from the environment, for granian's `--factory`."""
    from notary.api import create_app
    from notary.service import Notary, NotaryConfig

    return create_app(Notary(NotaryConfig()))


@contextlib.contextmanager
def postgres(base_url: str | None, work: Path) -> Iterator[str | None]:
    """BIDTRACE_BENCH_POSTGRES_URL, or a throwaway cluster when PostgreSQL is installed, or None."""
    if base_url:
        yield base_url
        return
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not bins:
        yield None
        return
    initdb, pg_ctl = bins[0], bins[0].parent / "pg_ctl"
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="bidtrace-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run([*as_pg, str(initdb), "-D", str(data), "-A", "trust", "-U", "bidtrace"], check=True,
                   capture_output=True)
    subprocess.run([*as_pg, str(pg_ctl), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://bidtrace@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(base_url: str | None) -> Iterator[str | None]:
    """SQLite (None: the notary's own file) or a new database on the PostgreSQL server, dropped afterwards."""
    if base_url is None:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{base_url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


# ====================================================================== notary submissions (client side)

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
    """Pre-signed request bodies, exactly what NotaryClient.submit sends (for Python-driven benchmarks)."""
    bodies = []
    for b in range(batches):
        records = segment_records(key.submitter_id, venue, batch, b * batch)
        body = {"submitter": key.submitter_id, "records": records, "signature": key.sign_batch(records),
                "disclosures": []}
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


@dataclass
class Submissions:
    """Pre-signed request bodies in the load generator's file format, and the keys that signed them."""

    path: Path
    keys: list[Any]
    batch: int
    count: int


def write_submissions(path: Path, batch: int, count: int, devices: int = 64) -> Submissions:
    from notary.client import SubmitterKey

    keys = [SubmitterKey.generate(f"{VENUES[d % 3]}.cam{d + 1}", "ed25519") for d in range(devices)]
    with open(path, "wb") as out:
        for b in range(count):
            key = keys[b % devices]
            records = segment_records(key.submitter_id, VENUES[(b % devices) % 3], batch, (b // devices) * batch)
            body = json.dumps({"submitter": key.submitter_id, "records": records,
                               "signature": key.sign_batch(records), "disclosures": []},
                              ensure_ascii=False, separators=(",", ":")).encode()
            out.write(struct.pack(">I", len(body)) + body)
    return Submissions(path, keys, batch, count)


def register(base: str, keys: list[Any]) -> None:
    """Bind each camera to its venue (keys are named `<venue>.camN`), through the loopback-only notary."""
    from notary.client import NotaryClient

    admin = NotaryClient(base)
    try:
        for key in keys:
            admin.register(key, "device", key.submitter_id.split(".")[0], "recorder")
    finally:
        admin.close()


# ====================================================================== one run

@dataclass
class Run:
    contender: str
    database: str
    batch: int
    clients: int
    result: dict[str, Any]

    @property
    def rate(self) -> float:
        return float(self.result["rate"])


def drive(
    loadgen: Path, url: str, clients: int, seconds: float, *, bodies: Submissions | None = None
) -> dict[str, Any]:
    cmd = [str(loadgen), f"-url={url}", f"-clients={clients}", f"-seconds={seconds}"]
    if bodies is None:
        cmd += [f"-entry-size={ENTRY_BYTES}", "-answer=index", "-content-type=application/octet-stream"]
    else:
        cmd += [f"-bodies={bodies.path}", f"-records-per-body={bodies.batch}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_tessera(loadgen: Path, posix: Path, work: Path, clients: int, seconds: float) -> Run:
    work.mkdir(parents=True)
    with tessera_server(posix, work) as (url, pid):
        cpu = cpu_seconds(pid)
        result = drive(loadgen, url, clients, seconds)
        result["server_cpu"] = cpu_seconds(pid) - cpu
    return _report(Run("tessera", "posix", 1, clients, result))


def run_notary(loadgen: Path, work: Path, database_url: str | None, bodies: Submissions, clients: int,
               seconds: float, workers: int, profile: Path | None = None, http: str = "uvicorn") -> Run:
    work.mkdir(parents=True)
    with fresh_database(database_url) as url, notary_server(work, url, workers, http) as (base, pid):
        register(base, bodies.keys)
        spy = None
        if profile is not None:
            spy = subprocess.Popen([_py_spy() or "py-spy", "record", "--pid", str(pid), "--subprocesses",
                                    "--duration", str(int(seconds)), "--rate", "250", "--format", "raw",
                                    "--output", str(profile), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = cpu_seconds(pid)
        result = drive(loadgen, f"{base}/v1/records", clients, seconds, bodies=bodies)
        result["server_cpu"] = cpu_seconds(pid) - cpu
        if spy is not None:
            spy.wait(timeout=120)
    database = "postgresql" if database_url else "sqlite"
    server = "" if http == "uvicorn" else f", {http}"
    return _report(Run(f"bidtrace ({workers} worker{'s' if workers > 1 else ''}{server})", database, bodies.batch,
                       clients, result))


def _cpu_per_record(run: Run) -> str:
    records = run.result["records"]
    return f"{run.result['server_cpu'] / records * 1e6:,.0f} µs/record" if records else "-"


def _report(run: Run) -> Run:
    r = run.result
    print(f"  {run.contender:22} {run.database:10} batch {run.batch:>5,} clients {run.clients:>5,}: "
          f"{fmt_rate(r['rate']):>10} p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
          f"({r['records']:,} in {r['seconds']:.1f}s{', bodies used up' if r['exhausted'] else ''}; "
          f"server CPU {_cpu_per_record(run)})"
          + (f" {r['busy']:,} answered 503 and sent again after Retry-After (the answered attempt alone: "
             f"p50 {r['attempt_p50_ms']:.1f} ms p99 {r['attempt_p99_ms']:.1f} ms)" if r.get("busy") else "")
          + (f" ERRORS {r['errors']}: {r['first_errors'][:2]}" if r["errors"] else ""), flush=True)
    return run


# ====================================================================== profile

def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


STAGES = [  # first match walking a sample's stack from the innermost frame outwards
    ("waiting (idle threads, event loop poll, queue/lock waits)",
     ("select", "poll", "wait", "_wait_for_tstate_lock", "get (queue", "acquire", "sleep", "readinto (socket")),
    ("SQL commit (fsync)", ("_commit_impl", "commit (sqlalchemy")),
    ("sequencer messages between workers and sequencer", ("notary/sequencer.py",)),
    ("SQL statements (SQLAlchemy + driver)", ("sqlalchemy", "sqlite3", "psycopg")),
    ("signature check (verify_signature)", ("verify_signature",)),
    ("receipts (Ed25519 sign, dicts)", ("_receipts",)),
    ("record schema (validate_record, pydantic)", ("validate_record",)),
    ("RFC 8785 canonical_bytes", ("canonical_bytes",)),
    ("hashing, batch trees (leaf_hash, batch_tree, CompactRange)", ("leaf_hash", "batch_tree", "append (notary")),
    ("group append bookkeeping (_append_group)", ("_append_group",)),
    ("JSON in and out, SubmissionIn (FastAPI, pydantic)",
     ("request_body_to_args", "_get_body", "json", "model_validate (pydantic")),
    ("POST /v1/records in front of the framework (Intake, BodyGuard)", ("notary/api/intake", "notary/api/guard")),
    ("HTTP server (uvicorn protocol, httptools/h11)", ("uvicorn", "httptools", "h11")),
    ("FastAPI/Starlette routing, middleware, response", ("fastapi", "starlette")),
]


def profile_report(path: Path) -> str:
    """Where the notary's busy threads were, by stage, from py-spy's collapsed stacks (all processes)."""
    by_stage: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in reversed(frames):
            stage = next((s for s, marks in STAGES if any(m in frame for m in marks)), None)
            if stage is not None:
                by_stage[stage] += n
                break
        else:
            by_stage["other Python (interpreter, asyncio, glue)"] += n
    rows = [[stage, f"{n / total:.1%}"] for stage, n in by_stage.most_common()]
    return (f"{total:,} samples of busy threads (py-spy leaves out threads it sees waiting)\n"
            + table(["stage (innermost frame that names one)", "share"], rows))


# ====================================================================== main

def ratio_rows(runs: list[Run]) -> list[list[str]]:
    tessera = {r.clients: r for r in runs if r.contender == "tessera"}
    rows = []
    for r in runs:
        if r.contender == "tessera" or r.batch != 1 or r.clients not in tessera:
            continue
        t = tessera[r.clients]
        rows.append([f"{r.clients:,}", r.contender, fmt_rate(r.rate), fmt_rate(t.rate),
                     f"{r.rate / t.rate:.2f}×" if t.rate else "-",
                     f"{r.result['p50_ms']:.1f} / {t.result['p50_ms']:.1f} ms",
                     f"{r.result['p99_ms']:.1f} / {t.result['p99_ms']:.1f} ms"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default=",".join(map(str, LEVELS)), help="concurrency levels, one POST each")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound of each run")
    parser.add_argument("--workers", default="1,2", help="notary HTTP worker processes to try at each level")
    parser.add_argument("--singles", type=int, default=150_000, help="pre-signed one-record submissions")
    parser.add_argument("--batches", type=int, default=400, help="pre-signed submissions of 1,000 records")
    parser.add_argument("--batch-clients", default="1,4", help="concurrent clients for batches of 1,000")
    parser.add_argument("--postgres-url", default=os.environ.get("BIDTRACE_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--quick", action="store_true", help="1, 128 and 1,024 clients, 5 s runs")
    parser.add_argument("--http", default="uvicorn",
                        help="the notary's HTTP servers to try, one-record POSTs: uvicorn, granian (one worker)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds, args.singles, args.batches = "1,128,1024", 5.0, 60_000, 150
    levels = [int(c) for c in args.clients.split(",") if c]
    workers = [int(w) for w in args.workers.split(",") if w]

    print(f"# Ingestion side by side: bidtrace notary and Tessera POSIX\n{machine()}\n", flush=True)
    loadgen, posix = build_tools()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bidtrace-ingest-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        singles = write_submissions(tmp / "singles.bin", 1, args.singles)
        batches = write_submissions(tmp / "batches.bin", 1000, args.batches)
        print(f"signed {singles.count:,} one-record and {batches.count:,} 1,000-record submissions in "
              f"{time.perf_counter() - t0:.0f}s (before any clock starts)\n", flush=True)
        n = 0
        print("## One entry per POST", flush=True)
        for clients in levels:
            n += 1
            runs.append(run_tessera(loadgen, posix, tmp / f"{n:02d}-tessera-c{clients}", clients, args.seconds))
            for w in workers:
                for http in args.http.split(","):
                    n += 1
                    runs.append(run_notary(loadgen, tmp / f"{n:02d}-notary-c{clients}-w{w}-{http}", None, singles,
                                           clients, args.seconds, w, http=http))
        print("\n## Batches of 1,000 records per POST", flush=True)
        with postgres(args.postgres_url, tmp) as pg_url:
            databases: list[str | None] = [None] + ([pg_url] if pg_url else [])
            for db in databases:
                for clients in [int(c) for c in args.batch_clients.split(",") if c]:
                    for w in workers:
                        n += 1
                        runs.append(run_notary(loadgen, tmp / f"{n:02d}-notary-batch-c{clients}-w{w}", db, batches,
                                               clients, args.seconds, w))
            if pg_url is None:
                print("  (PostgreSQL skipped: not installed and BIDTRACE_BENCH_POSTGRES_URL unset)")
        profile = None
        if not args.no_profile and _py_spy():
            level, w = max(c for c in levels if c <= 128), max(workers)
            profile = tmp / "notary.pyspy"
            print(f"\n## Profile: py-spy, every process and thread of the notary ({w} workers), one-record POSTs, "
                  f"{level:,} clients", flush=True)
            run_notary(loadgen, tmp / "profile", None, singles, level, args.seconds, w, profile=profile)

        print("\n" + table(
            ["contender", "database", "batch", "clients", "records/s", "p50", "p90", "p99", "acked", "time",
             "server CPU/record", "503 (sent again)", "errors"],
            [[r.contender, r.database, f"{r.batch:,}", f"{r.clients:,}", fmt_rate(r.rate),
              f"{r.result['p50_ms']:.1f} ms", f"{r.result['p90_ms']:.1f} ms", f"{r.result['p99_ms']:.1f} ms",
              f"{r.result['records']:,}", f"{r.result['seconds']:.1f}s", _cpu_per_record(r),
              f"{r.result.get('busy', 0):,}", str(r.result["errors"])]
             for r in runs]))
        print("\nbidtrace / Tessera, one entry per POST (rate: >1 means bidtrace is faster; latencies ours / theirs)")
        print(table(["clients", "bidtrace", "bidtrace rate", "Tessera rate", "ratio", "p50", "p99"],
                    ratio_rows(runs)))
        if profile is not None and profile.exists():
            print("\n" + profile_report(profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
