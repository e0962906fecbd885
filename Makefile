# swarmgate: make build | test | unit | fuzz | h2spec | e2e | e2e-cluster | bench | demo
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Every package but the e2e suites (which need Docker: make e2e, e2e-cluster).
PKGS     = $(shell $(GO) list ./... | grep -v '/e2e')

.PHONY: all build test unit lint fuzz h2spec e2e e2e-cluster bench demo demo-down image clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/swarmgate ./cmd/swarmgate

# test is the one command that runs every test: static checks, unit and
# integration tests with the race detector, every fuzz target for a bounded
# time, HTTP/2 conformance (h2spec), then the end-to-end suite against a real
# Docker Engine in swarm mode, and the multi-node suite.
test: lint unit fuzz h2spec e2e e2e-cluster

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(PKGS)

# FUZZTIME bounds each fuzz target (default 50000x: executions).
fuzz:
	scripts/fuzz.sh

h2spec:
	scripts/h2spec.sh

e2e:
	scripts/docker-up.sh
	$(GO) test -count=1 -timeout 30m -v ./e2e/...

# e2e-cluster runs the multi-node suite (e2e/cluster, build tag cluster) on
# a three-node swarm that scripts/cluster.sh makes on this machine, and
# removes the swarm afterwards (KEEP_CLUSTER=1 leaves it up for the next
# run). It fails, never skips, when the swarm cannot start.
e2e-cluster:
	scripts/cluster.sh up 3
	eval "$$(scripts/cluster.sh env)" && $(GO) test -tags cluster -count=1 -timeout 15m -v ./e2e/cluster/; \
	  rc=$$?; [ -n "$(KEEP_CLUSTER)" ] || scripts/cluster.sh down; exit $$rc

bench:
	bench/run.sh

demo:
	scripts/demo.sh

# demo-down removes what make demo created: its service and the stack.
demo-down:
	-docker service rm hello
	docker stack rm swarmgate

clean:
	rm -rf bin
