#!/usr/bin/env bash
# Make SeaweedFS's `weed` available to the media-store tests (`python -m network.seaweedfs`): the binary in
# BIDTRACE_SEAWEEDFS_BIN, else the cache (~/.cache/bidtrace/seaweedfs/<version>/weed), else a build of the pinned
# module version fetched through the Go module proxy (several minutes on two cores). A no-op when the cache is good.
# Without it this fails when CI=true (the media-store tests fail there too), and only warns otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python

started=$(date +%s)
if binary=$("$python" -m network.seaweedfs); then
    echo "seaweedfs.sh: SeaweedFS ready at $binary ($(( $(date +%s) - started )) s)"
    exit 0
fi
if [ "${CI:-}" = true ]; then
    echo "seaweedfs.sh: SeaweedFS is required in CI but could not be found or built (see above);" \
         "the media-store tests cannot run" >&2
    exit 1
fi
echo "seaweedfs.sh: warning: no SeaweedFS binary (see above); the media-store tests will be skipped" >&2
exit 0
