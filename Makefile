# kforge — see README.md. `make demo` runs the main job, `make test` runs every check.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/kforge
EXAMPLES := $(sort $(dir $(wildcard examples/*/*.hcl)))

.PHONY: all deps build demo demo-down test test-network lint fmt fmt-check vet staticcheck unit fuzz fuzz-brief bench artifacts conformance clean

all: build

deps:
	@scripts/deps.sh

build: deps
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kforge

# The main job on the built-in default: a 3-node cluster (1 control plane, 2 workers) on local lab hosts, from
# artifacts built here (cached), through kforge plan/apply; then the nodes. `make demo-down` removes it all.
DEMO := examples/lab
demo: build artifacts
	@for d in $(EXAMPLES); do $(BIN) validate $$d >/dev/null || exit 1; done; echo "examples: valid"
	@$(BIN) lab status --name demo >/dev/null 2>&1 || $(BIN) lab up --name demo --hosts 3
	@$(BIN) -c $(DEMO) -var artifacts=$$(scripts/build-artifacts.sh --print-set) apply --auto-approve
	@$(BIN) -c $(DEMO) kubeconfig -o $(DEMO)/demo.kubeconfig
	@kubectl=$$(scripts/build-artifacts.sh --print-set)/bin/kubectl; \
	  $$kubectl --kubeconfig $(DEMO)/demo.kubeconfig wait --for=condition=Ready node --all --timeout=180s >/dev/null && \
	  $$kubectl --kubeconfig $(DEMO)/demo.kubeconfig get nodes -o wide && \
	  echo && echo "Use it: $$kubectl --kubeconfig $(DEMO)/demo.kubeconfig get pods -A   (make demo-down removes it)"

demo-down: build
	-@$(BIN) -c $(DEMO) -var artifacts=$$(scripts/build-artifacts.sh --print-set) destroy --auto-approve >/dev/null
	@$(BIN) lab down --name demo
	@rm -rf $(DEMO)/.kforge $(DEMO)/demo.kubeconfig

# Everything CI checks, ending with the test runner's summary.
test: deps artifacts fmt-check vet staticcheck fuzz-brief unit

# The pod-network plugins' end-to-end scenario alone (make test runs it too), one lab cluster per plugin (flannel,
# then kube-router): pod to pod across nodes, the kubernetes Service, cluster DNS, NetworkPolicy (kube-router), adding
# a node that touches no other node, switching plugins refused, nothing left after destroy. The default plugin's
# (routes) scenario is TestComponentsOnALab.
test-network: deps artifacts
	KFORGE_SCENARIO_TEST=TestPodNetworkPluginsOnALab scripts/test.sh -race -count=1 -timeout 40m -run '^TestPodNetworkPluginsOnALab$$' ./cmd/kforge

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi; echo "gofmt: ok"

vet:
	go vet ./...

staticcheck:
	go tool staticcheck ./...

lint: vet staticcheck

# The tests with -race; the end-to-end scenario's log (nodes Ready, pod checks) is shown before the summary.
unit:
	scripts/test.sh -race -count=1 -timeout 60m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
	go run ./cmd/kforge fmt --recursive examples

# Runs every fuzzer (the config loader, the facts probe's and the refresh's parsers, saved plans, the state and
# its lock) for FUZZTIME each, one after the other (FUZZTIME=10m make fuzz for longer).
FUZZTIME ?= 30s
fuzz: deps
	scripts/fuzz.sh $(FUZZTIME)

# make test's short pass of every fuzzer, before the unit tests so that their summary stays last.
BRIEF_FUZZTIME ?= 5s
fuzz-brief: deps
	scripts/fuzz.sh $(BRIEF_FUZZTIME)

# Benchmarks print their figures (rates, ratios, round trips); compare ratios, the machine is shared and noisy.
BENCHTIME ?= 1x
# Every benchmark: the Go benchmarks of each package, then bench/ (plan and file pushes on 1 to 100 cheap hosts beside
# Ansible, a 3-host lab cluster, PKI for 1000 nodes, SSH against scp), whose table lands in bench/results/.
bench: deps artifacts
	scripts/deps.sh bench
	go test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...
	KFORGE_BENCH=1 go test ./bench -run '^TestBenchmarks$$' -count=1 -v -timeout 60m

# Kubernetes, etcd and containerd built from the Go module proxy, runc and CNI plugins from Debian, with a
# manifest of sha256 sums, in /var/cache/kforge/artifacts (cached by version: a second run takes seconds); also
# the set of the release before, UPGRADE_FROM, which the upgrade test starts from (labtest.UpgradeFrom).
UPGRADE_FROM ?= v1.37.1
artifacts: deps
	scripts/build-artifacts.sh
	K8S_VERSION=$(UPGRADE_FROM) scripts/build-artifacts.sh

# The upstream Kubernetes conformance suite against a 3-node cluster on lab hosts (test/conformance/run.sh), from
# nothing: e2e.test, its images and the artifacts built here (cached), lab up, kforge apply, the suite, teardown.
# Needs root (lab hosts, the image build) and hours; not part of make test. Results: test/conformance/results/.
# FOCUS=REGEX runs some specs only, E2E_PARALLEL=N sets ginkgo's processes (default 4).
conformance:
	test/conformance/run.sh

clean:
	rm -rf bin
