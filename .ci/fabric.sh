#!/usr/bin/env bash
# Make Fabric's binaries available to the `fabric` tests: check the Go toolchain, then build peer,
# orderer, configtxgen, configtxlator, osnadmin and cryptogen from the Go module proxy into the cache
# (~/.cache/bidtrace/fabric-<version>/bin, or $BIDTRACE_FABRIC_BIN). Idempotent: a no-op when built.
# Exit 0 with a warning when the build is impossible here, unless BIDTRACE_REQUIRE_FABRIC=1.
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python

if ! command -v go >/dev/null 2>&1; then
    for candidate in /usr/local/go/bin "$HOME/go/bin"; do
        [ -x "$candidate/go" ] && PATH="$candidate:$PATH"
    done
fi
if ! command -v go >/dev/null 2>&1; then
    msg="Go toolchain not found: install Go >= 1.26.4 to build Fabric"
    if [ "${BIDTRACE_REQUIRE_FABRIC:-0}" = 1 ]; then echo "fabric.sh: $msg" >&2; exit 1; fi
    echo "fabric.sh: warning: $msg; the fabric tests will be skipped" >&2
    exit 0
fi

# Fabric v2.5.16 needs Go 1.26.4 or newer; take it from the module proxy when the local Go is older.
if ! "$python" - <<'PY'
import subprocess, sys
v = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
parts = [int(p) for p in v.removeprefix("go").split("-")[0].split(".")[:3]] + [0, 0]
sys.exit(0 if tuple(parts[:3]) >= (1, 26, 4) else 1)
PY
then
    export GOTOOLCHAIN=go1.26.4
fi

started=$(date +%s)
if "$python" -m network.build; then
    echo "fabric.sh: binaries ready in $(( $(date +%s) - started )) s"
    exit 0
fi
if [ "${BIDTRACE_REQUIRE_FABRIC:-0}" = 1 ]; then exit 1; fi
echo "fabric.sh: warning: Fabric binaries could not be built; the fabric tests will be skipped" >&2
exit 0
