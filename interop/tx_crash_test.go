package interop

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// crashLedger is the producer application's local transaction table, as
// a real application keeps one: what ExecuteLocalTransaction decided for
// each transaction (by body, unique per transaction), which is also what
// CheckLocalTransaction answers. A transaction whose local step never ran
// (its half send failed, but the half may have been stored) is answered
// with rollback.
type crashLedger struct {
	mu       sync.Mutex
	decided  map[string]bool // body -> commit (true) or rollback (false): the local transaction's outcome
	executed map[string]bool // ExecuteLocalTransaction ran (the half send returned SEND_OK)
	checks   atomic.Int64
}

// kindOf: commit and rollback are decided in ExecuteLocalTransaction;
// check-commit and check-rollback return unknown there and are decided
// (already, locally) but told to the broker only when it checks.
func (l *crashLedger) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	body := string(m.Body)
	kind, _, _ := strings.Cut(body, ":")
	commit := kind == "commit" || kind == "check-commit"
	l.mu.Lock()
	l.decided[body] = commit
	l.executed[body] = true
	l.mu.Unlock()
	switch kind {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnkonwnState
}

func (l *crashLedger) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.checks.Add(1)
	l.mu.Lock()
	commit, ok := l.decided[string(m.Body)]
	l.mu.Unlock()
	if ok && commit {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

// TestTxCrash runs the official transaction producer against the real
// `txmq` process under SYNC_FLUSH while the broker is SIGKILLed and
// restarted (same directory and ports) at random moments, 10 times. Each
// transaction is committed or rolled back by ExecuteLocalTransaction, or
// left unknown and resolved when checked. After the run and the check
// window a fresh consumer group reads the topic from the start: every
// transaction committed locally whose half send returned SEND_OK is
// delivered, nothing rolled back (or never executed) is, nothing twice,
// and no half message is left pending.
func TestTxCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the real binary")
	}
	t.Parallel()
	const kills = 10
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x7478))
	t.Logf("seed %d", seed)

	dir := t.TempDir()
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // goroutine dumps if the drain stalls
	srv := startTxmq(t, dir+"/data", "--pprofAddr", pprofAddr,
		"--transactionTimeOut", "1000", "--transactionCheckInterval", "1000",
		"--mappedFileSizeCommitLog", fmt.Sprint(1<<20), "--maxMessageSize", fmt.Sprint(64<<10))
	x := srv.X
	topic, group := uniq("T_txcrash"), uniq("PG_txcrash")
	x.createTopic(t, topic, 4)

	ledger := &crashLedger{decided: map[string]bool{}, executed: map[string]bool{}}
	p := startTxProducer(t, x, group, ledger, producer.WithSendMsgTimeout(2*time.Second), producer.WithRetry(1))
	t.Cleanup(func() {
		if t.Failed() { // before the producer shuts down (cleanups run last first)
			logClientGoroutines(t)
		}
	})

	// The stream: two senders, kinds in turn.
	kinds := []string{"commit", "rollback", "check-commit", "check-rollback"}
	stream := startSendStream(t, 2, func(i int64) (string, bool) {
		body := fmt.Sprintf("%s:%d", kinds[i%int64(len(kinds))], i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
		return body, err == nil && res.Status == primitive.SendOK // half send returned SEND_OK
	})

	// Kill at random moments: 0.3 to 2 s into each run, once the stream
	// has made progress in it (so every run carries transactions).
	for k := 1; k <= kills; k++ {
		before := stream.AckN.Load()
		eventually(t, 30*time.Second, func() error {
			if stream.AckN.Load() < before+5 {
				return fmt.Errorf("run %d: %d transactions acknowledged so far, waiting for 5 more", k, stream.AckN.Load())
			}
			return nil
		})
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		srv.Kill()
		t.Logf("SIGKILL %d at %v: %d half sends acknowledged, %d failed", k, time.Since(start).Round(time.Millisecond), stream.AckN.Load(), stream.FailN.Load())
		srv.Start()
	}

	// The check window. The producer registers with the new broker only
	// by its heartbeat (every 30 s); keep it sending until the broker has
	// had an answer to a check, which proves it is registered, then stop
	// and wait until nothing is pending.
	windowStart := time.Now()
	eventually(t, 50*time.Second, func() error {
		st := txStats(t, x)
		if st.Committed.Check+st.RolledBack.Check == 0 {
			return fmt.Errorf("no check answered since the last restart (stats %+v)", st)
		}
		return nil
	})
	stream.Stop()
	drainStart := time.Now()
	var lastPending int64 = -1
	lastProgress, dumped := time.Now(), false
	eventually(t, 30*time.Second, func() error {
		st := txStats(t, x)
		if st.Pending == 0 {
			return nil
		}
		if st.Pending != lastPending {
			lastPending, lastProgress = st.Pending, time.Now()
		} else if !dumped && time.Since(lastProgress) > 5*time.Second {
			// Stalled: what both sides are doing now (logged only if
			// the test fails).
			dumped = true
			t.Logf("no progress for %v at %d pending; goroutines now:", time.Since(lastProgress).Round(time.Second), st.Pending)
			logClientGoroutines(t)
			logHTTP(t, "broker goroutines", "http://"+pprofAddr+"/debug/pprof/goroutine?debug=1")
		}
		err := fmt.Errorf("%d half messages still pending (stats %+v)", st.Pending, st)
		if time.Since(drainStart) > 25*time.Second { // say which, in case this is the last try
			for _, p := range txList(t, x, "--limit", "5").List {
				err = fmt.Errorf("%w\n  pending: %+v", err, p)
			}
		}
		return err
	})
	if lr := txList(t, x); lr.Pending != 0 || len(lr.List) != 0 {
		t.Fatalf("tx list after the window: %+v", lr)
	}
	t.Logf("check window: %v; %d checks answered by the producer over the run", time.Since(windowStart).Round(time.Millisecond), ledger.checks.Load())

	// What must be delivered: committed locally and acknowledged. What
	// must not: everything else (rolled back, or never executed).
	ledger.mu.Lock()
	var want []string
	mayNot := map[string]bool{}
	for body, commit := range ledger.decided {
		switch {
		case commit && stream.Acked(body):
			want = append(want, body)
		default:
			mayNot[body] = true
		}
	}
	for body := range ledger.executed {
		if !stream.Acked(body) {
			t.Errorf("%s: executed locally but SendMessageInTransaction did not return SEND_OK", body)
			break
		}
	}
	ledger.mu.Unlock()
	t.Logf("%d transactions acknowledged (%d to be delivered), %d half sends failed", stream.AckN.Load(), len(want), stream.FailN.Load())

	c := startPushConsumer(t, x, uniq("CG_txcrash"), topic, "", consumerFromFirst())
	var missing []string
	c.In.waitFor(t, 30*time.Second, "every committed transaction", func() bool {
		missing = missing[:0]
		for _, b := range want {
			if !c.In.has(b) {
				missing = append(missing, b)
			}
		}
		return len(missing) == 0
	})
	time.Sleep(time.Second)
	wantSet := map[string]bool{}
	for _, b := range want {
		wantSet[b] = true
	}
	seen := map[string]int{}
	for _, m := range c.In.snapshot() {
		seen[string(m.Body)]++
	}
	var extra, twice []string
	for body, n := range seen {
		switch {
		case !wantSet[body]:
			extra = append(extra, fmt.Sprintf("%s (%d times; known locally %v, half send ok %v)", body, n, mayNot[body], stream.Acked(body)))
		case n != 1:
			twice = append(twice, fmt.Sprintf("%s (%d times)", body, n))
		}
	}
	if len(extra) > 0 {
		t.Errorf("%d transactions delivered that were not committed (rolled back or never executed), e.g. %v", len(extra), extra[:min(len(extra), 10)])
	}
	if len(twice) > 0 {
		t.Errorf("%d transactions delivered more than once, e.g. %v", len(twice), twice[:min(len(twice), 10)])
	}
	st := txStats(t, x)
	t.Logf("done in %v; %d deliveries; final incarnation stats %+v", time.Since(start).Round(time.Millisecond), len(seen), st)
	if st.HookMisses != 0 {
		t.Errorf("hook misses: %d", st.HookMisses)
	}
}
