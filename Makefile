# swarmgate: make build | test | unit | fuzz | h2spec | e2e | bench | demo
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
PKGS     := ./cmd/... ./control/... ./edge/... ./internal/... ./proxy/... ./route/... ./l4/... ./handover/... ./router/... ./discovery/... ./tlsstore/... ./balancer/... ./socketproxy/... ./bench/...

.PHONY: all build test unit lint fuzz h2spec e2e bench demo demo-down image clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/swarmgate ./cmd/swarmgate

# test is the one command that runs every test: static checks, unit and
# integration tests with the race detector, every fuzz target for a bounded
# time, HTTP/2 conformance (h2spec), then the end-to-end suite against a real
# Docker Engine in swarm mode.
test: lint unit fuzz h2spec e2e

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
