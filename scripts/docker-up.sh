#!/usr/bin/env bash
# docker-up.sh: make sure a Docker Engine in swarm mode answers on this host.
# Installs docker.io (Debian) if it is missing, starts dockerd if it is not
# running, and initialises a single-node swarm if there is none. Exits non-zero
# if the engine cannot be brought up: callers (CI, make e2e) must fail, not skip.
set -euo pipefail

log() { printf 'docker-up: %s\n' "$*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/swarmgate-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not start; its log follows"
    tail -n 50 /var/log/swarmgate-dockerd.log >&2 || true
    exit 1
  fi
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != "active" ]; then
  log "initialising a single-node swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
log "engine $(docker version --format '{{.Server.Version}}') in swarm mode"
