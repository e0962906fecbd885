#!/usr/bin/env bash
# demo.sh: swarmgate on a local single-node swarm, from nothing.
# Brings up Docker in swarm mode (creating the swarm if absent), builds the
# image locally (no registry), deploys deploy/swarmgate-stack.yml and a demo
# service published by labels, and prints a curl line that works.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${SWARMGATE_HTTP_PORT:-80}
ADMIN_PORT=${SWARMGATE_ADMIN_PORT:-8080}
export SWARMGATE_HTTP_PORT=$HTTP_PORT SWARMGATE_ADMIN_PORT=$ADMIN_PORT
export SWARMGATE_IMAGE=swarmgate:local

scripts/docker-up.sh

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
echo "demo: building swarmgate and the demo service"
CGO_ENABLED=0 go build -trimpath -o "$build/swarmgate" ./cmd/swarmgate
CGO_ENABLED=0 go build -trimpath -o "$build/echo" ./e2e/echo
quiet() { "$@" >"$build/log" 2>&1 || { cat "$build/log" >&2; exit 1; }; }
quiet docker build -q -f deploy/Dockerfile.local -t swarmgate:local "$build"
quiet docker build -q -f deploy/Dockerfile.local --build-arg BIN=echo -t swarmgate-demo-echo:local "$build"

node=$(docker info --format '{{.Swarm.NodeID}}')
docker node update --label-add swarmgate.edge=true "$node" >/dev/null

# The control plane seals the fleet's shared state (ACME certificates,
# session ticket keys) with a key from this secret; created once.
if ! docker secret inspect swarmgate-state-key >/dev/null 2>&1; then
  head -c 32 /dev/urandom | base64 | docker secret create swarmgate-state-key - >/dev/null
fi

echo "demo: deploying the swarmgate stack (edge on :$HTTP_PORT, admin on :$ADMIN_PORT)"
# The stack publishes no admin port (edges on the Internet are scraped on the
# metrics network); on this one machine, admin-published.yml publishes it.
quiet docker stack deploy --resolve-image never -c deploy/swarmgate-stack.yml -c deploy/admin-published.yml swarmgate

if docker service inspect hello >/dev/null 2>&1; then
  docker service rm hello >/dev/null
fi
echo "demo: creating service 'hello' published as hello.localhost by its labels"
docker service create --detach --quiet --name hello --no-resolve-image \
  --network swarmgate --replicas 2 --env SERVICE=hello \
  --label swarmgate.hosts=hello.localhost \
  --label swarmgate.port=8000 \
  swarmgate-demo-echo:local --listen :8000 >/dev/null

for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: hello.localhost' "http://127.0.0.1:$HTTP_PORT/" || true)
  [ "$code" = 200 ] && break
  sleep 0.5
done
if [ "${code:-}" != 200 ]; then
  echo "demo: hello.localhost did not answer (last status ${code:-none}); edge logs:" >&2
  docker service logs --tail 30 swarmgate_edge >&2 || true
  exit 1
fi
cat <<TXT

swarmgate is routing. Try:

  curl -H 'Host: hello.localhost' http://127.0.0.1:$HTTP_PORT/
  curl http://127.0.0.1:$ADMIN_PORT/api/routes
  docker service scale hello=4          # new tasks join in well under a second
  docker service update --label-add swarmgate.path=/hello hello

Tear down: docker service rm hello && docker stack rm swarmgate
TXT
