"""Fabric's binaries, built from the Go module proxy at a pinned commit into a cache outside the repository.

Fabric's go.mod says `module github.com/hyperledger/fabric` (no /v2 suffix), so the proxy will not serve the
tag `v2.5.16`; the tag's commit is addressed by its Go pseudo-version instead. Building is a no-op when every
binary is present and was built from the same module version (recorded in `BUILD-INFO`).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FABRIC_VERSION = "2.5.16"
# Commit that the v2.5.16 tag names (release commit, hyperledger/fabric#5499).
FABRIC_COMMIT = "f871cf92a026aba7b12e6f06d71ded3e6e659d71"
FABRIC_MODULE = "github.com/hyperledger/fabric"
COMMANDS = ("peer", "orderer", "configtxgen", "osnadmin", "cryptogen", "configtxlator")
MIN_GO = (1, 26, 4)


class BuildError(Exception):
    """The binaries could not be built; the message says which step failed and how to fix it."""


@dataclass(frozen=True)
class Binaries:
    """Where the Fabric commands are, once built."""

    bin_dir: Path

    def path(self, command: str) -> Path:
        return self.bin_dir / command

    def present(self) -> bool:
        return all(self.path(c).is_file() and os.access(self.path(c), os.X_OK) for c in COMMANDS)


def default_bin_dir() -> Path:
    override = os.environ.get("BIDTRACE_FABRIC_BIN")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bidtrace" / f"fabric-{FABRIC_VERSION}" / "bin"


def binaries() -> Binaries:
    return Binaries(default_bin_dir())


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("the Go toolchain is not on PATH; install Go >= 1.26.4 (see .ci/fabric.sh)")
    return go


def _go_env(gopath_cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env.setdefault("GOTOOLCHAIN", "local")
    env["GO111MODULE"] = "on"
    return env


def _check_go_version(go: str) -> str:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    digits = out.removeprefix("go").split("-")[0].split(".")
    try:
        version = tuple(int(d) for d in digits[:3]) + (0,) * (3 - len(digits[:3]))
    except ValueError as exc:
        raise BuildError(f"cannot read the Go version from {out!r}") from exc
    if version < MIN_GO:
        wanted = ".".join(map(str, MIN_GO))
        raise BuildError(f"Fabric {FABRIC_VERSION} needs Go >= {wanted}, found {out}")
    return out


def module_version(go: str) -> str:
    """The pseudo-version of the pinned commit, as the module proxy names it."""
    override = os.environ.get("BIDTRACE_FABRIC_MODULE_VERSION")
    if override:
        return override
    with tempfile.TemporaryDirectory(prefix="bidtrace-fabric-") as tmp:
        proc = subprocess.run(
            [go, "list", "-m", "-json", f"{FABRIC_MODULE}@{FABRIC_COMMIT}"],
            cwd=tmp, capture_output=True, text=True, env=_go_env(),
        )
    if proc.returncode != 0:
        raise BuildError(
            f"the Go module proxy did not resolve {FABRIC_MODULE}@{FABRIC_COMMIT} (Fabric v{FABRIC_VERSION}): "
            f"{proc.stderr.strip()}\nIf the proxy serves the commit only by its full pseudo-version, set "
            "BIDTRACE_FABRIC_MODULE_VERSION=v1.4.0-rc1.0.<yyyymmddhhmmss>-<12 hex of the commit>."
        )
    version = str(json.loads(proc.stdout)["Version"])
    return version


def build(force: bool = False, log: "TextLog | None" = None) -> Binaries:
    """Build the Fabric commands into the cache unless they are there already."""
    target = binaries()
    info_file = target.bin_dir / "BUILD-INFO"
    if target.present() and info_file.exists() and not force:
        return target
    say = log or TextLog()
    go = _go()
    go_version = _check_go_version(go)
    version = module_version(go)
    say(f"building Fabric v{FABRIC_VERSION} ({FABRIC_MODULE}@{version}) with {go_version} into {target.bin_dir}")
    target.bin_dir.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    env["GOBIN"] = str(target.bin_dir)
    ldflags = " ".join(
        [
            f"-X {FABRIC_MODULE}/common/metadata.Version={FABRIC_VERSION}",
            f"-X {FABRIC_MODULE}/common/metadata.CommitSHA={FABRIC_COMMIT[:7]}",
            "-s -w",
        ]
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bidtrace-fabric-") as tmp:
        proc = subprocess.run(
            [go, "install", "-trimpath", f"-ldflags={ldflags}",
             *[f"{FABRIC_MODULE}/cmd/{c}@{version}" for c in COMMANDS]],
            cwd=tmp, env=env, capture_output=True, text=True,
        )
    if proc.returncode != 0:
        raise BuildError(f"go install of Fabric {version} failed:\n{proc.stderr.strip()[-4000:]}")
    elapsed = time.monotonic() - started
    info = {
        "fabric_version": FABRIC_VERSION,
        "commit": FABRIC_COMMIT,
        "module_version": version,
        "go": go_version,
        "commands": list(COMMANDS),
        "build_seconds": round(elapsed, 1),
    }
    info_file.write_text(json.dumps(info, indent=2) + "\n")
    say(f"built {', '.join(COMMANDS)} in {elapsed:.0f} s")
    return target


class TextLog:
    def __call__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def main() -> int:
    force = "--force" in sys.argv[1:]
    try:
        result = build(force=force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
