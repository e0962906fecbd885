#!/usr/bin/env bash
# bench/run.sh: side-by-side benchmark of swarmgate's edge, NGINX, HAProxy and
# httputil.ReverseProxy on loopback. See bench/README.md.
#
# This script only sets up: it installs what is missing, builds swarmgate and
# the helper programs, and hands the run to bench/cmd/benchrun, which renders
# the configurations of bench/conf, runs and measures every target and prints
# the tables.
#
# Knobs (environment), passed to benchrun as flags:
#   DURATION=10     seconds of each measured run (wrk, then vegeta)
#   WARMUP=2        seconds of wrk before the measured runs
#   RATE=2000       requests/s of the fixed-rate latency run
#   CONNS=64        wrk connections
#   BODY=small      response body: small (13 B), 1k, 64k
#   BODIES="small 1k 64k"   the bodies suite's bodies (small: the HTTP suite's rows)
#   IDLE_CONNS=10000 WS_CONNS=1000   connections held in the idle and ws suites
#   PROXIES="swarmgate nginx haproxy stdproxy"   which proxies, in order
#   SUITES=http,bodies,close,tls,https,l4,idle,ws   suites to run, comma or space separated (also: slow)
#   TLS_DURATION=5 TLS_CONNS=16 TLS_VERSIONS="1.3 1.2"   TLS suite (and HTTPS:
#                   requests over HTTP/1.1, HTTP/2 and HTTP/3, the same duration and loops)
#   L4_BYTES=2G L4_DURATION=10 L4_CONNS=1                L4 suite
#   SLOW_CONNS=1000 SLOW_DURATION=60                      slow suite (slowhttptest)
#   PROXY_CPU=0 LOAD_CPU=1                        core pinning
#   BACKEND_PORT=19000 PROXY_PORT=19001           loopback ports
#   SWARMGATE_BIN=  a prebuilt binary (default: `make build`, bin/swarmgate)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROXIES=${PROXIES:-swarmgate nginx haproxy stdproxy}
SUITES=${SUITES:-http,bodies,close,tls,https,l4,idle,ws}
SWARMGATE_BIN=${SWARMGATE_BIN:-}

export PATH="$PATH:/usr/sbin:/sbin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP=$(mktemp -d /tmp/swarmgate-bench-bin.XXXXXX)
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

# need_apt COMMAND PACKAGE installs PACKAGE unless COMMAND is on PATH.
need_apt() {
	command -v "$1" >/dev/null && return 0
	log "installing $2"
	local sudo=
	((EUID == 0)) || sudo=sudo
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
	command -v "$1" >/dev/null || die "$2 did not install $1"
}

command -v go >/dev/null || die "go is required"
need_apt taskset util-linux
need_apt wrk wrk
[[ " $PROXIES " != *" nginx "* ]] || need_apt nginx nginx
[[ " $PROXIES " != *" haproxy "* ]] || need_apt haproxy haproxy
[[ " ${SUITES//,/ } " != *" slow "* ]] || need_apt slowhttptest slowhttptest
[[ " ${SUITES//,/ } " != *" https "* ]] || need_apt h2load nghttp2-client
# The idle and ws suites hold tens of thousands of descriptors in the
# proxies and the client: the soft limit goes to the hard one (Go programs
# raise their own; NGINX's worker sets worker_rlimit_nofile; HAProxy its own).
# Where root may, the hard limit goes up too (HAProxy's maxconn 50000 asks
# for about 100,000; haproxy-hold.cfg lets it run with less).
((EUID != 0)) || ulimit -n 200000 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || log "could not raise ulimit -n above $(ulimit -n)"
if ! command -v vegeta >/dev/null; then
	log "installing vegeta"
	go install github.com/tsenart/vegeta/v12@v12.13.0
	command -v vegeta >/dev/null || die "vegeta not on PATH after go install"
fi

# NGINX's stream module (the L4 suite) is a separate package on Debian, and
# a dynamic module that the configuration must load.
NGINX_STREAM=
if [[ " ${SUITES//,/ } " == *" l4 "* && " $PROXIES " == *" nginx "* ]]; then
	if ! nginx -V 2>&1 | grep -q -- '--with-stream\( \|$\)'; then
		NGINX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
		if [[ ! -e $NGINX_STREAM ]]; then
			log "installing libnginx-mod-stream"
			sudo=
			((EUID == 0)) || sudo=sudo
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libnginx-mod-stream >/dev/null ||
				log "libnginx-mod-stream did not install; nginx will fail the L4 suite"
		fi
	fi
fi

log "building benchrun, the backend, stdproxy, tlsload, reqload, l4load and connhold"
(cd "$ROOT" && go build -o "$TMP/" ./bench/cmd/benchrun ./bench/cmd/backend ./bench/cmd/stdproxy ./bench/cmd/tlsload ./bench/cmd/reqload ./bench/cmd/l4load ./bench/cmd/connhold)

SWARMGATE_ERR="no binary"
if [[ " $PROXIES " == *" swarmgate "* && -z $SWARMGATE_BIN ]]; then
	log "building swarmgate (make build)"
	if make -C "$ROOT" build >"$TMP/build.log" 2>&1; then
		SWARMGATE_BIN=$ROOT/bin/swarmgate
	else
		SWARMGATE_ERR="build failed: $(grep -m1 -v '^CGO_ENABLED\|^make' "$TMP/build.log" || true)"
		log "swarmgate $SWARMGATE_ERR"
		sed 's/^/  | /' "$TMP/build.log" >&2
	fi
fi

# benchrun runs in the background so that a signal to this script reaches
# it at once (bash runs no trap while a foreground command runs); it stops
# every process it started before it exits.
cd "$ROOT"
"$TMP/benchrun" -bin "$TMP" -conf "$ROOT/bench/conf" -results "$ROOT/bench/results" \
	-swarmgate "$SWARMGATE_BIN" -swarmgate-error "$SWARMGATE_ERR" -nginx-stream-module "$NGINX_STREAM" \
	-suites "$SUITES" -proxies "$PROXIES" \
	-duration "${DURATION:-10}" -warmup "${WARMUP:-2}" -rate "${RATE:-2000}" -conns "${CONNS:-64}" -body "${BODY:-small}" \
	-bodies "${BODIES:-small 1k 64k}" -idle-conns "${IDLE_CONNS:-10000}" -ws-conns "${WS_CONNS:-1000}" \
	-tls-duration "${TLS_DURATION:-5}" -tls-conns "${TLS_CONNS:-16}" -tls-versions "${TLS_VERSIONS:-1.3 1.2}" \
	-l4-bytes "${L4_BYTES:-2G}" -l4-duration "${L4_DURATION:-10}" -l4-conns "${L4_CONNS:-1}" \
	-slow-conns "${SLOW_CONNS:-1000}" -slow-duration "${SLOW_DURATION:-60}" \
	-proxy-cpu "${PROXY_CPU:-0}" -load-cpu "${LOAD_CPU:-1}" \
	-backend-port "${BACKEND_PORT:-19000}" -proxy-port "${PROXY_PORT:-19001}" &
RUN_PID=$!
status=0
wait "$RUN_PID" || status=$?
RUN_PID=
exit "$status"
