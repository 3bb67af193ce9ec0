// Package peers holds the peer side of txmq's side-by-side comparison
// (bench/compare.sh): load generators for NATS JetStream (jsbench) and
// DTM's two-phase messages (dtmbench), the table printer (cmptable), and
// abtest, which compares two txmq builds in alternating pairs of runs.
// It is a module of its own so that the peers' dependencies never reach
// txmq's go.mod; the peer servers themselves (nats-server, dtm) are built
// from the Go module proxy at the versions pinned in go.mod's tool lines.
//
// The generators measure the way `txmq bench` does: a closed loop of
// --inflight outstanding operations, the same histogram
// (internal/bench.Recorder, through the replace directive) and the same
// CPU accounting, and they print the same JSON summary (bench.Result).
package peers
