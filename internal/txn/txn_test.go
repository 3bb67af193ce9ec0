package txn

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/testutil/testkit"
)

func TestPrepareStoresHalf(t *testing.T) {
	h := newHarness(t, nil)
	r := h.prepare("PG", uniqID(1))
	if r.TransactionID != uniqID(1) || r.Duplicate {
		t.Fatalf("result %+v", r)
	}
	rec, err := h.log.ReadAt(r.Append.CommitLogOffset)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := message.Decode(rec)
	props := message.ParseProperties(m.Properties)
	want := map[string]string{message.PropRealTopic: "TopicA", message.PropRealQueueID: "1", message.PropProducerGroup: "PG",
		message.PropTransactionID: uniqID(1), message.PropTransactionPrepared: "true", message.PropUniqClientMessageID: uniqID(1)}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("half property %s = %q, want %q", k, props[k], v)
		}
	}
	if m.Topic != message.TransHalfTopic || m.QueueID != 0 || m.SysFlag&message.FlagTransactionMask != 0 {
		t.Errorf("half stored as %s/%d sysFlag %#x", m.Topic, m.QueueID, m.SysFlag)
	}
	if got := h.visible("TopicA", 1); len(got) != 0 {
		t.Fatalf("half visible in the real queue: %d", len(got))
	}
	if h.pendingN() != 1 || h.svc.Stats().HalfStored != 1 {
		t.Fatalf("pending %d, stats %+v", h.pendingN(), h.svc.Stats())
	}
}

func TestPrepareRefusals(t *testing.T) {
	tests := []struct {
		name   string
		enable bool
		props  []string
		want   error
	}{
		{"disabled", false, nil, ErrDisabled},
		{"delay level", true, []string{message.PropDelayTimeLevel, "3"}, ErrDelayNotAllowed},
		{"timer deliver", true, []string{message.PropTimerDeliverMs, "1700000000000"}, ErrDelayNotAllowed},
		{"timer delay sec", true, []string{message.PropTimerDelaySec, "10"}, ErrDelayNotAllowed},
		{"delay 0 is fine", true, []string{message.PropDelayTimeLevel, "0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Enable = tt.enable })
			_, err := h.svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniqID(1), "b", tt.props...), "PG")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEndSequences(t *testing.T) {
	C, R, U := ResolutionCommit, ResolutionRollback, ResolutionUnknown
	tests := []struct {
		name   string
		ends   []Resolution
		final  State
		copies int
	}{
		{"commit", []Resolution{C}, StateCommitted, 1},
		{"rollback", []Resolution{R}, StateRolledBack, 0},
		{"commit after rollback", []Resolution{R, C}, StateRolledBack, 0},
		{"rollback after commit", []Resolution{C, R}, StateCommitted, 1},
		{"double commit", []Resolution{C, C}, StateCommitted, 1},
		{"unknown then commit", []Resolution{U, C, U}, StateCommitted, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.prepare("PG", uniqID(7))
			applied := 0
			for i, res := range tt.ends {
				er, err := h.endOff("PG", r, res)
				if err != nil {
					t.Fatalf("END %d: %v", i, err)
				}
				if er.Applied {
					applied++
				}
			}
			if applied != 1 {
				t.Fatalf("%d ENDs applied", applied)
			}
			if n := h.copiesOf(uniqID(7)); n != tt.copies {
				t.Fatalf("%d visible copies, want %d", n, tt.copies)
			}
			er, _ := h.endOff("PG", r, C)
			if !er.Duplicate || er.State != tt.final {
				t.Fatalf("late END: %+v, want duplicate %v", er, tt.final)
			}
			if h.pendingN() != 0 {
				t.Fatal("still pending")
			}
			if tt.copies == 1 {
				m := h.visible("TopicA", 1)[0]
				if m.PreparedTransactionOffset != r.Append.CommitLogOffset || m.SysFlag&message.FlagTransactionMask != message.FlagTransCommit {
					t.Fatalf("copy: prepared offset %d (half %d), sysFlag %#x", m.PreparedTransactionOffset, r.Append.CommitLogOffset, m.SysFlag)
				}
				p := message.ParseProperties(m.Properties)
				for _, k := range []string{message.PropTransactionPrepared, message.PropRealTopic, message.PropRealQueueID} {
					if _, ok := p[k]; ok {
						t.Errorf("copy keeps %s", k)
					}
				}
				if p[message.PropUniqClientMessageID] != uniqID(7) || string(m.Body) != "body-"+uniqID(7) || m.BornTimestamp != 1_699_999_999_000 {
					t.Errorf("copy lost UNIQ_KEY, body or born time: %+v", m)
				}
			}
		})
	}
}

func TestEndRacing(t *testing.T) {
	h := newHarness(t, nil)
	const n = 40
	rs := make([]PrepareResult, n)
	for i := range rs {
		rs[i] = h.prepare("PG", uniqID(i))
	}
	applied := make([]int, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range rs {
		for _, res := range []Resolution{ResolutionCommit, ResolutionRollback, ResolutionCommit, ResolutionRollback} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				er, err := h.endOff("PG", rs[i], res)
				if err != nil {
					t.Error(err)
					return
				}
				if er.Applied {
					mu.Lock()
					applied[i]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	st := h.svc.Stats()
	for i := range rs {
		if applied[i] != 1 {
			t.Errorf("txn %d: %d ENDs applied", i, applied[i])
		}
		if c := h.copiesOf(uniqID(i)); c > 1 {
			t.Errorf("txn %d: %d copies", i, c)
		}
	}
	if got := st.Committed.Client + st.RolledBack.Client; got != n || st.DuplicateEnds != 3*n {
		t.Fatalf("stats %+v", st)
	}
	if int(st.Committed.Client) != len(h.visible("TopicA", 1)) {
		t.Fatalf("%d commits, %d copies", st.Committed.Client, len(h.visible("TopicA", 1)))
	}
}

func TestEndMatching(t *testing.T) {
	h := newHarness(t, nil)
	r := h.prepare("PG", uniqID(1))
	r2 := h.prepare("PG", uniqID(2))
	ctx := context.Background()
	// Errors first: nothing changes.
	errCases := []struct {
		name string
		req  EndRequest
		want error
	}{
		{"unknown offset", EndRequest{ProducerGroup: "PG", CommitLogOffset: r.Append.CommitLogOffset + 3, HasOffsets: true, Resolution: ResolutionCommit}, ErrUnknownTransaction},
		{"unknown id", EndRequest{ProducerGroup: "PG", TransactionID: "NOPE", Resolution: ResolutionCommit}, ErrUnknownTransaction},
		{"group mismatch", EndRequest{ProducerGroup: "OTHER", CommitLogOffset: r.Append.CommitLogOffset, TranStateTableOffset: r.Append.QueueOffset, HasOffsets: true, Resolution: ResolutionCommit}, ErrGroupMismatch},
		{"queue offset mismatch", EndRequest{ProducerGroup: "PG", CommitLogOffset: r.Append.CommitLogOffset, TranStateTableOffset: r.Append.QueueOffset + 5, HasOffsets: true, Resolution: ResolutionCommit}, ErrOffsetMismatch},
		{"nothing to match", EndRequest{ProducerGroup: "PG", Resolution: ResolutionCommit}, ErrBadRequest},
	}
	for _, tt := range errCases {
		if _, err := h.svc.End(ctx, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if h.pendingN() != 2 {
		t.Fatal("an error changed state")
	}
	// By transaction id (gRPC clients, operators).
	er, err := h.svc.End(ctx, EndRequest{ProducerGroup: "PG", TransactionID: uniqID(1), Resolution: ResolutionCommit})
	if err != nil || !er.Applied || er.HalfOffset != r.Append.CommitLogOffset {
		t.Fatalf("by id: %+v %v", er, err)
	}
	// By offset.
	if er, err := h.endOff("PG", r2, ResolutionRollback); err != nil || !er.Applied {
		t.Fatalf("by offset: %+v %v", er, err)
	}
	// Late ENDs of both kinds are duplicates.
	if er, err := h.endOff("PG", r, ResolutionRollback); err != nil || !er.Duplicate || er.State != StateCommitted {
		t.Fatalf("late by offset: %+v %v", er, err)
	}
	if er, err := h.svc.End(ctx, EndRequest{TransactionID: uniqID(2), Resolution: ResolutionCommit}); err != nil || !er.Duplicate || er.State != StateRolledBack {
		t.Fatalf("late by id: %+v %v", er, err)
	}
	// After a restart the recent table is gone: still "already resolved".
	h.restart()
	if er, err := h.endOff("PG", r, ResolutionCommit); err != nil || !er.Duplicate {
		t.Fatalf("after restart: %+v %v", er, err)
	}
	if n := h.copiesOf(uniqID(1)); n != 1 {
		t.Fatalf("%d copies", n)
	}
}

func TestPrepareIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	r1 := h.prepare("PG", uniqID(1))
	r2 := h.prepare("PG", uniqID(1))
	if !r2.Duplicate || r2.Append.CommitLogOffset != r1.Append.CommitLogOffset || r2.Append.QueueOffset != r1.Append.QueueOffset {
		t.Fatalf("repeat: %+v vs %+v", r2, r1)
	}
	// Another group with the same id is another transaction.
	r3 := h.prepare("PG2", uniqID(1))
	if r3.Duplicate || r3.Append.CommitLogOffset == r1.Append.CommitLogOffset {
		t.Fatalf("other group: %+v", r3)
	}
	// Concurrent duplicates.
	var wg sync.WaitGroup
	offs := make([]int64, 16)
	for i := range offs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniqID(2), "b"), "PG")
			if err != nil {
				t.Error(err)
			}
			offs[i] = r.Append.CommitLogOffset
		}()
	}
	wg.Wait()
	for _, o := range offs {
		if o != offs[0] {
			t.Fatalf("concurrent duplicates got offsets %v", offs)
		}
	}
	if n := h.log.MaxOffset(message.TransHalfTopic, 0); n != 3 {
		t.Fatalf("%d halves stored, want 3", n)
	}
	// After commit and restart, a repeat still answers the first half.
	if _, err := h.endOff("PG", r1, ResolutionCommit); err != nil {
		t.Fatal(err)
	}
	r4 := h.prepare("PG", uniqID(1))
	if !r4.Duplicate || r4.Append.CommitLogOffset != r1.Append.CommitLogOffset {
		t.Fatalf("repeat after commit: %+v", r4)
	}
}

// TestPrepareRepeatAfterRollback: the client retries a half send whose
// answer was lost; when a check has meanwhile rolled the transaction back,
// the repeat is refused, so the producer never runs its local transaction
// and commits what the broker has already rolled back. (After a commit the
// repeat answers with the first half, see TestPrepareIdempotent.)
func TestPrepareRepeatAfterRollback(t *testing.T) {
	h := newHarness(t, nil)
	r := h.prepare("PG", uniqID(7))
	if _, err := h.endOff("PG", r, ResolutionRollback); err != nil {
		t.Fatal(err)
	}
	_, err := h.svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniqID(7), "body"), "PG")
	if !errors.Is(err, ErrAlreadyEnded) {
		t.Fatalf("repeat after rollback: %v", err)
	}
	if code, _ := ResponseCode(err); code != remoting.RespTransactionFailed {
		t.Fatalf("code %d", code)
	}
	if n := h.log.MaxOffset(message.TransHalfTopic, 0); n != 1 {
		t.Fatalf("%d halves stored, want 1", n)
	}
	if n := h.copiesOf(uniqID(7)); n != 0 {
		t.Fatalf("%d copies of a rolled-back transaction", n)
	}
}

func TestCheckTiming(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckMax = 3 })
	p := h.connectProducer("PG", nil)
	r := h.prepare("PG", uniqID(1))
	rEnded := h.prepare("PG", uniqID(3))
	if _, err := h.endOff("PG", rEnded, ResolutionCommit); err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration, want int) {
		t.Helper()
		h.clk.Add(d)
		h.tick()
		settle()
		if got := p.count(); got != want {
			t.Fatalf("after +%v: %d checks, want %d", d, got, want)
		}
	}
	step(5999*time.Millisecond, 0) // not before the timeout
	step(time.Millisecond, 1)      // at store time + timeout
	c := <-p.got
	if c.ext["commitLogOffset"] != strconv.FormatInt(r.Append.CommitLogOffset, 10) ||
		c.ext["tranStateTableOffset"] != strconv.FormatInt(r.Append.QueueOffset, 10) ||
		c.ext["msgId"] != uniqID(1) || c.ext["transactionId"] != uniqID(1) || c.ext["bname"] != "broker-a" ||
		c.ext["offsetMsgId"] != message.OffsetMessageID(storeHost, r.Append.CommitLogOffset) || c.ext["topic"] != "TopicA" {
		t.Fatalf("check header %v", c.ext)
	}
	if c.msg.Topic != "TopicA" || c.msg.QueueID != 1 || string(c.msg.Body) != "body-"+uniqID(1) {
		t.Fatalf("check body %s/%d %q", c.msg.Topic, c.msg.QueueID, c.msg.Body)
	}
	mp := message.ParseProperties(c.msg.Properties)
	if mp[message.PropProducerGroup] != "PG" || mp[message.PropUniqClientMessageID] != uniqID(1) || mp[message.PropTransactionID] != uniqID(1) {
		t.Fatalf("check properties %v", mp)
	}
	step(0, 1)                      // one check in flight: nothing more now
	step(29999*time.Millisecond, 1) // interval not over
	step(time.Millisecond, 2)
	if e, _ := h.entry(r.Append.CommitLogOffset); e.checks != 2 {
		t.Fatalf("checks %d", e.checks)
	}
	step(30*time.Second, 3) // the last one
	step(30*time.Second, 3) // CheckMax sent, no answer for an interval: discarded
	if _, ok := h.entry(r.Append.CommitLogOffset); ok {
		t.Fatal("not discarded after CheckMax checks")
	}
	step(time.Hour, 3) // and never checked again
	for _, ch := range p.checks {
		if ch.ext["msgId"] == uniqID(3) {
			t.Fatal("ended transaction checked")
		}
	}
	st := h.svc.Stats()
	if st.Discarded != 1 || st.ChecksSent != 3 {
		t.Fatalf("stats %+v", st)
	}
	d, err := h.svc.Discarded(10)
	if err != nil || len(d) != 1 || d[0].TransactionID != uniqID(1) || d[0].ChecksSent != 3 || d[0].Reason != "checks" || d[0].State != StateDiscarded {
		t.Fatalf("discarded %+v %v", d, err)
	}
	// A late client END of a discarded transaction changes nothing.
	if er, err := h.endOff("PG", r, ResolutionCommit); err != nil || !er.Duplicate {
		t.Fatalf("END after discard: %+v %v", er, err)
	}
	if h.copiesOf(uniqID(1)) != 0 {
		t.Fatal("discarded transaction committed by a late END")
	}
}

func TestCheckImmunity(t *testing.T) {
	h := newHarness(t, nil)
	p := h.connectProducer("PG", nil)
	h.prepare("PG", uniqID(1), message.PropCheckImmunityTimeSeconds, "60")
	h.clk.Add(59999 * time.Millisecond)
	h.tick()
	settle()
	if p.count() != 0 {
		t.Fatal("checked inside the immunity window")
	}
	h.clk.Add(time.Millisecond)
	h.tick()
	p.waitChecks(t, 1)
}

func TestCheckAnswers(t *testing.T) {
	h := newHarness(t, nil)
	answers := map[string]Resolution{uniqID(1): ResolutionCommit, uniqID(2): ResolutionRollback, uniqID(3): ResolutionUnknown}
	p := h.connectProducer("PG", func(c checkMsg) Resolution {
		u, _ := message.Property(c.msg.Properties, message.PropUniqClientMessageID)
		return answers[u]
	})
	for i := 1; i <= 3; i++ {
		h.prepare("PG", uniqID(i))
	}
	h.clk.Add(6 * time.Second)
	h.tick()
	p.waitChecks(t, 3)
	if h.copiesOf(uniqID(1)) != 1 || h.copiesOf(uniqID(2)) != 0 || h.pendingN() != 1 {
		t.Fatalf("copies %d %d, pending %d", h.copiesOf(uniqID(1)), h.copiesOf(uniqID(2)), h.pendingN())
	}
	st := h.svc.Stats()
	if st.Committed.Check != 1 || st.RolledBack.Check != 1 || st.CheckAnswers != (Answers{1, 1, 1}) || st.Pending != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The unknown one is checked again after the interval, not before.
	h.clk.Add(29 * time.Second)
	h.tick()
	settle()
	if p.count() != 3 {
		t.Fatal("unknown answer re-checked before the interval")
	}
	h.clk.Add(time.Second)
	h.tick()
	p.waitChecks(t, 4)
}

func TestParkedUntilProducer(t *testing.T) {
	h := newHarness(t, nil)
	h.prods.onReg = h.svc.ProducerRegistered
	for i := 0; i < 5; i++ {
		h.prepare("PG", uniqID(i))
	}
	for i := 0; i < 20; i++ { // far more than CheckMax intervals
		h.clk.Add(30 * time.Second)
		h.tick()
	}
	if h.pendingN() != 5 || h.svc.Stats().ChecksSent != 0 {
		t.Fatalf("pending %d, stats %+v", h.pendingN(), h.svc.Stats())
	}
	for _, pi := range h.svc.List(10, ListFilter{}) {
		if pi.ChecksSent != 0 || pi.State != "PARKED" {
			t.Fatalf("list %+v", pi)
		}
	}
	other := h.connectProducer("OTHER", nil) // another group does not wake PG
	h.tick()
	settle()
	if other.count() != 0 || h.svc.Stats().ChecksSent != 0 {
		t.Fatal("checks sent to another group")
	}
	p := h.connectProducer("PG", nil) // checked promptly, with no clock advance
	h.tick()
	p.waitChecks(t, 5)
}

func TestProducersRotate(t *testing.T) {
	h := newHarness(t, nil)
	p1 := h.connectProducer("PG", nil)
	p2 := h.connectProducer("PG", nil)
	for i := 0; i < 10; i++ {
		h.prepare("PG", uniqID(i))
	}
	h.clk.Add(6 * time.Second)
	h.tick()
	p1.waitChecks(t, 5)
	p2.waitChecks(t, 5)
	// A producer that went away is skipped.
	p1.cl.Close()
	time.Sleep(50 * time.Millisecond)
	h.clk.Add(30 * time.Second)
	h.tick()
	p2.waitChecks(t, 15)
	if p1.count() != 5 {
		t.Fatalf("closed producer got %d checks", p1.count())
	}
}

// TestWithoutHook: a service on a store whose OnRecord hook is not wired
// (the broker always wires it) still keeps its index: Prepare and End
// apply their own records, counted as hook misses.
func TestWithoutHook(t *testing.T) {
	var none atomic.Pointer[Service] // never set: the hook forwards nowhere
	clk := testkit.NewClock(time.UnixMilli(1_700_000_000_000))
	st := openStore(t, testDir(t)+"/store", store.AsyncFlush, clk.Now, nil, &none)
	defer st.Close()
	svc, err := New(Config{Enable: true, CheckMax: 1, StoreHost: storeHost, Now: clk.Now, noBackground: true}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	var rs []PrepareResult
	for i := range 3 {
		r, err := svc.Prepare(ctx, halfMsg("TopicA", 1, uniqID(i), "b"), "PG")
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if r, err := svc.Prepare(ctx, halfMsg("TopicA", 1, uniqID(0), "b"), "PG"); err != nil || !r.Duplicate {
		t.Fatalf("repeat: %+v %v", r, err)
	}
	for i, res := range []Resolution{ResolutionCommit, ResolutionRollback} {
		er, err := svc.End(ctx, EndRequest{ProducerGroup: "PG", CommitLogOffset: rs[i].Append.CommitLogOffset,
			TranStateTableOffset: rs[i].Append.QueueOffset, HasOffsets: true, Resolution: res})
		if err != nil || !er.Applied {
			t.Fatalf("END %d: %+v %v", i, er, err)
		}
		if er, _ := svc.End(ctx, EndRequest{ProducerGroup: "PG", CommitLogOffset: rs[i].Append.CommitLogOffset,
			HasOffsets: true, TranStateTableOffset: -1, Resolution: ResolutionCommit}); !er.Duplicate {
			t.Fatalf("late END %d: %+v", i, er)
		}
	}
	// The last one is due, but no producer is online: it stays pending
	// (parked), no check spent.
	clk.Add(time.Hour)
	svc.runDue(ctx)
	s := svc.Stats()
	if s.Pending != 1 || s.HalfStored != 3 || s.HookMisses != 5 || s.Committed.Client != 1 || s.RolledBack.Client != 1 {
		t.Fatalf("stats %+v", s)
	}
}
