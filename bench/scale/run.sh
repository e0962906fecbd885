#!/usr/bin/env bash
# bench/scale/run.sh: scale benchmark of the control plane (swarmgate control)
# against a fake Docker Engine API of SERVICES services × TASKS tasks, with
# EDGES edge processes. See bench/README.md ("Scale").
#
# Knobs (environment), passed to bench/scale/cmd/scalerun as flags:
#   SERVICES=10000 TASKS=5 EDGES=50 REPS=5   size and repetitions
#   IDLE=10s IDLE_WINDOWS=3                  idle CPU windows (all edges)
#   EDGE_KIND=edge                           edge (swarmgate edge --control) or client (a control.Client alone)
#   SWARMGATE_BIN=                           a prebuilt swarmgate (default: go build ./cmd/swarmgate)
# Extra arguments go to scalerun as they are (go run ./bench/scale/cmd/scalerun -h).
# Everything it starts listens on 127.0.0.1 and is stopped on exit, Ctrl-C included.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TMP=$(mktemp -d /tmp/swarmgate-scale-bin.XXXXXX)
RUN_PID=
cleanup() {
	if [[ -n $RUN_PID ]]; then
		kill -TERM "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$TMP/scalerun" ./bench/scale/cmd/scalerun
args=(
	-services "${SERVICES:-10000}" -tasks "${TASKS:-5}" -edges "${EDGES:-50}" -reps "${REPS:-5}"
	-idle "${IDLE:-10s}" -idle-windows "${IDLE_WINDOWS:-3}" -edge-kind "${EDGE_KIND:-edge}"
)
if [[ -n ${SWARMGATE_BIN:-} ]]; then
	args+=(-swarmgate "$SWARMGATE_BIN")
fi
echo "[scale] uptime before: $(uptime)" >&2
"$TMP/scalerun" "${args[@]}" "$@" &
RUN_PID=$!
status=0
wait "$RUN_PID" || status=$?
RUN_PID=
echo "[scale] uptime after: $(uptime)" >&2
exit "$status"
