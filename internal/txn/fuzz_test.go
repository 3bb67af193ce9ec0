package txn

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// model tracks what the script did to each transaction.
type model struct {
	res     []PrepareResult
	group   []string
	applied []int   // ENDs that reported Applied
	final   []State // state set by the applied END
}

func (m *model) record(i int, r EndResult) {
	if r.Applied {
		m.applied[i]++
		m.final[i] = r.State
	}
}

// runScript drives a random interleaving of prepares, client ENDs (by
// offset and by id; prepares and ENDs by offset through the asynchronous
// forms or the synchronous ones, as the broker's inline path does), unknown answers, check rounds answered at random,
// operator commit/rollback/resume, discards (CheckMax 2) and restarts,
// then checks the invariants: at most one END applied per transaction,
// exactly one visible copy for a committed one and none otherwise, and
// every other transaction either pending or discarded.
func runScript(t *testing.T, ops []byte) {
	h := newHarness(t, func(c *Config) { c.CheckMax = 2 })
	h.prods.onReg = func(g string) {
		if s := h.cur.Load(); s != nil {
			s.ProducerRegistered(g)
		}
	}
	ctx := context.Background()
	m := &model{}
	var answerN atomic.Uint32
	answer := func(checkMsg) Resolution {
		return []Resolution{ResolutionUnknown, ResolutionCommit, ResolutionUnknown, ResolutionRollback}[answerN.Add(1)%4]
	}
	var prods []*producer
	expect := 0 // checks sent so far
	restarts := 0
	pick := func(b byte) int {
		if len(m.res) == 0 {
			return -1
		}
		return int(b) % len(m.res)
	}
	ends := func(i int, r EndResult, err error) {
		if err != nil && !errors.Is(err, ErrUnknownTransaction) {
			t.Fatalf("txn %d: %v", i, err)
		}
		if err == nil {
			m.record(i, r)
		}
	}
	for p := 0; p+1 < len(ops); p += 2 {
		op, arg := ops[p]%10, ops[p+1]
		switch op {
		case 0, 1:
			g := []string{"PG", "PG2"}[arg%2]
			var r PrepareResult
			if arg&4 != 0 { // the broker's inline path: async, else sync
				var err error
				if r, err = h.prepareAsync(g, uniqID(len(m.res))); errors.Is(err, ErrSlowPath) {
					r = h.prepare(g, uniqID(len(m.res)))
				} else if err != nil {
					t.Fatal(err)
				}
			} else {
				r = h.prepare(g, uniqID(len(m.res)))
			}
			m.res = append(m.res, r)
			m.group = append(m.group, g)
			m.applied = append(m.applied, 0)
			m.final = append(m.final, StatePrepared)
		case 2:
			if i := pick(arg); i >= 0 {
				res := []Resolution{ResolutionCommit, ResolutionRollback}[arg/16%2]
				var (
					r   EndResult
					err error
				)
				if arg&32 != 0 { // the broker's inline path: async, else sync
					if r, err = h.endAsync(endReq(m.group[i], m.res[i], res)); errors.Is(err, ErrSlowPath) {
						r, err = h.endOff(m.group[i], m.res[i], res)
					}
				} else {
					r, err = h.endOff(m.group[i], m.res[i], res)
				}
				ends(i, r, err)
			}
		case 3:
			if i := pick(arg); i >= 0 {
				res := []Resolution{ResolutionCommit, ResolutionRollback, ResolutionUnknown}[arg/16%3]
				r, err := h.svc.End(ctx, EndRequest{ProducerGroup: m.group[i], TransactionID: uniqID(i), Resolution: res})
				ends(i, r, err)
			}
		case 4:
			if i := pick(arg); i >= 0 {
				res := []Resolution{ResolutionCommit, ResolutionRollback}[arg/16%2]
				r, err := h.svc.End(ctx, EndRequest{TransactionID: uniqID(i), ProducerGroup: m.group[i], Resolution: res, Source: SourceOperator})
				ends(i, r, err)
			}
		case 5:
			if i := pick(arg); i >= 0 {
				h.svc.Resume(ctx, uniqID(i)) // may fail: not discarded
			}
		case 6:
			if len(prods) < 3 {
				prods = append(prods, h.connectProducer([]string{"PG", "PG2"}[arg%2], answer))
			}
		case 7, 8:
			h.clk.Add(time.Duration(arg%40) * time.Second)
			before := h.svc.Stats().ChecksSent
			h.tick()
			expect += int(h.svc.Stats().ChecksSent - before)
			waitChecks(t, prods, expect)
		case 9:
			if restarts < 4 { // each costs store recovery and fsyncs
				restarts++
				h.restart()
			}
		}
	}
	for _, pr := range prods {
		pr.mu.Lock()
		for _, r := range pr.ends {
			for i := range m.res {
				if m.res[i].Append.CommitLogOffset == r.HalfOffset {
					m.record(i, r)
				}
			}
		}
		pr.mu.Unlock()
	}
	h.restart()
	discarded := map[string]State{}
	d, err := h.svc.Discarded(1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d {
		discarded[x.TransactionID] = x.State
	}
	for i := range m.res {
		if m.applied[i] > 1 {
			t.Fatalf("txn %d: %d ENDs applied", i, m.applied[i])
		}
		copies := h.copiesOf(uniqID(i))
		_, pending := h.entry(m.res[i].Append.CommitLogOffset)
		switch m.final[i] {
		case StateCommitted:
			if copies != 1 || pending {
				t.Fatalf("txn %d committed: %d copies, pending %v", i, copies, pending)
			}
		case StateRolledBack:
			if copies != 0 || pending {
				t.Fatalf("txn %d rolled back: %d copies, pending %v", i, copies, pending)
			}
		default:
			if copies != 0 {
				t.Fatalf("txn %d unresolved with %d copies", i, copies)
			}
			if st, ok := discarded[uniqID(i)]; !pending && (!ok || st != StateDiscarded) {
				t.Fatalf("txn %d neither pending nor discarded (%v %v)", i, ok, st)
			}
		}
	}
}

func TestRandomInterleavings(t *testing.T) {
	n := 8
	if testing.Short() {
		n = 3
	}
	for seed := 0; seed < n; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		ops := make([]byte, 160)
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		t.Run("", func(t *testing.T) { runScript(t, ops) })
	}
}

// FuzzTxnStateMachine: any interleaving of prepare, commit, rollback,
// check answers, operator actions, discards and restarts ends with at most
// one applied final state per transaction and visible copies matching it.
func FuzzTxnStateMachine(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 2, 16, 3, 0})
	f.Add([]byte{0, 1, 6, 1, 7, 39, 7, 39, 7, 39, 5, 0, 4, 0, 9, 0})
	f.Add([]byte{0, 0, 0, 0, 6, 0, 7, 6, 7, 30, 9, 0, 7, 30, 7, 30, 5, 1, 7, 1, 2, 17})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 120 {
			ops = ops[:120]
		}
		runScript(t, ops)
	})
}

var _ = message.TransHalfTopic

// waitChecks waits until the producers have received (and answered) n checks.
func waitChecks(t *testing.T, prods []*producer, n int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := 0
		for _, p := range prods {
			got += p.count()
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("producers got %d checks, %d sent", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// FuzzSplitHalfProps: splitHalfProps reads the tail of stored properties,
// which may hold anything a damaged log holds. It never panics, and when
// it accepts a layout, the copy's properties are a prefix of the input and
// the cut tail holds REAL_TOPIC and REAL_QID as the scan finds them.
func FuzzSplitHalfProps(f *testing.F) {
	good, _ := halfProperties(nil, "KEYS\x01k\x02UNIQ_KEY\x01U\x02", "T", 3, "G", "U")
	for _, s := range []string{good, "", "\x02", "TRAN_MSG\x01true\x02", "a\x01\x02b\x02\x01\x02", good[:len(good)-1], "x" + good} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		cp, uniq, rt, rq, ok := splitHalfProps(p)
		if !ok {
			return
		}
		if len(cp) > len(p) || !bytes.Equal(p[:len(cp)], cp) {
			t.Fatalf("copy properties %q are not a prefix of %q", cp, p)
		}
		if _, wrt, wrq := endFields(p[len(cp):]); !bytes.Equal(rt, wrt) || !bytes.Equal(rq, wrq) {
			t.Fatalf("%q: split REAL_TOPIC %q REAL_QID %q, the tail's scan %q %q", p, rt, rq, wrt, wrq)
		}
		if len(cp) > 0 && cp[len(cp)-1] != message.PropertySeparator {
			t.Fatalf("%q: the copy's properties %q do not end with a separator", p, cp)
		}
		if !bytes.Contains(cp, uniq) {
			t.Fatalf("%q: __transactionId__ %q is not in the copy's properties", p, uniq)
		}
	})
}
