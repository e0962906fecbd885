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
#   SUITES=http,tls,l4   suites to run, comma or space separated
#   TLS_DURATION=5 TLS_CONNS=16 TLS_VERSIONS="1.3 1.2"   TLS suite
#   L4_BYTES=2G L4_DURATION=10 L4_CONNS=1                L4 suite
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
SUITES=${SUITES:-http,tls,l4}
SUITES=${SUITES//,/ }
TLS_DURATION=${TLS_DURATION:-5}
TLS_DURATION=${TLS_DURATION%s}
TLS_CONNS=${TLS_CONNS:-16}
TLS_VERSIONS=${TLS_VERSIONS:-1.3 1.2}
L4_BYTES=${L4_BYTES:-2G}
L4_DURATION=${L4_DURATION:-10}
L4_DURATION=${L4_DURATION%s}
L4_CONNS=${L4_CONNS:-1}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BACKEND_PORT=${BACKEND_PORT:-19000}
PROXY_PORT=${PROXY_PORT:-19001}
SWARMGATE_BIN=${SWARMGATE_BIN:-}
HOST_HEADER=bench.local

export PATH="$PATH:/usr/sbin:/sbin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in DURATION WARMUP RATE CONNS PROXY_CPU LOAD_CPU BACKEND_PORT PROXY_PORT TLS_DURATION TLS_CONNS L4_DURATION L4_CONNS; do
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
((TLS_DURATION > 0 && TLS_DURATION <= 60)) || die "TLS_DURATION must be 1..60 seconds"
((TLS_CONNS > 0 && TLS_CONNS <= 1024)) || die "TLS_CONNS must be 1..1024"
for v in $TLS_VERSIONS; do [[ $v == 1.3 || $v == 1.2 ]] || die "TLS_VERSIONS: 1.3 and/or 1.2, got '$v'"; done
((L4_DURATION > 0 && L4_DURATION <= 120)) || die "L4_DURATION must be 1..120 seconds"
((L4_CONNS > 0 && L4_CONNS <= 64)) || die "L4_CONNS must be 1..64"
[[ $L4_BYTES =~ ^[1-9][0-9]*[KMG]?$ ]] || die "L4_BYTES must look like 2G, 512M or a byte count, got '$L4_BYTES'"
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
	# NGINX's stream module (the L4 suite) is a separate package on Debian.
	NGINX_STREAM=
	if [[ " $SUITES " == *" l4 "* && " $PROXIES " == *" nginx "* ]]; then
		if ! nginx -V 2>&1 | grep -q -- '--with-stream\( \|$\)'; then
			NGINX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
			if [[ ! -e $NGINX_STREAM ]]; then
				log "installing libnginx-mod-stream"
				local sudo=
				((EUID == 0)) || sudo=sudo
				DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libnginx-mod-stream >/dev/null ||
					log "libnginx-mod-stream did not install; nginx will fail the L4 suite"
			fi
		fi
	fi

	log "building the backend, stdproxy, tlsload and l4load"
	(cd "$ROOT" && go build -o "$TMP/bin/" ./bench/cmd/backend ./bench/cmd/stdproxy ./bench/cmd/tlsload ./bench/cmd/l4load)
	# The TLS suite's certificate: ECDSA P-256 for bench.local, self-signed.
	"$TMP/bin/tlsload" -gencert "$TMP/certs" -sni "$HOST_HEADER"
	cat "$TMP/certs/bench.crt" "$TMP/certs/bench.key" >"$TMP/certs/bench.pem" # HAProxy's format

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

# wait_ready URL PID LOG [CURL_ARGS...]: until URL answers 200 through the
# process PID.
wait_ready() {
	local url=$1 pid=$2 logf=$3 i
	shift 3
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "process exited; its log:"
			sed 's/^/  | /' "$logf" >&2
			return 1
		fi
		if curl -fsS -o /dev/null --noproxy '*' --max-time 1 -H "Host: $HOST_HEADER" "$@" "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "no 200 from $url after 10 s; its log:"
	sed 's/^/  | /' "$logf" >&2
	return 1
}

# run_wait CMD... runs CMD in the background and waits for it: bash runs no
# trap while a foreground command runs (and drops a SIGINT that the command
# survived), so a long wrk or vegeta run in the foreground would delay the
# cleanup, or skip it, until it ends. In the background it is also on the
# list of processes that cleanup stops.
run_wait() {
	local pid rc=0
	"$@" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget_pid "$pid"
	return $rc
}

# PRIO raises the priority of everything the benchmark runs (proxies, backend,
# load generators) when we may: on a machine shared with other work, CFS then
# gives the benchmark most of its cores, and every target gets the same.
PRIO=()
((EUID != 0)) || PRIO=(nice -n -10)

# pinned CPU CMD...: run CMD in the background on one core; sets LAST_PID.
pinned() {
	local cpu=$1
	shift
	"${PRIO[@]}" taskset -c "$cpu" "$@" &
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

# The HTTP suite's listener is PROXY_PORT; the TLS suite's HTTPS listener is
# PROXY_PORT and its plain HTTP one PROXY_PORT+1; the L4 suite's TCP route
# listens on PROXY_PORT (plain HTTP on PROXY_PORT+1, no HTTPS listener).
start_swarmgate() {
	[[ -z $SWARMGATE_ERR ]] || { log "swarmgate: $SWARMGATE_ERR"; return 1; }
	local d=$TMP/swarmgate
	local -a listen
	mkdir -p "$d"
	case $1 in
	http)
		cat >"$d/routes.yaml" <<EOF
services:
  - name: bench
    labels:
      swarmgate.hosts: $HOST_HEADER
      swarmgate.port: "$BACKEND_PORT"
      swarmgate.balancer: round-robin
    endpoints: ["127.0.0.1:$BACKEND_PORT"]
EOF
		listen=(--http "127.0.0.1:$PROXY_PORT" --https "")
		;;
	tls)
		cat >"$d/routes.yaml" <<EOF
services:
  - name: bench
    labels:
      swarmgate.hosts: $HOST_HEADER
      swarmgate.port: "$BACKEND_PORT"
      swarmgate.balancer: round-robin
      swarmgate.tls: bench
    endpoints: ["127.0.0.1"]
EOF
		listen=(--http "127.0.0.1:$((PROXY_PORT + 1))" --https "127.0.0.1:$PROXY_PORT" --certs "$TMP/certs")
		;;
	l4)
		cat >"$d/routes.yaml" <<EOF
services:
  - name: bulk
    labels:
      swarmgate.tcp.port: "$PROXY_PORT"
      swarmgate.port: "$BACKEND_PORT"
    endpoints: ["127.0.0.1"]
EOF
		listen=(--http "127.0.0.1:$((PROXY_PORT + 1))" --https "" --tcp-host 127.0.0.1)
		;;
	*) return 1 ;;
	esac
	pinned "$PROXY_CPU" "$SWARMGATE_BIN" edge "${listen[@]}" --admin "" \
		--routes "$d/routes.yaml" --access-log=false --log-level warn >"$d/log" 2>&1
	PROXY_PID=$LAST_PID
	PROXY_LOG=$d/log
	CONFIG_FILE=$d/routes.yaml
}

start_nginx() {
	local d=$TMP/nginx user= listen="listen 127.0.0.1:$PROXY_PORT;" tls= modules=
	mkdir -p "$d"/{client_body,proxy,fastcgi,uwsgi,scgi}
	((EUID != 0)) || user="user root;"
	case $1 in
	http) ;;
	tls)
		# The same listener with TLS, as an operator sets it up: TLS 1.2 and
		# 1.3, the AEAD suites swarmgate allows, X25519 then P-256, a shared
		# session cache and (stateless) session tickets.
		listen="listen 127.0.0.1:$PROXY_PORT ssl;"
		tls="ssl_certificate $TMP/certs/bench.crt;
        ssl_certificate_key $TMP/certs/bench.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1h;
        ssl_session_tickets on;"
		;;
	l4)
		[[ -z $NGINX_STREAM ]] || modules="load_module $NGINX_STREAM;"
		cat >"$d/nginx.conf" <<EOF
$modules
$user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
stream {
    server {
        listen 127.0.0.1:$PROXY_PORT;
        proxy_pass 127.0.0.1:$BACKEND_PORT;
        proxy_timeout 60s;
    }
}
EOF
		pinned "$PROXY_CPU" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' >"$d/log" 2>&1
		PROXY_PID=$LAST_PID
		PROXY_LOG=$d/error.log
		CONFIG_FILE=$d/nginx.conf
		return 0
		;;
	*) return 1 ;;
	esac
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
        $listen
        $tls
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
	local d=$TMP/haproxy bind="bind 127.0.0.1:$PROXY_PORT" proto=http
	mkdir -p "$d"
	case $1 in
	http) ;;
	tls)
		# TLS 1.2 and 1.3, the AEAD suites swarmgate allows, X25519 then
		# P-256; HAProxy's session cache and tickets are on by default.
		bind+=" ssl crt $TMP/certs/bench.pem ssl-min-ver TLSv1.2 curves X25519:P-256"
		bind+=" ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
		proto=https
		;;
	l4)
		cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend bulk
    bind 127.0.0.1:$PROXY_PORT
    default_backend sink

backend sink
    server sink 127.0.0.1:$BACKEND_PORT
EOF
		pinned "$PROXY_CPU" haproxy -db -f "$d/haproxy.cfg" >"$d/log" 2>&1
		PROXY_PID=$LAST_PID
		PROXY_LOG=$d/log
		CONFIG_FILE=$d/haproxy.cfg
		return 0
		;;
	*) return 1 ;;
	esac
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
    $bind
    http-request set-header X-Forwarded-Proto $proto
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

# core_ticks N: "process irq steal total" ticks of core N from /proc/stat:
# process = user+nice+system (what processes are charged), irq = hard and
# soft interrupts (charged to no process), total includes idle and iowait.
core_ticks() {
	awk -v c="cpu$1" '$1 == c {
		t = 0; for (i = 2; i <= 9; i++) t += $i
		print $2 + $3 + $4, $7 + $8, $9, t
	}' /proc/stat
}

CLK_TCK=$(getconf CLK_TCK)

# snap VAR PID stores in VAR a snapshot of the CPU counters: the proxy tree
# (PID, or "-" for none), the backend, this shell's finished children (the
# load generator: bash's `times`, which must run in this shell, not in a
# command substitution), and both cores.
snap() {
	times >"$TMP/times"
	local gen ptk
	gen=$(awk -v hz="$CLK_TCK" 'NR == 2 {
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%.1f\n", n * hz
	}' "$TMP/times")
	ptk=0
	[[ $2 == - ]] || ptk=$(tree_ticks "$2")
	printf -v "$1" '%s %s %s %s %s' "$ptk" "$(tree_ticks "$BACKEND_PID")" "$gen" \
		"$(core_ticks "$PROXY_CPU")" "$(core_ticks "$LOAD_CPU")"
}

# usage S0 S1 REQUESTS prints, for the interval between two snapshots:
# proxy_ticks cpu_us_per_req proxy_share_of_its_core load_core_busy other
# where other is the largest share of either core that went to processes
# outside the benchmark (other engineers' builds, say), in percent.
usage() {
	awk -v s0="$1" -v s1="$2" -v reqs="$3" -v hz="$CLK_TCK" -v proxy="$4" 'BEGIN {
		split(s0, a, " "); split(s1, b, " ")
		for (i = 1; i <= 11; i++) d[i] = b[i] - a[i]
		# d: 1 proxy, 2 backend, 3 generator, 4-7 proxy core, 8-11 load core
		cpu = (proxy == "-" || reqs <= 0) ? "-" : sprintf("%.1f", d[1] * 1e6 / hz / reqs)
		share = (proxy == "-" || d[7] <= 0) ? "-" : sprintf("%.0f", 100 * d[1] / d[7])
		lbusy = d[11] > 0 ? sprintf("%.0f", 100 * (d[8] + d[9]) / d[11]) : "-"
		o0 = d[7] > 0 ? 100 * (d[4] - d[1]) / d[7] : 0
		o1 = d[11] > 0 ? 100 * (d[8] - d[2] - d[3]) / d[11] : 0
		other = o0 > o1 ? o0 : o1
		printf "%d %s %s %s %.0f\n", d[1], cpu, share, lbusy, other < 0 ? 0 : other
	}'
}

# A run during which more than NOISE percent of a core went to other
# processes is repeated once; the figures of the quieter attempt are kept
# and the noise is reported either way.
NOISE=10

# quieter U KEPT: whether usage line U left less to other processes than KEPT.
quieter() { (($(awk '{print $5}' <<<"$1") < $(awk '{print $5}' <<<"$2"))); }

# noisy NAME U: whether usage line U gave more than NOISE percent of a core to
# other processes; says so if it did.
noisy() {
	local other
	other=$(awk '{print $5}' <<<"$2")
	((other > NOISE)) || return 1
	log "$1: $other% of a core went to other processes during the run"
}

# run_wrk NAME URL PID: the closed-loop throughput run. Sets WRK_* globals.
run_wrk() {
	local name=$1 url=$2 pid=$3 s0 s1 attempt u
	for attempt in 1 2; do
		log "$name: wrk -t1 -c$CONNS -d${DURATION}s (attempt $attempt)"
		snap s0 "$pid"
		run_wait "${PRIO[@]}" taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) \
			wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HEADER" "$url" >"$TMP/wrk.out" 2>&1 ||
			log "$name: wrk exited with $?"
		snap s1 "$pid"
		local reqs rps non2xx sock sockn
		reqs=$(awk '/ requests in /{print $1; exit}' "$TMP/wrk.out")
		rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$TMP/wrk.out")
		non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF; exit}' "$TMP/wrk.out")
		# "Socket errors: connect 0, read 0, write 0, timeout 0", printed only when nonzero
		sock=$(sed -n 's/.*Socket errors: //p' "$TMP/wrk.out")
		sockn=$(awk -F'[ ,]+' '/Socket errors:/{print $5 + $7 + $9 + $11; exit}' "$TMP/wrk.out")
		u=$(usage "$s0" "$s1" "${reqs:-0}" "$pid")
		{
			echo "### $name: wrk -t1 -c$CONNS -d${DURATION}s --latency -H 'Host: $HOST_HEADER' $url (attempt $attempt)"
			cat "$TMP/wrk.out"
			echo "counters (proxy backend generator ticks, core $PROXY_CPU and core $LOAD_CPU: process irq steal total): $s0 -> $s1"
			echo "usage (proxy_ticks cpu_us/req proxy_core% load_core% other%): $u"
			echo
		} >>"$RAW"
		if ((attempt == 1)) || quieter "$u" "$WRK_USAGE"; then
			WRK_REQS=${reqs:-0} WRK_RPS=${rps:-0} WRK_NON2XX=${non2xx:-0}
			WRK_SOCK=${sock:-none} WRK_SOCKN=${sockn:-0} WRK_USAGE=$u
		fi
		noisy "$name" "$u" || break
		((attempt == 2)) || wait_quiet
	done
}

# run_vegeta NAME URL PID: the fixed-rate latency run. Sets VEG_* globals.
run_vegeta() {
	local name=$1 url=$2 pid=$3 s0 s1 attempt u
	for attempt in 1 2; do
		log "$name: vegeta ${RATE}/s for ${DURATION}s (attempt $attempt)"
		snap s0 "$pid"
		printf 'GET %s\n' "$url" >"$TMP/targets"
		run_wait "${PRIO[@]}" taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) \
			vegeta attack -targets="$TMP/targets" -rate="$RATE" -duration="${DURATION}s" -keepalive=true \
			-timeout=5s -header "Host: $HOST_HEADER" >"$TMP/vegeta.bin" || log "$name: vegeta exited with $?"
		snap s1 "$pid"
		vegeta report -type=json <"$TMP/vegeta.bin" >"$TMP/vegeta.json"
		local vreq
		vreq=$(jq -r '.requests' "$TMP/vegeta.json")
		u=$(usage "$s0" "$s1" "$vreq" "$pid")
		{
			echo "### $name: vegeta attack -rate=$RATE -duration=${DURATION}s -keepalive=true -header 'Host: $HOST_HEADER' ($url) (attempt $attempt)"
			vegeta report -type=text <"$TMP/vegeta.bin"
			echo "counters: $s0 -> $s1"
			echo "usage (proxy_ticks cpu_us/req proxy_core% load_core% other%): $u"
			echo
		} >>"$RAW"
		if ((attempt == 1)) || quieter "$u" "$VEG_USAGE"; then
			VEG_REQ=$vreq
			VEG_OK=$(jq -r '.status_codes["200"] // 0' "$TMP/vegeta.json")
			VEG_P50=$(jq -r '.latencies["50th"] / 1000' "$TMP/vegeta.json")
			VEG_P99=$(jq -r '.latencies["99th"] / 1000' "$TMP/vegeta.json")
			VEG_ERRS=$(jq -r '(.errors // []) | join("; ")' "$TMP/vegeta.json")
			VEG_USAGE=$u
		fi
		noisy "$name" "$u" || break
		((attempt == 2)) || wait_quiet
	done
}

# wait_quiet waits (at most 5 s) until both cores are under 15% busy over
# half a second, so that a measurement does not start on top of someone
# else's build. Only our idle processes are running at that point.
wait_quiet() {
	local i a b
	for ((i = 0; i < 10; i++)); do
		a="$(core_ticks "$PROXY_CPU") $(core_ticks "$LOAD_CPU")"
		sleep 0.5
		b="$(core_ticks "$PROXY_CPU") $(core_ticks "$LOAD_CPU")"
		awk -v a="$a" -v b="$b" 'BEGIN {
			split(a, x, " "); split(b, y, " ")
			t0 = y[4] - x[4]; t1 = y[8] - x[8]
			busy0 = t0 > 0 ? (y[1] + y[2] - x[1] - x[2]) / t0 : 0
			busy1 = t1 > 0 ? (y[5] + y[6] - x[5] - x[6]) / t1 : 0
			exit !(busy0 < 0.15 && busy1 < 0.15)
		}' && return 0
	done
	log "the machine stayed busy for 5 s; measuring anyway"
}

# measure NAME PORT PID: warm-up, wrk, vegeta; appends one tab-separated
# result line to $TMP/results. PID is the proxy's, or "-" for none.
measure() {
	local name=$1 port=$2 pid=$3
	local url="http://127.0.0.1:$port$BODY_PATH"
	wait_quiet
	if ((WARMUP > 0)); then
		log "$name: warm-up ${WARMUP}s"
		run_wait "${PRIO[@]}" taskset -c "$LOAD_CPU" timeout $((WARMUP + 15)) \
			wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HEADER" "$url" >/dev/null
	fi
	run_wrk "$name" "$url" "$pid"
	run_vegeta "$name" "$url" "$pid"

	local -a w v
	read -ra w <<<"$WRK_USAGE"
	read -ra v <<<"$VEG_USAGE"
	local other=$((w[4] > v[4] ? w[4] : v[4]))
	local verr=$((VEG_REQ - VEG_OK))
	local detail="wrk: non-2xx=$WRK_NON2XX socket-errors=[$WRK_SOCK]; vegeta: non-200=$verr/$VEG_REQ"
	[[ -z $VEG_ERRS ]] || detail+=" [$VEG_ERRS]"
	# name rps p50 p99 cpu cpu@rate proxy% load% other% errors detail
	printf '%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n' "$name" "$WRK_RPS" "$VEG_P50" "$VEG_P99" \
		"${w[1]}" "${v[1]}" "${w[2]}" "${w[3]}" "$other" $((WRK_NON2XX + WRK_SOCKN + verr)) "$detail" >>"$TMP/results"
}

# proxy_up SUITE NAME RESULTS: start NAME for SUITE and wait until it carries
# the suite's traffic; on failure, a FAILED row in RESULTS and status 1.
proxy_up() {
	local suite=$1 name=$2 results=$3 ok=1
	port_free "$PROXY_PORT" || die "port $PROXY_PORT is in use (set PROXY_PORT)"
	PROXY_PID= PROXY_LOG=/dev/null CONFIG_FILE=
	if ! "start_$name" "$suite"; then
		printf '%s\tFAILED\t%s\n' "$name" "could not start (see log above)" >>"$results"
		FAILED+=("$suite/$name")
		return 1
	fi
	case $suite in
	http) wait_ready "http://127.0.0.1:$PROXY_PORT$BODY_PATH" "$PROXY_PID" "$PROXY_LOG" || ok=0 ;;
	tls)
		wait_ready "https://$HOST_HEADER:$PROXY_PORT$BODY_PATH" "$PROXY_PID" "$PROXY_LOG" \
			--insecure --resolve "$HOST_HEADER:$PROXY_PORT:127.0.0.1" || ok=0
		;;
	l4) l4_ready "$PROXY_PORT" "$PROXY_PID" "$PROXY_LOG" || ok=0 ;;
	esac
	if ((!ok)); then
		printf '%s\tFAILED\t%s\n' "$name" "carried no traffic (see log above)" >>"$results"
		FAILED+=("$suite/$name")
		stop_pid "$PROXY_PID"
		forget_pid "$PROXY_PID"
		return 1
	fi
	if [[ -n $CONFIG_FILE ]]; then
		{ echo "### $name configuration for the $suite suite ($CONFIG_FILE)"; cat "$CONFIG_FILE"; echo; } >>"$RAW"
	fi
}

# proxy_down NAME: keep the end of the proxy's log, stop it.
proxy_down() {
	if [[ -s $PROXY_LOG ]]; then
		{ echo "### $1 log (last 50 lines)"; tail -n 50 "$PROXY_LOG"; echo; } >>"$RAW"
	fi
	stop_pid "$PROXY_PID"
	forget_pid "$PROXY_PID"
}

# run_proxy SUITE NAME: start, measure, stop (the HTTP suite).
run_proxy() {
	proxy_up "$1" "$2" "$TMP/results" || return 0
	measure "$2" "$PROXY_PORT" "$PROXY_PID"
	proxy_down "$2"
}

# kv KEY FILE: the value of KEY=VALUE in the last line of FILE that has it.
kv() {
	awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2) } END { print v }' "$2"
}

# ---------------------------------------------------------------- TLS suite

# run_tls NAME VERSION MODE PID: one tlsload run (repeated once if noisy);
# appends a row to $TMP/results_tls.
run_tls() {
	local name=$1 ver=$2 mode=$3 pid=$4 s0 s1 attempt u hs keep= keepu= flag=
	[[ $mode == full ]] || flag=-resume
	for attempt in 1 2; do
		wait_quiet
		log "$name: TLS $ver $mode handshakes, $TLS_CONNS loops for ${TLS_DURATION}s (attempt $attempt)"
		snap s0 "$pid"
		run_wait "${PRIO[@]}" taskset -c "$LOAD_CPU" timeout $((TLS_DURATION + 30)) \
			"$TMP/bin/tlsload" -addr "127.0.0.1:$PROXY_PORT" -sni "$HOST_HEADER" -cert "$TMP/certs/bench.crt" \
			-conns "$TLS_CONNS" -duration "${TLS_DURATION}s" -tls "$ver" $flag >"$TMP/tls.out" 2>&1 ||
			log "$name: tlsload exited with $?"
		snap s1 "$pid"
		hs=$(kv handshakes "$TMP/tls.out")
		u=$(usage "$s0" "$s1" "${hs:-0}" "$pid")
		{
			echo "### $name: tlsload TLS $ver $mode -conns $TLS_CONNS -duration ${TLS_DURATION}s (attempt $attempt)"
			cat "$TMP/tls.out"
			echo "counters: $s0 -> $s1"
			echo "usage (proxy_ticks cpu_us/handshake proxy_core% load_core% other%): $u"
			echo
		} >>"$RAW"
		if ((attempt == 1)) || quieter "$u" "$keepu"; then
			cp "$TMP/tls.out" "$TMP/tls.keep"
			keepu=$u
		fi
		noisy "$name" "$u" || break
	done
	local -a w
	read -ra w <<<"$keepu"
	local f=$TMP/tls.keep rate errs resumed detail
	hs=$(kv handshakes "$f")
	rate=$(kv rate "$f")
	errs=$(kv errors "$f")
	resumed=$(kv resumed "$f")
	if [[ -z $hs ]]; then
		printf '%s\tFAILED\t%s\n' "$name" "TLS $ver $mode: $(tail -n 1 "$f")" >>"$TMP/results_tls"
		FAILED+=("tls/$name")
		return 0
	fi
	detail="resumed $resumed/$hs"
	[[ -z $(kv first_error "$f") ]] || detail+="; first error: $(kv first_error "$f" | tr _ ' ')"
	# A resumed run in which the server refused tickets measured full
	# handshakes: count those as errors.
	[[ $mode == full ]] || errs=$((errs + hs - resumed))
	# name mode rate p50 p99 cpu/hs proxy% load% other% errors detail
	printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n' "$name" "$ver $mode" "$rate" \
		"$(kv p50us "$f")" "$(kv p99us "$f")" "${w[1]}" "${w[2]}" "${w[3]}" "${w[4]}" "$errs" "$detail" >>"$TMP/results_tls"
}

suite_tls() {
	log "suite tls: ECDSA P-256, TLS $TLS_VERSIONS, full and resumed, $TLS_CONNS loops, ${TLS_DURATION}s runs"
	: >"$TMP/results_tls"
	start_backend
	local p v m
	for p in $PROXIES; do
		declare -F "start_$p" >/dev/null || die "unknown proxy '$p'"
		[[ $p != stdproxy ]] || { log "stdproxy: HTTP only, not in the TLS suite"; continue; }
		proxy_up tls "$p" "$TMP/results_tls" || continue
		for v in $TLS_VERSIONS; do
			for m in full resumed; do
				run_tls "$p" "$v" "$m" "$PROXY_PID"
			done
		done
		proxy_down "$p"
	done
	stop_pid "$BACKEND_PID"
	forget_pid "$BACKEND_PID"
}

report_tls() {
	[[ -s $TMP/results_tls ]] || return 0
	awk -F'\t' -v noise="$NOISE" '
		function ratio(x, y) { return (y + 0 > 0 && x != "-" && y != "-") ? sprintf("%.2f", x / y) : "-" }
		$2 == "FAILED" { failed[++nf] = $1 ": " $3; next }
		{ row[++n] = $0; if ($1 == "nginx") { nrate[$2] = $3; ncpu[$2] = $6 } }
		END {
			printf "%-10s %-11s %7s %7s %7s %7s %8s %5s %5s %5s %6s | %6s %6s | %s\n",
				"target", "handshake", "hs/s", "p50us", "p99us", "cpu/hs", "hs/core", "prx%", "ld%", "oth%", "bound",
				"thr/ng", "cpu/ng", "errors"
			for (i = 1; i <= n; i++) {
				split(row[i], f, "\t")
				bound = f[9] > noise ? "noisy" : f[7] == "-" ? "-" : f[7] >= 90 ? "proxy" : "load"
				percore = (f[6] != "-" && f[6] > 0) ? sprintf("%.0f", 1e6 / f[6]) : "-"
				printf "%-10s %-11s %7d %7d %7d %7s %8s %5s %5s %5s %6s | %6s %6s | %d\n",
					f[1], f[2], f[3], f[4], f[5], f[6], percore, f[7], f[8], f[9], bound,
					ratio(f[3], nrate[f[2]]), ratio(f[6], ncpu[f[2]]), f[10]
			}
			for (i = 1; i <= nf; i++) printf "%-10s FAILED: %s\n", "", failed[i]
			print ""
			print "details:"
			for (i = 1; i <= n; i++) { split(row[i], f, "\t"); printf "  %-10s %-11s %s\n", f[1], f[2], f[11] }
		}' "$TMP/results_tls"
	cat <<EOF

hs/s: handshakes completed per second by tlsload ($TLS_CONNS concurrent loops of connect,
handshake, close_notify, read to EOF; ECDSA P-256 certificate, X25519 key exchange).
p50us/p99us: connect + handshake time. full: no session cache; resumed: session tickets
(a refused ticket counts as an error). cpu/hs: the proxy's CPU in µs per handshake;
hs/core = 1e6 / cpu/hs, the handshakes one core would sustain. prx%, ld%, oth%, bound
as in the HTTP table (bound = load: tlsload's core saturated first, hs/s is a lower
bound). x/ng: ratio to NGINX for the same handshake kind.
EOF
}

# ---------------------------------------------------------------- L4 suite

# l4_ready PORT PID LOG: until a 1 KiB segment crosses PORT to the sink.
l4_ready() {
	local port=$1 pid=$2 logf=$3 i
	for ((i = 0; i < 50; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "process exited; its log:"
			sed 's/^/  | /' "$logf" >&2
			return 1
		fi
		timeout 5 "$TMP/bin/l4load" source -addr "127.0.0.1:$port" -bytes 1K -duration 1s >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	log "no segment crossed 127.0.0.1:$port in 10 s; its log:"
	sed 's/^/  | /' "$logf" >&2
	return 1
}

# run_l4 NAME PORT PID: one bulk transfer (repeated once if noisy); appends a
# row to $TMP/results_l4. PID is the proxy's, or "-" for none.
run_l4() {
	local name=$1 port=$2 pid=$3 s0 s1 attempt u bytes keepu= rc
	for attempt in 1 2; do
		wait_quiet
		log "$name: $L4_BYTES over $L4_CONNS connection(s), at most ${L4_DURATION}s (attempt $attempt)"
		snap s0 "$pid"
		rc=0
		run_wait "${PRIO[@]}" taskset -c "$LOAD_CPU" timeout $((L4_DURATION + 60)) \
			"$TMP/bin/l4load" source -addr "127.0.0.1:$port" -bytes "$L4_BYTES" -duration "${L4_DURATION}s" \
			-conns "$L4_CONNS" >"$TMP/l4.out" 2>&1 || rc=$?
		snap s1 "$pid"
		bytes=$(kv bytes "$TMP/l4.out")
		# usage divides by the work done: in GB (10^9 bytes), so its
		# "per request" figure is µs per GB.
		u=$(usage "$s0" "$s1" "$(awk -v b="${bytes:-0}" 'BEGIN { print b / 1e9 }')" "$pid")
		{
			echo "### $name: l4load source -bytes $L4_BYTES -duration ${L4_DURATION}s -conns $L4_CONNS to 127.0.0.1:$port (attempt $attempt, exit $rc)"
			cat "$TMP/l4.out"
			echo "counters: $s0 -> $s1"
			echo "usage (proxy_ticks cpu_us/GB proxy_core% load_core% other%): $u"
			echo
		} >>"$RAW"
		if ((rc != 0)) || [[ -z $bytes ]]; then
			log "$name: l4load failed: $(tail -n 1 "$TMP/l4.out")"
			printf '%s\tFAILED\t%s\n' "$name" "transfer failed: $(tail -n 1 "$TMP/l4.out")" >>"$TMP/results_l4"
			FAILED+=("l4/$name")
			return 0
		fi
		if ((attempt == 1)) || quieter "$u" "$keepu"; then
			cp "$TMP/l4.out" "$TMP/l4.keep"
			keepu=$u
		fi
		noisy "$name" "$u" || break
	done
	local -a w
	read -ra w <<<"$keepu"
	local cpu=-
	[[ ${w[1]} == - ]] || cpu=$(awk -v x="${w[1]}" 'BEGIN { printf "%.3f", x / 1e6 }')
	# name gbps cpu_s/GB proxy% load% other% bytes elapsed
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(kv gbps "$TMP/l4.keep")" "$cpu" "${w[2]}" "${w[3]}" "${w[4]}" \
		"$(kv bytes "$TMP/l4.keep")" "$(kv elapsed "$TMP/l4.keep")" >>"$TMP/results_l4"
}

suite_l4() {
	log "suite l4: $L4_BYTES per target (at most ${L4_DURATION}s), $L4_CONNS connection(s)"
	: >"$TMP/results_l4"
	port_free "$BACKEND_PORT" || die "port $BACKEND_PORT is in use (set BACKEND_PORT)"
	pinned "$LOAD_CPU" "$TMP/bin/l4load" sink -listen "127.0.0.1:$BACKEND_PORT" >"$TMP/sink.log" 2>&1
	BACKEND_PID=$LAST_PID
	l4_ready "$BACKEND_PORT" "$BACKEND_PID" "$TMP/sink.log" || die "the L4 sink did not start"
	run_l4 direct "$BACKEND_PORT" -
	local p
	for p in $PROXIES; do
		declare -F "start_$p" >/dev/null || die "unknown proxy '$p'"
		[[ $p != stdproxy ]] || { log "stdproxy: HTTP only, not in the L4 suite"; continue; }
		proxy_up l4 "$p" "$TMP/results_l4" || continue
		run_l4 "$p" "$PROXY_PORT" "$PROXY_PID"
		proxy_down "$p"
	done
	if [[ -s $TMP/sink.log ]]; then
		{ echo "### l4 sink log (last 20 lines)"; tail -n 20 "$TMP/sink.log"; echo; } >>"$RAW"
	fi
	stop_pid "$BACKEND_PID"
	forget_pid "$BACKEND_PID"
}

report_l4() {
	[[ -s $TMP/results_l4 ]] || return 0
	awk -F'\t' -v noise="$NOISE" '
		function ratio(x, y) { return (y + 0 > 0 && x != "-" && y != "-") ? sprintf("%.2f", x / y) : "-" }
		$2 == "FAILED" { failed[++nf] = $1 ": " $3; next }
		{ row[++n] = $0; if ($1 == "nginx") { ngb = $2; ncpu = $3 } }
		END {
			printf "%-10s %7s %9s %5s %5s %5s %6s | %6s %6s | %s\n",
				"target", "Gbit/s", "cpu-s/GB", "prx%", "ld%", "oth%", "bound", "thr/ng", "cpu/ng", "bytes in s"
			for (i = 1; i <= n; i++) {
				split(row[i], f, "\t")
				bound = f[6] > noise ? "noisy" : f[4] == "-" ? "-" : f[4] >= 90 ? "proxy" : "load"
				printf "%-10s %7.2f %9s %5s %5s %5s %6s | %6s %6s | %s in %s\n",
					f[1], f[2], f[3], f[4], f[5], f[6], bound, ratio(f[2], ngb), ratio(f[3], ncpu), f[7], f[8]
			}
			for (i = 1; i <= nf; i++) printf "%-10s FAILED: %s\n", "", failed[i]
		}' "$TMP/results_l4"
	cat <<EOF

Gbit/s: bytes the sink acknowledged (l4load, segments of 64 MiB with a byte count
checked per segment) over the transfer time, $L4_CONNS connection(s). cpu-s/GB: the
proxy's CPU seconds per 10^9 bytes carried. prx%, ld%, oth%, bound as in the HTTP table
(ld%: l4load's source and sink on core $LOAD_CPU). x/ng: ratio to NGINX.
EOF
}

# ---------------------------------------------------------------- report

# report_http prints the table of $TMP/results with ratios to NGINX.
report_http() {
	awk -F'\t' -v noise="$NOISE" '
		function ratio(x, y) { return (y + 0 > 0 && x != "-" && y != "-") ? sprintf("%.2f", x / y) : "-" }
		$2 == "FAILED" { failed[++nf] = $1 ": " $3; next }
		{ row[++n] = $0; if ($1 == "nginx") { nrps = $2; ncpu = $5; np99 = $4 } }
		END {
			printf "%-10s %8s %7s %7s %7s %7s %5s %5s %5s %6s | %6s %6s %6s | %s\n",
				"target", "req/s", "p50us", "p99us", "cpu/req", "@rate", "prx%", "ld%", "oth%", "bound",
				"thr/ng", "cpu/ng", "p99/ng", "errors"
			for (i = 1; i <= n; i++) {
				split(row[i], f, "\t")
				# What limited the wrk run: the proxy if it had (nearly) all
				# of its core, else the load core; "noisy" if other processes
				# took a visible share of a core.
				bound = f[9] > noise ? "noisy" : f[7] == "-" ? "-" : f[7] >= 90 ? "proxy" : "load"
				printf "%-10s %8d %7d %7d %7s %7s %5s %5s %5s %6s | %6s %6s %6s | %d\n",
					f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], bound,
					ratio(f[2], nrps), ratio(f[5], ncpu), ratio(f[4], np99), f[10]
			}
			for (i = 1; i <= nf; i++) printf "%-10s FAILED: %s\n", "", failed[i]
			print ""
			print "errors:"
			for (i = 1; i <= n; i++) { split(row[i], f, "\t"); printf "  %-10s %s\n", f[1], f[11] }
		}' "$TMP/results"
	cat <<EOF

req/s: wrk max throughput (closed loop, $CONNS connections). p50us/p99us: vegeta latency
at a fixed $RATE req/s (open loop). cpu/req: the proxy's user+system CPU in µs per request
during the wrk run (@rate: during the vegeta run). prx%: the proxy's share of core
$PROXY_CPU during the wrk run; ld%: core $LOAD_CPU busy (backend + load generator);
oth%: the largest share of either core taken by other processes. bound: what limited the
wrk run (proxy: it had >= 90% of its core; load: the load core saturated first, so req/s
is a lower bound; noisy: oth% > $NOISE, figures disturbed). x/ng: ratio to NGINX.
EOF
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


main() {
	local stamp
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	mkdir -p "$ROOT/bench/results"
	RAW=$ROOT/bench/results/$stamp.txt
	FAILED=()
	local n secs=0 s
	n=$(wc -w <<<"$PROXIES")
	for s in $SUITES; do
		declare -F "suite_$s" >/dev/null || die "unknown suite '$s' (http, tls, l4)"
		case $s in
		http) secs=$((secs + (WARMUP + 2 * DURATION + 5) * (n + 1))) ;;
		tls) secs=$((secs + (TLS_DURATION + 1) * 2 * $(wc -w <<<"$TLS_VERSIONS") * n)) ;;
		l4) secs=$((secs + (L4_DURATION + 2) * (n + 1))) ;;
		esac
	done
	log "suites $SUITES: at most about $secs s of measuring (more if noisy runs are repeated)"

	setup
	{
		echo "swarmgate side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
		echo "machine: $NCPU cores, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
		echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "tools: $(nginx -v 2>&1 | sed 's/.*version: //'), $(haproxy -v 2>&1 | awk 'NR==1{print $1, $3}'), $(wrk -v 2>&1 | awk 'NR==1{print $1, $2}'), vegeta v12.13.0 (go install), $(go version | awk '{print $3}')"
		echo "knobs: SUITES='$SUITES' DURATION=$DURATION WARMUP=$WARMUP RATE=$RATE CONNS=$CONNS BODY=$BODY PROXY_CPU=$PROXY_CPU LOAD_CPU=$LOAD_CPU"
		echo "       TLS_DURATION=$TLS_DURATION TLS_CONNS=$TLS_CONNS TLS_VERSIONS='$TLS_VERSIONS' L4_BYTES=$L4_BYTES L4_DURATION=$L4_DURATION L4_CONNS=$L4_CONNS"
		echo
	} >"$RAW"

	: >"$TMP/results"
	local status=0
	for s in $SUITES; do
		"suite_$s" || status=1
	done

	local summary
	summary=$(
		for s in $SUITES; do
			echo "== $s"
			"report_$s"
			echo
		done
	)
	{
		echo "### summary"
		echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "$summary"
	} >>"$RAW"
	echo
	echo "$summary"
	echo "raw results: $RAW"
	((${#FAILED[@]} == 0)) || status=1
	return $status
}

main "$@"
