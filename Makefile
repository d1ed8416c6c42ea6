# kforge — see README.md. `make demo` runs the main job, `make test` runs every check.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/kforge
EXAMPLES := $(sort $(dir $(wildcard examples/*/*.hcl)))

.PHONY: all deps build demo test lint fmt fmt-check vet staticcheck unit fuzz bench artifacts clean

all: build

deps:
	@scripts/deps.sh

build: deps
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kforge

# The main job on the built-in default. Until kforge bootstraps clusters, that is: build kforge, validate
# every example configuration, and bring a 3-host local lab up (as root) and down again.
demo: build
	@for d in $(EXAMPLES); do echo "== kforge validate $$d"; $(BIN) validate $$d || exit 1; echo; done
	@echo "== kforge lab up --name demo --hosts 3"
	@trap '$(BIN) lab down --name demo' EXIT; $(BIN) lab up --name demo --hosts 3

# Everything CI checks, ending with the test runner's summary.
test: deps artifacts fmt-check vet staticcheck unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi; echo "gofmt: ok"

vet:
	go vet ./...

staticcheck:
	go tool staticcheck ./...

lint: vet staticcheck

unit:
	go tool gotestsum --format pkgname-and-test-fails -- -race -count=1 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
	go run ./cmd/kforge fmt --recursive examples

# Runs the config loader's fuzzer for a while (FUZZTIME=10m make fuzz for longer).
FUZZTIME ?= 30s
fuzz: deps
	go test ./config -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME)

# Benchmarks print their figures (rates, ratios, round trips); compare ratios, the machine is shared and noisy.
BENCHTIME ?= 1x
bench: deps
	go test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

# Kubernetes, etcd and containerd built from the Go module proxy, runc and CNI plugins from Debian, with a
# manifest of sha256 sums, in /var/cache/kforge/artifacts (cached by version: a second run takes seconds).
artifacts: deps
	scripts/build-artifacts.sh

clean:
	rm -rf bin
