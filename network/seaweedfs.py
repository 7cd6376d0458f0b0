"""The province's media store: SeaweedFS (S3 API, scales out to many volume servers), its binary and its server.

The binary is found in `BIDTRACE_SEAWEEDFS_BIN` (a `weed` file, used as given), else in the cache
(`~/.cache/bidtrace/seaweedfs/<version>/weed`, or under `$XDG_CACHE_HOME`), else built into the cache from
the pinned module version fetched through the Go module proxy. `go install` refuses the module's replace
directives, so the module is downloaded (`go mod download -json`) and `./weed` built inside a writable
copy of it. `python -m network.seaweedfs` prints the binary's path, building it when needed.

`SeaweedServer` runs `weed server -s3` on 127.0.0.1 with free ports and a data folder of its own, and can be
stopped hard (kill -9) and started again on the same data and ports.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

MODULE = "github.com/seaweedfs/seaweedfs"
VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
REGION = "us-east-1"  # SeaweedFS accepts any; boto3 signs with one


class SeaweedError(Exception):
    pass


def cache_binary() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bidtrace" / "seaweedfs" / VERSION / "weed"


def _works(binary: Path) -> bool:
    try:
        run = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return run.returncode == 0 and "version" in run.stdout.lower()


def resolve() -> Path | None:
    """The `weed` binary to use, or None when there is none yet (see `build`)."""
    given = os.environ.get("BIDTRACE_SEAWEEDFS_BIN")
    if given:
        if not _works(Path(given)):
            raise SeaweedError(f"BIDTRACE_SEAWEEDFS_BIN={given} is not a working weed binary")
        return Path(given)
    cached = cache_binary()
    return cached if cached.is_file() and _works(cached) else None


def build() -> Path:
    """Build `weed` at the pinned version into the cache (minutes: it is a large program)."""
    if shutil.which("go") is None:
        raise SeaweedError("building SeaweedFS needs the Go toolchain (go) on PATH")
    target = cache_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="seaweedfs-build-") as work:
        fetched = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], cwd=work, env=env,
                                 capture_output=True, text=True)
        if fetched.returncode != 0:
            raise SeaweedError(f"go mod download {MODULE}@{VERSION} failed: {fetched.stdout[-800:]}"
                               f"{fetched.stderr[-800:]}")
        source = Path(json.loads(fetched.stdout)["Dir"])
        copy = Path(work) / "src"
        shutil.copytree(source, copy)  # the module cache is read-only; the build writes go.sum entries
        for folder, _, files in os.walk(copy):
            for name in (folder, *(os.path.join(folder, f) for f in files)):
                os.chmod(name, os.stat(name).st_mode | 0o200)
        partial = target.with_name("weed.part")
        built = subprocess.run(["go", "build", "-o", str(partial), "./weed"], cwd=copy, env=env,
                               capture_output=True, text=True)
        if built.returncode != 0:
            raise SeaweedError(f"go build ./weed failed: {built.stderr[-2000:]}")
        os.replace(partial, target)
    if not _works(target):
        raise SeaweedError(f"the weed built at {target} does not run")
    return target


def _free_ports(n: int) -> list[int]:
    """`n` loopback ports, each free together with the one 10000 above it (SeaweedFS's gRPC ports)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and port not in ports:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            ports.append(port)
    return ports


class SeaweedServer:
    """`weed server -s3` with one master, volume server and filer, on loopback, with one S3 identity."""

    def __init__(self, binary: Path, data: Path, access_key: str, secret_key: str) -> None:
        self.binary, self.data = binary, data
        self.access_key, self.secret_key = access_key, secret_key
        self.ports = dict(zip(("master", "volume", "filer", "s3"), _free_ports(4), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.data / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "media", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        config.chmod(0o600)
        p = self.ports
        args = [str(self.binary), "server", f"-dir={self.data / 'store'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + 10000}",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + 10000}",
                f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + 10000}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + 10000}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={config}", "-master.telemetry=false", "-volume.max=8",
                "-master.volumeSizeLimitMB=64"]
        (self.data / "store").mkdir(exist_ok=True)
        log = (self.data / "weed.log").open("ab")
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise SeaweedError(f"weed server exited with {self._process.returncode}; see {self.data / 'weed.log'}")
            if time.monotonic() > deadline:
                self.kill()
                raise SeaweedError(f"weed server did not answer S3 on {self.endpoint} within {timeout:.0f} s")
            time.sleep(0.25)

    def _answers(self) -> bool:
        """True once the S3 gateway serves a signed request (a bucket listing) and the filer is up."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                              aws_secret_access_key=self.secret_key, region_name=REGION,
                              config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3))
        try:
            client.list_buckets()
            return True
        except (BotoCoreError, ClientError):
            return False

    def kill(self) -> None:
        """Stop at once, as a power cut would (kill -9 of its process group)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(30)
        self._process = None

    def stop(self, grace: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(30)
        self._process = None

    def __enter__(self) -> "SeaweedServer":
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main() -> int:
    try:
        found = resolve()
        if found is None:
            print(f"building SeaweedFS {VERSION} into {cache_binary()} (several minutes)", file=sys.stderr, flush=True)
            found = build()
    except SeaweedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
