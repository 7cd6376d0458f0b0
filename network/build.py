"""Fabric's binaries: found where the operator put them, in the cache, or built offline from a source archive.

Resolution order, and the first that holds is used (and said):
1. a folder given explicitly (`--bin DIR` or `BIDTRACE_FABRIC_BIN`): used as given, never written into;
2. the cache, `~/.cache/bidtrace/fabric-2.5.16/bin` (or under `$XDG_CACHE_HOME`);
3. a source archive of Fabric v2.5.16 (`--source FILE|DIR`, `BIDTRACE_FABRIC_SOURCE`, or the trimmed one at
   `../shared/third_party/fabric/` beside the project), checked against its pinned sha256 and built into
   the cache with the local Go toolchain, offline (vendored modules, no module proxy).
Every folder is checked by running `peer version`, so a binary of another Fabric release is refused.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FABRIC_VERSION = "2.5.16"
# Commit that the v2.5.16 tag names (release commit, hyperledger/fabric#5499).
FABRIC_COMMIT = "f871cf92a026aba7b12e6f06d71ded3e6e659d71"
FABRIC_MODULE = "github.com/hyperledger/fabric"
SOURCE_ARCHIVE = f"fabric-{FABRIC_VERSION}-src.tar.xz"
# sha256 of the trimmed source archive, as published with it in shared/third_party/fabric/README.md.
SOURCE_SHA256 = "546026e3d13dfaf136738745278cc32b984b4faa4e4a32ea32ae77a2eaf74ef1"
COMMANDS = ("peer", "orderer", "configtxgen", "configtxlator", "osnadmin", "cryptogen")
MIN_GO = (1, 26, 4)
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Say = Callable[[str], None]


class BuildError(Exception):
    """No usable binaries: the message says what was tried and how to fix it."""


@dataclass(frozen=True)
class Binaries:
    """Where the Fabric commands are, and how they were found (`given`, `cache` or `built`)."""

    bin_dir: Path
    origin: str = "cache"

    def path(self, command: str) -> Path:
        return self.bin_dir / command

    def missing(self) -> list[str]:
        return [c for c in COMMANDS if not (self.path(c).is_file() and os.access(self.path(c), os.X_OK))]

    def present(self) -> bool:
        return not self.missing()


def cache_bin_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bidtrace" / f"fabric-{FABRIC_VERSION}" / "bin"


def shared_source() -> Path:
    """The trimmed source archive that travels beside the project (it may be absent)."""
    return PROJECT_ROOT.parent / "shared" / "third_party" / "fabric" / SOURCE_ARCHIVE


def binaries() -> Binaries:
    """The folder the network runs from, without building: BIDTRACE_FABRIC_BIN if set, else the cache."""
    explicit = os.environ.get("BIDTRACE_FABRIC_BIN")
    if explicit:
        return Binaries(Path(explicit).expanduser(), "given")
    return Binaries(cache_bin_dir(), "cache")


def peer_version(bins: Binaries) -> str:
    """The version `peer version` reports; BuildError when the folder is incomplete or the peer will not run."""
    if not bins.bin_dir.is_dir():
        raise BuildError(f"the Fabric binaries folder {bins.bin_dir} does not exist")
    missing = bins.missing()
    if missing:
        raise BuildError(f"{bins.bin_dir} lacks {', '.join(missing)} (Fabric needs {', '.join(COMMANDS)})")
    try:
        proc = subprocess.run([str(bins.path("peer")), "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{bins.path('peer')} does not run: {exc}") from exc
    found = re.search(r"^\s*Version:\s*(\S+)", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or found is None:
        output = (proc.stdout + proc.stderr).strip()[-500:]
        raise BuildError(f"`{bins.path('peer')} version` failed (exit {proc.returncode}): {output}")
    return found.group(1)


def _check(bins: Binaries) -> Binaries:
    version = peer_version(bins)
    if version != FABRIC_VERSION:
        raise BuildError(f"{bins.bin_dir}: peer reports Fabric {version}, bidtrace runs {FABRIC_VERSION}")
    return bins


def resolve(
    bin_dir: Path | None = None, source: Path | None = None, force: bool = False, say: Say | None = None,
) -> Binaries:
    """The first usable binaries in the order of this module's docstring; build from source if need be."""
    say = say or _stderr
    explicit = bin_dir or (Path(os.environ["BIDTRACE_FABRIC_BIN"]) if os.environ.get("BIDTRACE_FABRIC_BIN") else None)
    if explicit is not None:
        bins = _check(Binaries(explicit.expanduser().resolve(), "given"))
        say(f"using Fabric {FABRIC_VERSION} binaries in {bins.bin_dir} (given folder)")
        return bins
    cache = Binaries(cache_bin_dir(), "cache")
    if cache.present() and not force:
        if source is not None:
            say(f"the cache is filled; pass --force to rebuild it from {source}")
        try:
            _check(cache)
        except BuildError as exc:
            say(f"ignoring the cache: {exc}")
        else:
            say(f"using Fabric {FABRIC_VERSION} binaries in {cache.bin_dir} (cache)")
            return cache
    archive = source or (Path(os.environ["BIDTRACE_FABRIC_SOURCE"]) if os.environ.get("BIDTRACE_FABRIC_SOURCE")
                         else None)
    if archive is None and shared_source().is_file():
        archive = shared_source()
    if archive is None:
        raise BuildError(_nothing_found(cache.bin_dir))
    bins = build_from_source(archive.expanduser().resolve(), cache.bin_dir, say)
    say(f"using Fabric {FABRIC_VERSION} binaries in {bins.bin_dir} (built from {archive})")
    return bins


def _nothing_found(cache: Path) -> str:
    return (
        f"no Fabric {FABRIC_VERSION} binaries: none given, none in the cache {cache}, and no source archive "
        f"({SOURCE_ARCHIVE} is not at {shared_source().parent}).\n"
        "Any of these works:\n"
        "  • `bidtrace network build --bin DIR` or BIDTRACE_FABRIC_BIN=DIR: a folder holding "
        f"{', '.join(COMMANDS)} of Fabric {FABRIC_VERSION};\n"
        f"  • `bidtrace network build --source FILE|DIR`: the Fabric v{FABRIC_VERSION} source "
        f"({SOURCE_ARCHIVE}, sha256 {SOURCE_SHA256[:16]}…, or a clone of the tag), built offline with Go >= "
        f"{'.'.join(map(str, MIN_GO))};\n"
        f"  • with internet: Fabric's official v{FABRIC_VERSION} release archive for your platform (hyperledger/"
        f"fabric, release v{FABRIC_VERSION}), unpacked, and its bin/ folder given with --bin."
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_tree(source: Path, work: Path, say: Say) -> Path:
    """The Fabric source folder: `source` itself, or the checked archive unpacked into `work`."""
    if source.is_dir():
        tree = source
    elif source.is_file():
        found = sha256_file(source)
        if found != SOURCE_SHA256:
            raise BuildError(f"{source} has sha256 {found}, the Fabric {FABRIC_VERSION} source archive has "
                             f"{SOURCE_SHA256}: refusing to build from it")
        say(f"unpacking {source.name} (sha256 {found[:16]}…, as pinned)")
        try:
            with tarfile.open(source, "r:*") as tar:
                tar.extractall(work, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BuildError(f"cannot unpack {source}: {exc}") from exc
        roots = [p for p in work.iterdir() if p.is_dir()]
        tree = roots[0] if len(roots) == 1 else work
    else:
        raise BuildError(f"Fabric source {source} does not exist")
    go_mod = tree / "go.mod"
    if not go_mod.is_file() or f"module {FABRIC_MODULE}\n" not in go_mod.read_text(errors="replace"):
        raise BuildError(f"{tree} is not Fabric's source: no go.mod declaring module {FABRIC_MODULE}")
    if not (tree / "vendor" / "modules.txt").is_file():
        raise BuildError(f"{tree} has no vendor/ folder: an offline build needs Fabric's vendored modules")
    return tree


def _go() -> str:
    go = shutil.which("go") or next(
        (str(p) for p in (Path("/usr/local/go/bin/go"), Path.home() / "go" / "bin" / "go") if p.is_file()), None
    )
    if go is None:
        raise BuildError(f"the Go toolchain is not installed (Fabric {FABRIC_VERSION} needs Go >= "
                         f"{'.'.join(map(str, MIN_GO))}); or give built binaries with --bin")
    return go


def _go_version(go: str, env: dict[str, str]) -> str:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=env).stdout.strip()
    digits = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", out)
    if digits is None:
        raise BuildError(f"cannot read the Go version from {out!r}")
    version = tuple(int(d or 0) for d in digits.groups())
    if version < MIN_GO:
        raise BuildError(f"Fabric {FABRIC_VERSION} needs Go >= {'.'.join(map(str, MIN_GO))}, found {out}")
    return out


def build_from_source(source: Path, target: Path, say: Say | None = None) -> Binaries:
    """Build the six commands from `source` (archive or folder) into `target`, offline; replace it whole."""
    say = say or _stderr
    go = _go()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update({"CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GOTOOLCHAIN": "local",
                "GOSUMDB": "off", "GO111MODULE": "on"})
    if os.environ.get("GOCACHE"):
        env["GOCACHE"] = os.environ["GOCACHE"]
    go_version = _go_version(go, env)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fabric-src-", dir=target.parent) as tmp:
        work = Path(tmp)
        tree = _source_tree(source, _mkdir(work / "src"), say)
        staging = work / "bin"
        ldflags = (f"-X {FABRIC_MODULE}/common/metadata.Version={FABRIC_VERSION} "
                   f"-X {FABRIC_MODULE}/common/metadata.CommitSHA={FABRIC_COMMIT[:7]}")
        say(f"building Fabric {FABRIC_VERSION} ({', '.join(COMMANDS)}) with {go_version}, offline")
        started = time.monotonic()
        proc = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(staging) + os.sep,
             *[f"./cmd/{c}" for c in COMMANDS]],
            cwd=tree, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise BuildError(f"go build of Fabric {FABRIC_VERSION} failed:\n{proc.stderr.strip()[-4000:]}")
        elapsed = time.monotonic() - started
        built = _check(Binaries(staging, "built"))
        info = {"fabric_version": FABRIC_VERSION, "commit": FABRIC_COMMIT, "go": go_version,
                "source": source.name, "source_sha256": SOURCE_SHA256 if source.is_file() else None,
                "commands": list(COMMANDS), "build_seconds": round(elapsed, 1)}
        (built.bin_dir / "BUILD-INFO").write_text(json.dumps(info, indent=2) + "\n")
        # Swap in the whole folder at once, so a failed or interrupted build never leaves half a cache.
        old = work / "old"
        if target.exists():
            target.rename(old)
        staging.rename(target)
    say(f"built {', '.join(COMMANDS)} in {elapsed:.0f} s into {target}")
    return Binaries(target, "built")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m network.build [--force] [--bin DIR] [--source FILE|DIR]`: print the binaries' folder."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m network.build", description="Find or build Fabric's binaries.")
    parser.add_argument("--bin", type=Path, help="a folder of Fabric binaries to use as given")
    parser.add_argument("--source", type=Path, help="Fabric source archive or folder to build from")
    parser.add_argument("--force", action="store_true", help="rebuild from source even if the cache is good")
    args = parser.parse_args(argv)
    try:
        result = resolve(args.bin, args.source, args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
