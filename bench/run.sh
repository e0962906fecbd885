#!/usr/bin/env bash
# bench/run.sh: side-by-side HTTP reverse-proxy benchmark on loopback.
#
# Runs swarmgate's edge, NGINX, HAProxy and net/http/httputil.ReverseProxy
# one at a time in front of the same backend, each proxy pinned to one core and
# the backend and load generators to the other, and reports for each:
# throughput (wrk, closed loop), p50/p99 latency at a fixed rate (vegeta, open
# loop), and the proxy's CPU time per request. See bench/README.md.
#
# Knobs (environment):
#   DURATION=10     seconds of each measured run (wrk, then vegeta)
#   WARMUP=2        seconds of wrk before the measured runs
#   RATE=2000       requests/s of the fixed-rate latency run
#   CONNS=64        wrk connections
#   BODY=small      response body: small (13 B), 1k, 64k
#   PROXIES="swarmgate nginx haproxy stdproxy"   which proxies, in order
#   SUITES=http     http (tls and l4 are placeholders for now)
#   PROXY_CPU=0 LOAD_CPU=1                        core pinning
#   BACKEND_PORT=19000 PROXY_PORT=19001           loopback ports
#   SWARMGATE_BIN=  a prebuilt binary (default: `make build`, bin/swarmgate)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
RATE=${RATE:-2000}
CONNS=${CONNS:-64}
BODY=${BODY:-small}
PROXIES=${PROXIES:-swarmgate nginx haproxy stdproxy}
SUITES=${SUITES:-http}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BACKEND_PORT=${BACKEND_PORT:-19000}
PROXY_PORT=${PROXY_PORT:-19001}
SWARMGATE_BIN=${SWARMGATE_BIN:-}
HOST_HEADER=bench.local

export PATH="$PATH:/usr/sbin:/sbin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in DURATION WARMUP RATE CONNS PROXY_CPU LOAD_CPU BACKEND_PORT PROXY_PORT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
case $BODY in
small) BODY_PATH=/ ;;
1k) BODY_PATH=/1k ;;
64k) BODY_PATH=/64k ;;
*) die "BODY must be small, 1k or 64k, got '$BODY'" ;;
esac
((DURATION > 0 && DURATION <= 120)) || die "DURATION must be 1..120 seconds"
((WARMUP <= 30)) || die "WARMUP must be at most 30 seconds"
((RATE > 0 && RATE <= 100000)) || die "RATE must be 1..100000"
((CONNS > 0 && CONNS <= 4096)) || die "CONNS must be 1..4096"
((PROXY_CPU != LOAD_CPU)) || die "PROXY_CPU and LOAD_CPU must differ"
NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU)) || die "this machine has $NCPU cores; set PROXY_CPU/LOAD_CPU"

# ---------------------------------------------------------------- processes

TMP=$(mktemp -d /tmp/swarmgate-bench.XXXXXX)
PIDS=()

# stop_pid sends TERM, waits up to 5 s, then KILLs. Only our own children.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

forget_pid() {
	local pid=$1 p kept=()
	for p in ${PIDS[@]+"${PIDS[@]}"}; do
		[[ $p == "$pid" ]] || kept+=("$p")
	done
	PIDS=(${kept[@]+"${kept[@]}"})
}

cleanup() {
	local pid
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		stop_pid "$pid"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup

need_apt() { # need_apt COMMAND PACKAGE
	command -v "$1" >/dev/null && return 0
	log "installing $2"
	local sudo=
	((EUID == 0)) || sudo=sudo
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
	command -v "$1" >/dev/null || die "$2 did not install $1"
}

setup() {
	command -v go >/dev/null || die "go is required"
	need_apt taskset util-linux
	need_apt curl curl
	need_apt jq jq
	need_apt wrk wrk
	[[ " $PROXIES " != *" nginx "* ]] || need_apt nginx nginx
	[[ " $PROXIES " != *" haproxy "* ]] || need_apt haproxy haproxy
	if ! command -v vegeta >/dev/null; then
		log "installing vegeta"
		go install github.com/tsenart/vegeta/v12@v12.13.0
		command -v vegeta >/dev/null || die "vegeta not on PATH after go install"
	fi

	mkdir -p "$TMP/bin"
	log "building the backend and stdproxy"
	(cd "$ROOT" && go build -o "$TMP/bin/" ./bench/cmd/backend ./bench/cmd/stdproxy)

	SWARMGATE_ERR=
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

	# From here on every request goes to 127.0.0.1; no environment proxy may
	# intercept it.
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
}

# port_free PORT fails if something already listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_ready URL PID LOG: until URL answers 200 through the process PID.
wait_ready() {
	local url=$1 pid=$2 logf=$3 i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "process exited; its log:"
			sed 's/^/  | /' "$logf" >&2
			return 1
		fi
		if curl -fsS -o /dev/null --noproxy '*' --max-time 1 -H "Host: $HOST_HEADER" "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "no 200 from $url after 10 s; its log:"
	sed 's/^/  | /' "$logf" >&2
	return 1
}

# pinned CPU CMD...: run CMD in the background on one core; sets LAST_PID.
pinned() {
	local cpu=$1
	shift
	taskset -c "$cpu" "$@" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

start_backend() {
	port_free "$BACKEND_PORT" || die "port $BACKEND_PORT is in use (set BACKEND_PORT)"
	pinned "$LOAD_CPU" "$TMP/bin/backend" -listen "127.0.0.1:$BACKEND_PORT" >"$TMP/backend.log" 2>&1
	BACKEND_PID=$LAST_PID
	wait_ready "http://127.0.0.1:$BACKEND_PORT/" "$BACKEND_PID" "$TMP/backend.log" || die "backend did not start"
}

# ---------------------------------------------------------------- proxies
#
# start_NAME SUITE writes NAME's configuration under $TMP/NAME, starts it
# pinned to PROXY_CPU on 127.0.0.1:PROXY_PORT and sets PROXY_PID (the root of
# its process tree). The TLS and L4 suites will add their listeners here.

start_swarmgate() {
	[[ $1 == http ]] || return 1
	[[ -z $SWARMGATE_ERR ]] || { log "swarmgate: $SWARMGATE_ERR"; return 1; }
	local d=$TMP/swarmgate
	mkdir -p "$d"
	cat >"$d/routes.yaml" <<EOF
services:
  - name: bench
    labels:
      swarmgate.hosts: $HOST_HEADER
      swarmgate.port: "$BACKEND_PORT"
      swarmgate.balancer: round-robin
    endpoints: ["127.0.0.1:$BACKEND_PORT"]
EOF
	pinned "$PROXY_CPU" "$SWARMGATE_BIN" edge --http "127.0.0.1:$PROXY_PORT" --admin "" \
		--routes "$d/routes.yaml" --access-log=false --log-level warn >"$d/log" 2>&1
	PROXY_PID=$LAST_PID
	PROXY_LOG=$d/log
	CONFIG_FILE=$d/routes.yaml
}

start_nginx() {
	[[ $1 == http ]] || return 1
	local d=$TMP/nginx user=
	mkdir -p "$d"/{client_body,proxy,fastcgi,uwsgi,scgi}
	((EUID != 0)) || user="user root;"
	# Tuned as an operator tunes a reverse proxy: upstream keep-alive, and no
	# cap of 1000 requests per connection (nginx's default on both sides,
	# which the other proxies do not have). The client-side headers are the
	# ones every proxy here sets (Host, X-Forwarded-*, a request id).
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Request-Id \$request_id;
            # Enough memory buffers for the 64 KiB body: no temp files.
            proxy_buffers 16 8k;
        }
    }
}
EOF
	pinned "$PROXY_CPU" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' >"$d/log" 2>&1
	PROXY_PID=$LAST_PID
	PROXY_LOG=$d/error.log
	CONFIG_FILE=$d/nginx.conf
}

start_haproxy() {
	[[ $1 == http ]] || return 1
	local d=$TMP/haproxy
	mkdir -p "$d"
	# No "log" line anywhere: HAProxy logs nothing.
	cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 65s
    unique-id-format %[uuid()]
    unique-id-header X-Request-Id

frontend bench
    bind 127.0.0.1:$PROXY_PORT
    http-request set-header X-Forwarded-Proto http
    default_backend origin

backend origin
    server origin 127.0.0.1:$BACKEND_PORT
EOF
	pinned "$PROXY_CPU" haproxy -db -f "$d/haproxy.cfg" >"$d/log" 2>&1
	PROXY_PID=$LAST_PID
	PROXY_LOG=$d/log
	CONFIG_FILE=$d/haproxy.cfg
}

start_stdproxy() {
	[[ $1 == http ]] || return 1
	mkdir -p "$TMP/stdproxy"
	pinned "$PROXY_CPU" "$TMP/bin/stdproxy" -listen "127.0.0.1:$PROXY_PORT" \
		-backend "127.0.0.1:$BACKEND_PORT" >"$TMP/stdproxy/log" 2>&1
	PROXY_PID=$LAST_PID
	PROXY_LOG=$TMP/stdproxy/log
	CONFIG_FILE=
}

# ---------------------------------------------------------------- measuring

# tree_ticks PID: user+system CPU of PID and all its descendants, in clock
# ticks (nginx's worker is a child of its master; threads are included in
# their process's figures).
tree_ticks() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root; total = 0
			for (i = 1; i <= n; i++) {
				f = "/proc/" q[i] "/stat"
				if ((getline line < f) > 0) {
					sub(/^.*\) /, "", line)   # comm may hold spaces
					split(line, a, " ")
					total += a[12] + a[13]    # utime, stime
				}
				close(f)
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
			print total
		}'
}

# core_ticks N: "busy total" ticks of core N from /proc/stat.
core_ticks() {
	awk -v c="cpu$1" '$1 == c {
		t = 0; for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, t
	}' /proc/stat
}

CLK_TCK=$(getconf CLK_TCK)

# measure NAME PORT PID: warm-up, wrk, vegeta; appends one result line to
# $TMP/results and the raw output to $RAW. PID may be "-" (no proxy).
measure() {
	local name=$1 port=$2 pid=$3
	local url="http://127.0.0.1:$port$BODY_PATH"
	local raw=$TMP/$name.raw
	: >"$raw"

	log "$name: warm-up ${WARMUP}s"
	if ((WARMUP > 0)); then
		taskset -c "$LOAD_CPU" timeout $((WARMUP + 15)) \
			wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HEADER" "$url" >/dev/null
	fi

	log "$name: wrk -t1 -c$CONNS -d${DURATION}s"
	local p0 b0 c0 l0 p1 b1 c1 l1
	p0=$([[ $pid == - ]] && echo 0 || tree_ticks "$pid")
	b0=$(tree_ticks "$BACKEND_PID")
	c0=$(core_ticks "$PROXY_CPU")
	l0=$(core_ticks "$LOAD_CPU")
	taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) \
		wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HEADER" "$url" >"$TMP/wrk.out" 2>&1 ||
		log "$name: wrk exited with $?"
	p1=$([[ $pid == - ]] && echo 0 || tree_ticks "$pid")
	b1=$(tree_ticks "$BACKEND_PID")
	c1=$(core_ticks "$PROXY_CPU")
	l1=$(core_ticks "$LOAD_CPU")
	{
		echo "### $name: wrk -t1 -c$CONNS -d${DURATION}s --latency -H 'Host: $HOST_HEADER' $url"
		cat "$TMP/wrk.out"
		echo "proxy CPU ticks: $((p1 - p0)) (CLK_TCK $CLK_TCK); backend CPU ticks: $((b1 - b0))"
		echo "core $PROXY_CPU busy/total ticks: $c0 -> $c1; core $LOAD_CPU: $l0 -> $l1"
	} >>"$raw"

	local reqs rps non2xx sock sockn
	reqs=$(awk '/ requests in /{print $1; exit}' "$TMP/wrk.out")
	rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$TMP/wrk.out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF; exit}' "$TMP/wrk.out")
	# "Socket errors: connect 0, read 0, write 0, timeout 0", only when nonzero
	sock=$(sed -n 's/.*Socket errors: //p' "$TMP/wrk.out")
	sockn=$(awk -F'[ ,]+' '/Socket errors:/{print $5 + $7 + $9 + $11; exit}' "$TMP/wrk.out")
	reqs=${reqs:-0} rps=${rps:-0} non2xx=${non2xx:-0} sock=${sock:-none} sockn=${sockn:-0}

	local vlat=$TMP/vegeta.bin
	log "$name: vegeta ${RATE}/s for ${DURATION}s"
	local vp0 vp1
	vp0=$([[ $pid == - ]] && echo 0 || tree_ticks "$pid")
	printf 'GET %s\n' "$url" | taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) \
		vegeta attack -rate="$RATE" -duration="${DURATION}s" -keepalive=true -timeout=5s \
		-header "Host: $HOST_HEADER" >"$vlat" || log "$name: vegeta exited with $?"
	vp1=$([[ $pid == - ]] && echo 0 || tree_ticks "$pid")
	vegeta report -type=json <"$vlat" >"$TMP/vegeta.json"
	{
		echo "### $name: vegeta attack -rate=$RATE -duration=${DURATION}s -keepalive=true ($url)"
		vegeta report -type=text <"$vlat"
		echo "proxy CPU ticks during the fixed-rate run: $((vp1 - vp0))"
		echo
	} >>"$raw"
	cat "$raw" >>"$RAW"

	local p50 p99 vreq vok verr
	p50=$(jq -r '.latencies["50th"] / 1000' "$TMP/vegeta.json")
	p99=$(jq -r '.latencies["99th"] / 1000' "$TMP/vegeta.json")
	vreq=$(jq -r '.requests' "$TMP/vegeta.json")
	vok=$(jq -r '.status_codes["200"] // 0' "$TMP/vegeta.json")
	verr=$((vreq - vok))

	# One line per target: name rps p50us p99us cpu_us_per_req(max)
	# cpu_us_per_req(rate) proxy_share_of_core load_core_busy errors detail
	awk -v name="$name" -v rps="$rps" -v reqs="$reqs" -v p50="$p50" -v p99="$p99" \
		-v dp=$((p1 - p0)) -v dv=$((vp1 - vp0)) -v vreq="$vreq" -v hz="$CLK_TCK" \
		-v c0="$c0" -v c1="$c1" -v l0="$l0" -v l1="$l1" -v pid="$pid" \
		-v errs=$((non2xx + sockn + verr)) -v detail="wrk non-2xx=$non2xx socket-errors=[$sock] vegeta non-200=$verr/$vreq" '
		BEGIN {
			split(c0, a, " "); split(c1, b, " "); split(l0, c, " "); split(l1, d, " ")
			ct = b[2] - a[2]; lt = d[2] - c[2]
			if (pid == "-") { cpu = "-"; cpur = "-"; share = "-" }
			else {
				cpu = reqs > 0 ? sprintf("%.1f", dp * 1e6 / hz / reqs) : "-"
				cpur = vreq > 0 ? sprintf("%.1f", dv * 1e6 / hz / vreq) : "-"
				share = ct > 0 ? sprintf("%.0f", 100 * dp / ct) : "-"
			}
			lbusy = lt > 0 ? sprintf("%.0f", 100 * (d[1] - c[1]) / lt) : "-"
			printf "%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\n", name, rps, p50, p99, cpu, cpur, share, lbusy, errs, detail
		}' >>"$TMP/results"
}

# run_proxy SUITE NAME: start, measure, stop.
run_proxy() {
	local suite=$1 name=$2
	port_free "$PROXY_PORT" || die "port $PROXY_PORT is in use (set PROXY_PORT)"
	PROXY_PID= PROXY_LOG=/dev/null CONFIG_FILE=
	if ! "start_$name" "$suite"; then
		printf '%s\tFAILED\t%s\n' "$name" "could not start (see log above)" >>"$TMP/results"
		FAILED+=("$name")
		return 0
	fi
	if ! wait_ready "http://127.0.0.1:$PROXY_PORT$BODY_PATH" "$PROXY_PID" "$PROXY_LOG"; then
		printf '%s\tFAILED\t%s\n' "$name" "did not answer 200 (see log above)" >>"$TMP/results"
		FAILED+=("$name")
		stop_pid "$PROXY_PID"
		forget_pid "$PROXY_PID"
		return 0
	fi
	if [[ -n $CONFIG_FILE ]]; then
		{ echo "### $name configuration ($CONFIG_FILE)"; cat "$CONFIG_FILE"; echo; } >>"$RAW"
	fi
	measure "$name" "$PROXY_PORT" "$PROXY_PID"
	if [[ -s $PROXY_LOG ]]; then
		{ echo "### $name log (last 50 lines)"; tail -n 50 "$PROXY_LOG"; echo; } >>"$RAW"
	fi
	stop_pid "$PROXY_PID"
	forget_pid "$PROXY_PID"
}

# ---------------------------------------------------------------- report

# report prints the table of $TMP/results with ratios to NGINX.
report() {
	awk -F'\t' '
		$2 == "FAILED" { failed[++nf] = $1 ": " $3; next }
		{ row[++n] = $0; if ($1 == "nginx") { nrps = $2; ncpu = $5; np99 = $4 } }
		function ratio(x, y) { return (y + 0 > 0 && x != "-" && y != "-") ? sprintf("%.2f", x / y) : "-" }
		END {
			printf "%-10s %9s %7s %7s %8s %8s %6s %6s %5s | %6s %6s %6s | %s\n",
				"target", "req/s", "p50us", "p99us", "cpuus/r", "@rate", "c0prx%", "c1%", "bound",
				"thr/ng", "cpu/ng", "p99/ng", "errors"
			for (i = 1; i <= n; i++) {
				split(row[i], f, "\t")
				# Which side limited the wrk run: the proxy if it used
				# (nearly) all of its core, else the load core.
				bound = f[7] == "-" ? "-" : (f[7] >= 90 ? "proxy" : "load")
				printf "%-10s %9d %7d %7d %8s %8s %6s %6s %5s | %6s %6s %6s | %d\n",
					f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], bound,
					ratio(f[2], nrps), ratio(f[5], ncpu), ratio(f[4], np99), f[9]
			}
			for (i = 1; i <= nf; i++) printf "%-10s FAILED: %s\n", "", failed[i]
			print ""
			print "errors per target:"
			for (i = 1; i <= n; i++) { split(row[i], f, "\t"); printf "  %-10s %s\n", f[1], f[10] }
		}' "$TMP/results"
}

suite_http() {
	log "suite http: body $BODY ($BODY_PATH), $CONNS connections, ${DURATION}s runs, vegeta at $RATE/s"
	start_backend
	measure direct "$BACKEND_PORT" -
	local p
	for p in $PROXIES; do
		declare -F "start_$p" >/dev/null || die "unknown proxy '$p'"
		run_proxy http "$p"
	done
	stop_pid "$BACKEND_PID"
	forget_pid "$BACKEND_PID"
}

# The TLS (handshakes/s per core, full and resumed, ECDSA P-256) and L4
# (Gbit/s and CPU per GB through a TCP route) suites arrive with the TLS/L4
# work: each will be a suite_NAME function using the same start_PROXY hooks
# (which receive the suite name), measure-style helpers and report.
suite_tls() { log "suite tls: not implemented yet"; return 1; }
suite_l4() { log "suite l4: not implemented yet"; return 1; }

main() {
	local stamp
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	mkdir -p "$ROOT/bench/results"
	RAW=$ROOT/bench/results/$stamp.txt
	FAILED=()
	local per=$((WARMUP + 2 * DURATION)) n
	n=$(($(wc -w <<<"$PROXIES") + 1))
	log "about $((per * n + 5 * n)) s of measuring for $n targets; raw results: $RAW"

	setup
	{
		echo "swarmgate side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
		echo "machine: $NCPU cores, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
		echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "tools: $(nginx -v 2>&1 | sed 's/.*version: //'), $(haproxy -v 2>&1 | awk 'NR==1{print $1, $3}'), $(wrk -v 2>&1 | awk 'NR==1{print $1, $2}'), vegeta v12.13.0 (go install), $(go version | awk '{print $3}')"
		echo "knobs: DURATION=$DURATION WARMUP=$WARMUP RATE=$RATE CONNS=$CONNS BODY=$BODY PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU"
		echo
	} >"$RAW"

	: >"$TMP/results"
	local s status=0
	for s in $SUITES; do
		declare -F "suite_$s" >/dev/null || die "unknown suite '$s'"
		"suite_$s" || status=1
	done

	local table
	table=$(report)
	{
		echo "### summary"
		echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "$table"
	} >>"$RAW"
	echo
	echo "$table"
	echo
	echo "columns: req/s = wrk max throughput; p50us/p99us = vegeta latency at $RATE/s;"
	echo "cpuus/r = proxy CPU µs per request during the wrk run (@rate: during the vegeta run);"
	echo "c0prx% = share of core $PROXY_CPU used by the proxy; c1% = core $LOAD_CPU busy (backend + wrk);"
	echo "bound = what limited the wrk run (proxy: it used >= 90% of its core; load: the load core"
	echo "saturated first, so req/s is a lower bound for that proxy); x/ng = ratio to NGINX."
	echo "raw results: $RAW"
	((${#FAILED[@]} == 0)) || status=1
	return $status
}

main "$@"
