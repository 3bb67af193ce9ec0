#!/usr/bin/env bash
# Side-by-side comparison of txmq with its peers on this machine, in one go:
#   txmq plain acknowledged sends (SYNC_FLUSH and ASYNC_FLUSH; synchronous
#     senders, and an asynchronous window for ASYNC_FLUSH) and consume,
#   txmq full transactions (half + empty local step + commit + delivery),
#   NATS JetStream acknowledged publishes (nats-server v2.15.2, file storage,
#     sync_interval: always, 500ms (also with PublishAsync) and the default),
#   DTM v1.19.0 two-phase messages (embedded BoltDB store, HTTP branch),
# with the same message size and concurrency, then a table of ratios
# txmq/peer and the issue's other targets (end-to-end p99 at 20,000 msg/s,
# broker RSS under that load and idle, readiness time).
#
# Every server listens on 127.0.0.1 on free ports (DTM binds all interfaces:
# it has no listen-address setting; it is driven over 127.0.0.1 only), every
# run is bounded by `timeout`, and everything started here is stopped on exit.
# Each case starts on a quiet disk: the previous server's data is deleted
# and the page cache written back before the next one starts. Every load
# generator (txmq bench, jsbench, dtmbench) runs with the same garbage
# collector setting, GOGC=off GOMEMLIMIT=128MiB (txmq bench's own default),
# so that none of them charges its own collections to the server it times.
#
# Usage: bench/compare.sh [results-dir]
#   DUR=10s WARMUP=2s SIZE=1024 INFLIGHT=64 RATE=20000 REPEAT=3 bench/compare.sh
#   (REPEAT: alternating rounds of sends, JetStream publishes, sends
#   consumed, transactions and the end-to-end run under ASYNC_FLUSH, for
#   the sends/JetStream and transactions/sends ratios and the end-to-end
#   p99; 0 skips them)
#   (WARMUP: load before each measured DUR, dropped from rates, latencies
#   and the load generators' CPU; the servers' CPU covers both)
#   QUIET_WAIT=300 bench/compare.sh   wait up to 300 s for load average < 0.7
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${DUR:-10s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-1024}
INFLIGHT=${INFLIGHT:-64}
RATE=${RATE:-20000}
REPEAT=${REPEAT:-3}
QUIET_WAIT=${QUIET_WAIT:-0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/txmq-compare.XXXXXX")
OUT=${1:-$WORK/results}
BIN=$WORK/bin
mkdir -p "$OUT" "$BIN"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK/data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '=== %s\n' "$*" >&2; }
CLK=$(getconf CLK_TCK)
now_ms() { echo $(($(date +%s%N) / 1000000)); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
wait_port() { # host port timeout_s
	local end=$(($(date +%s) + $3))
	until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
		[ "$(date +%s)" -lt "$end" ] || { echo "port $2 not open after $3 s" >&2; return 1; }
		sleep 0.02
	done
}
# stop PID: stops a server, then removes the stopped servers' data and
# writes back whatever is still dirty, so that every case starts on a quiet
# disk instead of paying for the previous case's writeback (deleted files'
# dirty pages are dropped, not written).
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	rm -rf "$WORK/data"
	mkdir -p "$WORK/data"
	timeout 120 sync || true
}

# sample_rss PID FILE: every 200 ms, the largest RssAnon and RssFile so far.
sample_rss() {
	local a=0 f=0 x y
	while [ -e "/proc/$1/status" ]; do
		x=$(status_kb "$1" RssAnon)
		y=$(status_kb "$1" RssFile)
		[ "${x:-0}" -gt "$a" ] && a=$x
		[ "${y:-0}" -gt "$f" ] && f=$y
		# Renamed into place: the sampler is killed at any moment, and a
		# truncated file would read as no sample at all.
		echo "$a $f" >"$2.tmp" && mv -f "$2.tmp" "$2"
		sleep 0.2
	done
}

# measure NAME PID CMD...: runs CMD (bounded), stdout to NAME.json, stderr to
# NAME.log, and the server's CPU share and RSS to NAME.srv: the peak of the
# whole resident set (VmHWM) and the peaks of its anonymous part (heap,
# stacks) and its file-backed part (mapped store files, i.e. page cache).
measure() {
	local name=$1 pid=$2
	shift 2
	local c0 t0 c1 t1 sp
	sample_rss "$pid" "$OUT/$name.rss" &
	sp=$!
	c0=$(cpu_ticks "$pid")
	t0=$(now_ms)
	timeout 300 "$@" >"$OUT/$name.json" 2>"$OUT/$name.log" || echo "($name exited with $?)" >&2
	t1=$(now_ms)
	c1=$(cpu_ticks "$pid")
	kill "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
	{
		echo "cpu_pct $(awk -v c=$((c1 - c0)) -v k="$CLK" -v ms=$((t1 - t0)) 'BEGIN{printf "%.1f", 100*c/k/(ms/1000)}')"
		echo "rss_peak_mb $(awk -v kb="$(status_kb "$pid" VmHWM)" 'BEGIN{printf "%.1f", kb/1024}')"
		if [ -s "$OUT/$name.rss" ]; then
			awk '{printf "rss_anon_peak_mb %.1f\nrss_file_peak_mb %.1f\n", $1/1024, $2/1024}' "$OUT/$name.rss"
		fi
	} >"$OUT/$name.srv"
	rm -f "$OUT/$name.rss" "$OUT/$name.rss.tmp"
}

log "machine"
{
	uname -srm
	echo "cpus: $(nproc), memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	go version
	echo "data directory: $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}'))"
	echo "size $SIZE B, in-flight $INFLIGHT, duration $DUR per run after a $WARMUP warm-up, e2e rate $RATE msg/s"
} | tee "$OUT/machine.txt" >&2
if [ "$QUIET_WAIT" -gt 0 ]; then
	end=$(($(date +%s) + QUIET_WAIT))
	while awk '{exit !($1 >= 0.7)}' /proc/loadavg && [ "$(date +%s)" -lt "$end" ]; do sleep 5; done
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

log "build txmq and the peers (Go module proxy)"
(cd "$ROOT" && go build -o "$BIN/txmq" ./cmd/txmq)
(cd "$ROOT/bench/peers" && go build -o "$BIN/" github.com/nats-io/nats-server/v2 github.com/dtm-labs/dtm \
	./jsbench ./dtmbench ./freeport ./cmptable)

SERVER_N=1
# start_txmq FLUSH: starts a fresh broker with an embedded name server;
# sets TXMQ_PID, NS, READY_MS, STARTUP_MS.
start_txmq() {
	local ports bp np dir t0
	ports=$("$BIN/freeport" 2)
	bp=$(echo "$ports" | sed -n 1p)
	np=$(echo "$ports" | sed -n 2p)
	dir=$WORK/data/txmq-$1-$RANDOM
	mkdir -p "$dir"
	t0=$(now_ms)
	"$BIN/txmq" serve --storePathRootDir "$dir" --listenHost 127.0.0.1 --brokerIP1 127.0.0.1 \
		--listenPort "$bp" --namesrvListenPort "$np" --grpcListenPort -1 --httpListenPort -1 \
		--flushDiskType "$1" >"$OUT/server-txmq-$SERVER_N.log" 2>&1 &
	TXMQ_PID=$!
	PIDS+=("$TXMQ_PID")
	local log=$OUT/server-txmq-$SERVER_N.log end=$(($(date +%s) + 10))
	SERVER_N=$((SERVER_N + 1))
	until grep -q 'txmq ready' "$log"; do
		[ "$(date +%s)" -lt "$end" ] || { cat "$log" >&2; return 1; }
		sleep 0.005
	done
	READY_MS=$(($(now_ms) - t0))
	STARTUP_MS=$(sed -n 's/.*txmq ready.*startup=\([0-9.]*\)ms.*/\1/p' "$log" | head -1)
	NS=127.0.0.1:$np
}
# The load generators' GC setting (see the header); the servers keep theirs.
GEN_ENV=(env GOGC=off GOMEMLIMIT=128MiB)
TXB=("${GEN_ENV[@]}" "$BIN/txmq" bench)
COMMON=(-s "$SIZE" -w "$INFLIGHT" --warmup "$WARMUP" --json)

log "txmq: idle RSS and readiness"
# Like every case, readiness starts on a quiet disk: without this, the
# broker's first fsyncs (new data directory and segment) wait for the
# journal to write back the binaries just built (340 ms instead of 4 ms
# in run 19).
timeout 120 sync || true
start_txmq ASYNC_FLUSH
sleep 2
{
	echo "ready_ms $READY_MS"
	echo "startup_ms ${STARTUP_MS:-0}"
	echo "idle_rss_mb $(awk -v kb="$(status_kb "$TXMQ_PID" VmRSS)" 'BEGIN{printf "%.1f", kb/1024}')"
} >"$OUT/metrics.srv"
stop "$TXMQ_PID"

log "txmq: plain sends, SYNC_FLUSH"
start_txmq SYNC_FLUSH
measure txmq-send-sync "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t Bench -d "$DUR" "${COMMON[@]}"
stop "$TXMQ_PID"

log "txmq: plain sends, ASYNC_FLUSH, then consume them"
start_txmq ASYNC_FLUSH
measure txmq-send-async "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t Bench -d "$DUR" "${COMMON[@]}"
acked=$("$BIN/cmptable" field "$OUT/txmq-send-async.json" acked 2>/dev/null || echo 0)
measure txmq-consume "$TXMQ_PID" "${TXB[@]}" consumer -n "$NS" -t Bench --from earliest -c "${acked%.*}" -d 60s -s "$SIZE" -w "$INFLIGHT" --json
stop "$TXMQ_PID"

log "txmq: plain sends with an asynchronous window (one submitter, --async), ASYNC_FLUSH"
start_txmq ASYNC_FLUSH
measure txmq-send-async-window "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t Bench -d "$DUR" --async "${COMMON[@]}"
stop "$TXMQ_PID"

log "txmq: plain sends consumed in the same run (like a transaction's delivery), ASYNC_FLUSH"
start_txmq ASYNC_FLUSH
measure txmq-send-consume-async "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t BenchSC -d "$DUR" --e2e "${COMMON[@]}"
stop "$TXMQ_PID"

log "txmq: transactions (half, empty local step, commit, delivery), SYNC_FLUSH"
start_txmq SYNC_FLUSH
measure txmq-tx-sync "$TXMQ_PID" "${TXB[@]}" tx -n "$NS" -t BenchTx -d "$DUR" "${COMMON[@]}"
stop "$TXMQ_PID"

log "txmq: transactions, ASYNC_FLUSH"
start_txmq ASYNC_FLUSH
measure txmq-tx-async "$TXMQ_PID" "${TXB[@]}" tx -n "$NS" -t BenchTx -d "$DUR" "${COMMON[@]}"
stop "$TXMQ_PID"

# start_nats SYNC: SYNC is "always" or "" (the default periodic sync).
start_nats() {
	local port dir
	port=$("$BIN/freeport" 1)
	dir=$WORK/data/nats-$RANDOM
	mkdir -p "$dir"
	{
		echo "listen: 127.0.0.1:$port"
		echo "jetstream {"
		echo "  store_dir: \"$dir\""
		[ -n "$1" ] && echo "  sync_interval: $1"
		echo "}"
	} >"$dir.conf"
	"$BIN/nats-server" -c "$dir.conf" >"$OUT/server-nats-$SERVER_N.log" 2>&1 &
	SERVER_N=$((SERVER_N + 1))
	NATS_PID=$!
	PIDS+=("$NATS_PID")
	wait_port 127.0.0.1 "$port" 10
	NATS_URL=nats://127.0.0.1:$port
}
# The transactions/sends ratio under ASYNC_FLUSH sits near its target and
# two single runs minutes apart differ by more than the margin on a shared
# machine, so it is measured again in REPEAT alternating rounds of plain
# sends, sends consumed in the same run, and transactions, each on a fresh
# broker; cmptable reports every round's ratios and their median. Each
# round ends with the end-to-end run at RATE msg/s, whose p99 varies as
# much from one run to the next. JetStream's acknowledged publishes at
# sync_interval 500ms follow each round's sends, for the sends/JetStream
# ratio, which moves as much (1.46-2.06x in single runs 32-36).
log "txmq: $REPEAT alternating rounds of sends, JetStream publishes (500ms), sends consumed, transactions, e2e at $RATE msg/s, ASYNC_FLUSH"
for i in $(seq 1 "$REPEAT"); do
	start_txmq ASYNC_FLUSH
	measure "txmq-alt-send-$i" "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t Bench -d "$DUR" "${COMMON[@]}"
	stop "$TXMQ_PID"
	start_nats 500ms
	measure "js-alt-500ms-$i" "$NATS_PID" "${GEN_ENV[@]}" "$BIN/jsbench" -url "$NATS_URL" -size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -warmup "$WARMUP" -json
	stop "$NATS_PID"
	start_txmq ASYNC_FLUSH
	measure "txmq-alt-sendc-$i" "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t BenchSC -d "$DUR" --e2e "${COMMON[@]}"
	stop "$TXMQ_PID"
	start_txmq ASYNC_FLUSH
	measure "txmq-alt-tx-$i" "$TXMQ_PID" "${TXB[@]}" tx -n "$NS" -t BenchTx -d "$DUR" "${COMMON[@]}"
	stop "$TXMQ_PID"
	start_txmq ASYNC_FLUSH
	measure "txmq-alt-e2e-$i" "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t BenchE2E -d "$DUR" --rate "$RATE" --e2e "${COMMON[@]}"
	stop "$TXMQ_PID"
done

log "txmq: send + consume at $RATE msg/s (end-to-end latency, RSS), ASYNC_FLUSH and SYNC_FLUSH"
start_txmq ASYNC_FLUSH
measure txmq-e2e-20k "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t BenchE2E -d "$DUR" --rate "$RATE" --e2e "${COMMON[@]}"
stop "$TXMQ_PID"
start_txmq SYNC_FLUSH
measure txmq-e2e-20k-sync "$TXMQ_PID" "${TXB[@]}" producer -n "$NS" -t BenchE2E -d "$DUR" --rate "$RATE" --e2e "${COMMON[@]}"
stop "$TXMQ_PID"

log "NATS JetStream: acknowledged publishes, sync_interval: always"
start_nats always
measure js-send-always "$NATS_PID" "${GEN_ENV[@]}" "$BIN/jsbench" -url "$NATS_URL" -size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -warmup "$WARMUP" -json
stop "$NATS_PID"
log "NATS JetStream: acknowledged publishes, sync_interval: 500ms (txmq ASYNC_FLUSH's flush interval)"
start_nats 500ms
measure js-send-500ms "$NATS_PID" "${GEN_ENV[@]}" "$BIN/jsbench" -url "$NATS_URL" -size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -warmup "$WARMUP" -json
stop "$NATS_PID"
log "NATS JetStream: asynchronous publishes (PublishAsync, window of INFLIGHT acks), sync_interval: 500ms"
start_nats 500ms
measure js-send-500ms-async "$NATS_PID" "${GEN_ENV[@]}" "$BIN/jsbench" -url "$NATS_URL" -size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -warmup "$WARMUP" -async -json
stop "$NATS_PID"
log "NATS JetStream: acknowledged publishes, default sync interval"
start_nats ""
measure js-send-default "$NATS_PID" "${GEN_ENV[@]}" "$BIN/jsbench" -url "$NATS_URL" -size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -warmup "$WARMUP" -json
stop "$NATS_PID"

log "DTM: two-phase messages (Prepare, empty local step, Submit, HTTP branch delivery)"
ports=$("$BIN/freeport" 3)
dtmdir=$WORK/data/dtm
mkdir -p "$dtmdir"
(cd "$dtmdir" && HTTP_PORT=$(echo "$ports" | sed -n 1p) GRPC_PORT=$(echo "$ports" | sed -n 2p) \
	JSON_RPC_PORT=$(echo "$ports" | sed -n 3p) LOG_LEVEL=warn exec "$BIN/dtm" >"$OUT/server-dtm.log" 2>&1) &
DTM_PID=$!
PIDS+=("$DTM_PID")
wait_port 127.0.0.1 "$(echo "$ports" | sed -n 1p)" 20
measure dtm-msg "$DTM_PID" "${GEN_ENV[@]}" "$BIN/dtmbench" -dtm "http://127.0.0.1:$(echo "$ports" | sed -n 1p)/api/dtmsvr" \
	-size "$SIZE" -inflight "$INFLIGHT" -duration "$DUR" -json
stop "$DTM_PID"

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2
log "results in $OUT"
"$BIN/cmptable" "$OUT" | tee "$OUT/table.txt"
