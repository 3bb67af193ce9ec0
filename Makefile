# txmq: `make run` starts a broker, `make test` runs every test.
GO ?= go
BIN := bin/txmq
VERSION ?= dev

.PHONY: build run test test-short fuzz bench clean

build:
	$(GO) build -trimpath -ldflags "-s -w -X github.com/txmq/txmq/internal/cli.version=$(VERSION)" -o $(BIN) ./cmd/txmq

run:
	$(GO) run ./cmd/txmq serve

test:
	bash scripts/test.sh

test-short:
	$(GO) test -count=1 ./...

fuzz:
	FUZZSCALE=20 bash scripts/test.sh

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin
