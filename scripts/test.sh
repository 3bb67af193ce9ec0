#!/usr/bin/env bash
# Runs every check and test txmq has: formatting, vet, unit and integration
# tests with the race detector, a short run of every fuzz target, the
# official-client interop suite and a benchmark smoke run.
# Usage: scripts/test.sh            (what `make test` and CI run)
#        FUZZTIME=30s scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-3s}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 -timeout 15m ./...

step "fuzz targets (${FUZZTIME} each)"
for pkg in $(go list ./...); do
	for fz in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "--- $pkg $fz"
		go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/txmq-fuzz.log 2>&1 || { cat /tmp/txmq-fuzz.log; exit 1; }
	done
done

if [ -f interop/go.mod ]; then
	step "interop (official RocketMQ clients)"
	(cd interop && go vet ./... && go test -race -count=1 -timeout 15m ./...)
fi

step "benchmark smoke (one iteration each, numbers not checked)"
go test -run='^$' -bench=. -benchtime=1x -timeout 10m ./... >/tmp/txmq-bench.log 2>&1 || { cat /tmp/txmq-bench.log; exit 1; }
grep -c '^Benchmark' /tmp/txmq-bench.log | xargs echo "benchmarks run:"

step "all checks passed"
