#!/usr/bin/env bash
# Make Fabric's binaries available to the `fabric` tests (`python -m network.build`): a folder given in
# BIDTRACE_FABRIC_BIN, else the cache (~/.cache/bidtrace/fabric-2.5.16/bin), else an offline build from the
# source archive in ../shared/third_party/fabric/ (sha256 checked). A no-op when the cache is good.
# Without binaries this fails when BIDTRACE_REQUIRE_FABRIC=1 (as in CI), and only warns otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python

started=$(date +%s)
if bin_dir=$("$python" -m network.build); then
    echo "fabric.sh: Fabric binaries ready in $bin_dir ($(( $(date +%s) - started )) s)"
    exit 0
fi
if [ "${BIDTRACE_REQUIRE_FABRIC:-0}" = 1 ]; then
    echo "fabric.sh: Fabric is required here (BIDTRACE_REQUIRE_FABRIC=1) but its binaries could not be found" \
         "or built (see above); the fabric tests cannot run" >&2
    exit 1
fi
echo "fabric.sh: warning: no Fabric binaries (see above); the fabric tests will be skipped" >&2
exit 0
