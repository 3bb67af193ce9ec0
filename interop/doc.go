// Package interop proves txmq's compatibility with the official Apache
// RocketMQ clients: its tests drive a real txmq broker with
// github.com/apache/rocketmq-client-go/v2. It is a separate module so that
// the product's go.mod stays free of the client and its dependencies.
//
// Run it from this directory:
//
//	go test -race -count=1 ./...
//
// Most tests run a broker and a name server in the test process
// (internal/testutil.RunBroker, free loopback ports, data in a temporary
// directory); the restart test builds the real binary once (TestMain) and
// runs `txmq serve` under SYNC_FLUSH, stopping it with SIGTERM and SIGKILL
// mid-stream. -short skips the real binary.
//
// Environment:
//
//	ROCKETMQ_GO_LOG_LEVEL=info|debug  the official client's log (default: errors only)
//	TXMQ_TEST_LOG_LEVEL=debug         the in-process broker's log, shown for failed tests and with -v
//	TXMQ_STORM_SECONDS=50             how long BenchmarkCheckStorm sends (default 5)
//
// A failed run repeats the failed tests' output at its end, after the
// client's log; a failed test that ran `txmq serve` shows that process's
// goroutines (SIGQUIT), and TestTxCrash also dumps both sides when its
// check window stalls (diagnostics_test.go).
//
// The official client keeps broadcasting offsets in files under
// $rocketmq.client.localOffsetStoreDir (default ~/.rocketmq_client_go),
// read once at start-up, so TestMain re-runs the test binary with that
// variable pointing at a temporary directory.
//
// Workarounds for the client (not for txmq), each explained where it is
// applied: every producer and consumer gets its own instance name (the
// client shares one connection, clientID and name-server list per
// instance); consumers are shut down only after their rebalancing has
// settled, a transaction producer's checks wait while it shuts down, the
// pull test uses the lite-pull API rather than PullFrom, and
// push consumers accept the largest span of cached offsets the client
// allows (its flow-control counters are shared by the queues' pull
// goroutines unsynchronised), because these would otherwise trip data
// races inside the client under -race. A fresh producer's first send goes
// alone before parallel ones: the client can fail concurrent first sends
// to a topic (docs/compat.md).
package interop
