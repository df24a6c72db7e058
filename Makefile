# Latch: `make run` starts the NVR, `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 30s
PKGS := ./...
DIST := dist
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run test lint proofs fuzz bench dist graph clean soak soak-short

run:
	$(GO) run ./cmd/latch serve

test: lint
	@scripts/test-deps.sh
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

proofs:
	$(GO) test -count=1 -timeout 30m -run 'TestExplore|TestMutation|TestPresetProofs' -v ./proofs/ 2>&1 | tail -200

# Every fuzz target, each for FUZZTIME (go test -fuzz runs one target at a time).
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# The soak: latch serve as a child process driven over HTTP by the simulator
# (sim/soak), with kill -9s, wall-clock steps, disk pressure and an upgrade
# (docs/RELIABILITY.md). `make soak` is the long run: a warped week with 20
# kills, its report in sim/soak/soak-report.json (the input of
# `go run ./sim/soak/cmd/soakplot`) and its full log in sim/soak/soak.out;
# `make soak-short` is CI's: 18 h virtual with 3 kills, about 2 minutes.
# Add flags with SOAKFLAGS (-soak.seed=N repeats a run).
SOAKFLAGS ?=
SOAKQUIET := grep -v --line-buffered 'wall clock stepped by'

soak:
	set -o pipefail; $(GO) test -tags soak -count=1 -timeout 60m -v ./sim/soak/ -run 'TestSoak' \
	  -soak.virtual=168h -soak.kills=20 -soak.pressure=24h -soak.upgrade=24h \
	  -soak.report=soak-report.json $(SOAKFLAGS) 2>&1 | tee sim/soak/soak.out | $(SOAKQUIET) | tail -120

soak-short:
	set -o pipefail; $(GO) test -tags soak -count=1 -timeout 15m -v ./sim/soak/ -run 'TestSoak' $(SOAKFLAGS) 2>&1 | $(SOAKQUIET)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./model/ ./sim/ ./proofs/ ./nvr/... 2>&1 | tee bench.out

dist:
	@mkdir -p $(DIST)
	@set -e; for t in linux/amd64 linux/arm64 linux/arm; do \
	  os=$${t%/*}; arch=$${t#*/}; \
	  for cmd in latch latchsim; do \
	    out=$(DIST)/$$cmd-$$os-$$arch; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/$$cmd; \
	  done; \
	done; \
	ls -l $(DIST) | awk 'NR>1 {printf "%-28s %6.1f MiB\n", $$9, $$5/1048576}'

# Regenerate the committed state diagram (graphviz's dot draws the SVG).
graph:
	$(GO) test ./model/ -run TestStateGraphIsFresh -update
	dot -Tsvg docs/state-machine.dot -o docs/state-machine.svg

clean:
	rm -rf $(DIST) latch-data bench.out
