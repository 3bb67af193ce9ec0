package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil"
)

// These tests check that each mode runs against a real broker and that its
// counts add up. They assert nothing about timing.

func TestRunModes(t *testing.T) {
	tb := testutil.RunBroker(t)
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, r *Result)
	}{
		{"producer sync", Config{Mode: ModeProducer, Topic: "BenchSync", Inflight: 8, Count: 500, Size: 100},
			func(t *testing.T, r *Result) { wantAcked(t, r, 500) }},
		{"producer async", Config{Mode: ModeProducer, Topic: "BenchAsync", Inflight: 16, Async: true, Count: 500, Size: 64, Conns: 2},
			func(t *testing.T, r *Result) { wantAcked(t, r, 500) }},
		{"producer batch", Config{Mode: ModeProducer, Topic: "BenchBatch", Inflight: 4, Batch: 10, Count: 205, Size: 32},
			func(t *testing.T, r *Result) { wantAcked(t, r, 205) }},
		{"producer small messages and binary headers", Config{Mode: ModeProducer, Topic: "BenchSmall", Inflight: 4, Count: 100, Size: 8, Binary: true},
			func(t *testing.T, r *Result) { wantAcked(t, r, 100) }},
		{"producer e2e with rate", Config{Mode: ModeProducer, Topic: "BenchE2E", Inflight: 8, Count: 300, Rate: 1000, E2E: true},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 300)
				if r.Received != r.Acked || r.E2E == nil || r.E2E.Count != uint64(r.Received) {
					t.Errorf("received %d of %d acked, e2e %+v", r.Received, r.Acked, r.E2E)
				}
			}},
		{"producer with a warm-up", Config{Mode: ModeProducer, Topic: "BenchWarm", Inflight: 4, Rate: 2000,
			Warmup: 300 * time.Millisecond, Duration: 500 * time.Millisecond},
			func(t *testing.T, r *Result) {
				// ~600 messages before the measured phase, ~1000 in it.
				if r.WarmupSec != 0.3 || r.DurationSec < 0.4 || r.DurationSec > 1 {
					t.Errorf("warm-up %.2f s, measured %.2f s", r.WarmupSec, r.DurationSec)
				}
				if r.Acked == 0 || r.Latency.Count == 0 || r.Latency.Count >= uint64(r.Acked) {
					t.Errorf("acked %d, latency samples %d: warm-up samples not dropped", r.Acked, r.Latency.Count)
				}
				if r.MsgsPerSec < 1000 || r.MsgsPerSec > 3000 {
					t.Errorf("%.0f msgs/s measured at a 2000/s cap", r.MsgsPerSec)
				}
			}},
		{"consumer of the sync producer's messages", Config{Mode: ModeConsumer, Topic: "BenchSync", From: "earliest", Count: 500, Duration: 20 * time.Second},
			func(t *testing.T, r *Result) {
				if r.Received != 500 || r.Latency.Count != 500 {
					t.Errorf("received %d (latency samples %d), want 500", r.Received, r.Latency.Count)
				}
				// Pulls counts every answered pull; none returns more
				// than pullBatch messages.
				if r.Pulls == 0 || r.Pulls*pullBatch < r.Received {
					t.Errorf("%d pulls for %d messages", r.Pulls, r.Received)
				}
			}},
		{"tx commit only", Config{Mode: ModeTx, Topic: "BenchTx", Inflight: 8, Count: 300},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 300)
				wantTx(t, r)
				if r.Tx.Committed != 300 || r.Tx.Delivered != 300 || !r.Tx.EndOneway {
					t.Errorf("committed %d delivered %d (END oneway %v), want 300 with END oneway", r.Tx.Committed, r.Tx.Delivered, r.Tx.EndOneway)
				}
				if r.Pulls == 0 || r.Pulls*pullBatch < r.Received {
					t.Errorf("%d pulls for %d messages", r.Pulls, r.Received)
				}
			}},
		{"tx with END answered", Config{Mode: ModeTx, Topic: "BenchTxSync", Inflight: 8, Count: 200, CommitRatio: 0.7,
			RollbackRatio: 0.3, EndSync: true},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 200)
				wantTx(t, r)
				if r.Tx.EndOneway || r.Tx.Committed+r.Tx.RolledBack != 200 || r.Tx.RolledBack == 0 {
					t.Errorf("END oneway %v, committed %d, rolled back %d", r.Tx.EndOneway, r.Tx.Committed, r.Tx.RolledBack)
				}
			}},
		{"tx mix with check-back", Config{Mode: ModeTx, Topic: "BenchTxMix", Inflight: 8, Count: 400, CommitRatio: 0.6,
			RollbackRatio: 0.2, CheckImmunity: 1, LocalDelay: time.Millisecond},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 400)
				wantTx(t, r)
				x := r.Tx
				if x.RolledBack == 0 || x.LeftUnknown == 0 || x.CheckCommitted != x.LeftUnknown {
					t.Errorf("rolled back %d, left unknown %d, check-committed %d", x.RolledBack, x.LeftUnknown, x.CheckCommitted)
				}
			}},
		// A burst of checks larger than the connection's handler slots
		// (64): answers that held their slot for the END's round trip
		// paused the read loop that would have read the responses, and
		// timed out (7k tx/s and 24k left unknown in a 5 s run by hand).
		{"tx check burst beyond the handler slots", Config{Mode: ModeTx, Topic: "BenchTxBurst", Inflight: 64, Count: 3000,
			CommitRatio: 0.1, CheckImmunity: 1},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 3000)
				wantTx(t, r)
				x := r.Tx
				if x.LeftUnknown < 2000 || x.CheckCommitted != x.LeftUnknown || x.CheckEndErrors != 0 {
					t.Errorf("left unknown %d, check-committed %d, check END errors %d", x.LeftUnknown, x.CheckCommitted, x.CheckEndErrors)
				}
			}},
		{"tx unknown answered rollback", Config{Mode: ModeTx, Topic: "BenchTxRB", Inflight: 4, Count: 60, CommitRatio: 0.5,
			CheckImmunity: 1, CheckAnswer: "rollback"},
			func(t *testing.T, r *Result) {
				wantAcked(t, r, 60)
				wantTx(t, r)
				if r.Tx.CheckRolledBack != r.Tx.LeftUnknown || r.Tx.LeftUnknown == 0 {
					t.Errorf("left unknown %d, check-rolled-back %d", r.Tx.LeftUnknown, r.Tx.CheckRolledBack)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := tt.cfg
			cfg.Namesrv = tb.NamesrvAddr
			cfg.Out = &out
			cfg.Interval = 200 * time.Millisecond
			cfg.InProcessBroker = true
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "load generator CPU") || r.CPU.Cores == 0 {
				t.Errorf("no CPU report:\n%s", out.String())
			}
			tt.check(t, r)
			if t.Failed() {
				t.Logf("output:\n%s", out.String())
			}
		})
	}
}

func wantAcked(t *testing.T, r *Result, n int64) {
	t.Helper()
	if r.Sent != r.Acked+r.Errors {
		t.Errorf("sent %d != acked %d + errors %d", r.Sent, r.Acked, r.Errors)
	}
	if r.Sent != n || r.Acked != n || r.Errors != 0 {
		t.Errorf("sent %d acked %d errors %d (%v), want %d sent and acked", r.Sent, r.Acked, r.Errors, r.ErrorKinds, n)
	}
	if r.Latency.Count == 0 || r.MsgsPerSec <= 0 {
		t.Errorf("no latency or rate: %+v", r)
	}
}

// wantTx checks that every committed message, and no rolled-back one, was
// delivered exactly once.
func wantTx(t *testing.T, r *Result) {
	t.Helper()
	x := r.Tx
	if x == nil {
		t.Fatal("no tx result")
	}
	if got := x.Committed + x.RolledBack + x.LeftUnknown; got != x.HalfAcked {
		t.Errorf("committed %d + rolled back %d + unknown %d != halves %d", x.Committed, x.RolledBack, x.LeftUnknown, x.HalfAcked)
	}
	if x.Missing != 0 || x.Delivered != x.Committed+x.CheckCommitted || x.RolledBackDelivered != 0 ||
		x.Duplicates != 0 || x.StillUnknown != 0 || x.DeliveredEarly != 0 || x.EndErrors != 0 {
		t.Errorf("tx result %+v", *x)
	}
	if r.E2E == nil || r.E2E.Count != uint64(x.Delivered) {
		t.Errorf("e2e %+v, delivered %d", r.E2E, x.Delivered)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []Config{
		{Mode: "nosuch", Namesrv: "x"},
		{Mode: ModeProducer},
		{Mode: ModeProducer, Namesrv: "x", Inflight: -1},
		{Mode: ModeTx, Namesrv: "x", Batch: 2},
		{Mode: ModeTx, Namesrv: "x", CommitRatio: 0.8, RollbackRatio: 0.5},
		{Mode: ModeTx, Namesrv: "x", Async: true},
		{Mode: ModeConsumer, Namesrv: "x", From: "middle"},
		{Mode: ModeTx, Namesrv: "x", CheckAnswer: "maybe"},
	}
	for _, c := range tests {
		if err := c.setDefaults(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestStamp(t *testing.T) {
	b := make([]byte, 32)
	putStamp(b, 42, 1234567)
	if seq, ns, ok := readStamp(b); !ok || seq != 42 || ns != 1234567 {
		t.Errorf("stamp read back %d %d %v", seq, ns, ok)
	}
	if _, _, ok := readStamp(b[:10]); ok {
		t.Error("short body read as stamped")
	}
}

// TestClaimPacing checks where latency counts from under --rate: from the
// wake-up of a sender that slept for its tick (however late the timer),
// from that same wake-up for the rest of the tick when the sender was not
// held by the window, and from the tick itself when it was held or when
// the tick is not the one it woke for.
func TestClaimPacing(t *testing.T) {
	ctx := context.Background()
	r := &runner{cfg: Config{Rate: 100_000}} // 100 messages per 1 ms tick
	r.startNs = time.Now().Add(3 * time.Millisecond).UnixNano()
	var p pacer

	seq, n, t0, ok := r.claim(ctx, &p, false, 1)
	if !ok || seq != 0 || n != 1 {
		t.Fatalf("first claim: seq %d n %d ok %v", seq, n, ok)
	}
	if t0 < r.startNs || t0 != p.woke || p.due != r.startNs {
		t.Fatalf("slept for the tick: t0 %d, due %d, pacer %+v", t0, r.startNs, p)
	}
	if _, _, t1, _ := r.claim(ctx, &p, false, 1); t1 != p.woke {
		t.Errorf("rest of the tick, not held: counts from %d, want the wake-up %d", t1, p.woke)
	}
	if _, _, t2, _ := r.claim(ctx, &p, true, 1); t2 != r.startNs {
		t.Errorf("rest of the tick, held by the window: counts from %d, want the tick %d", t2, r.startNs)
	}

	// A tick already past that this sender did not wake for counts from
	// its due time even when not held.
	r2 := &runner{cfg: Config{Rate: 1000}} // one message per tick
	r2.startNs = time.Now().Add(-10 * time.Millisecond).UnixNano()
	var p2 pacer
	if _, _, t3, _ := r2.claim(ctx, &p2, false, 1); t3 != r2.startNs {
		t.Errorf("past tick: counts from %d, want its due time %d", t3, r2.startNs)
	}

	// Without a rate, latency counts from the claim.
	r3 := &runner{}
	before := time.Now().UnixNano()
	if _, _, t4, _ := r3.claim(ctx, &pacer{}, false, 1); t4 < before {
		t.Errorf("unpaced: counts from %d, before the claim at %d", t4, before)
	}
}
