package txn

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// answerCheck ends the transaction of check cm as its producer would.
func (h *harness) answerCheck(cm checkMsg, res Resolution) {
	h.t.Helper()
	off, _ := strconv.ParseInt(cm.ext["commitLogOffset"], 10, 64)
	tso, _ := strconv.ParseInt(cm.ext["tranStateTableOffset"], 10, 64)
	if _, err := h.svc.End(context.Background(), EndRequest{ProducerGroup: "PG", CommitLogOffset: off, TranStateTableOffset: tso,
		HasOffsets: true, Resolution: res, FromCheck: true, Source: SourceCheck}); err != nil {
		h.t.Fatal(err)
	}
}

// states counts the pending transactions by state, and the checks they
// were sent.
func (h *harness) states() (map[string]int, int) {
	by, checks := map[string]int{}, 0
	for _, p := range h.svc.List(1000, ListFilter{}) {
		by[p.State]++
		checks += p.ChecksSent
	}
	return by, checks
}

// At most CheckWindow checks of a group are outstanding. Due transactions
// beyond it wait without spending a check; an answer (UNKNOWN too) or a
// resolution frees room at once, the interval frees the rest, and the
// ones that waited longest are checked first.
func TestCheckWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckWindow = 3 })
	waiting := map[string]bool{}
	for i := range 10 {
		h.prepare("PG", uniqID(i))
	}
	p := h.connectProducer("PG", nil) // records checks, answers none
	defer p.cl.Close()
	h.clk.Add(6 * time.Second)
	h.tick()
	p.waitChecks(t, 3)
	settle()
	if n := p.count(); n != 3 {
		t.Fatalf("%d checks sent with a window of 3, want 3", n)
	}
	by, spent := h.states()
	if by["WAITING"] != 7 || by["PREPARED"] != 3 || spent != 3 {
		t.Fatalf("states %v, %d checks counted; want 7 WAITING, 3 PREPARED, 3 checks", by, spent)
	}
	for _, pi := range h.svc.List(1000, ListFilter{}) {
		if pi.State == "WAITING" {
			waiting[pi.TransactionID] = true
		}
	}
	h.tick() // refreshes the gauges
	if st := h.svc.Stats(); st.ChecksOutstanding != 3 || st.WaitingForWindow != 7 || st.ChecksSent != 3 {
		t.Fatalf("stats %+v", st)
	}

	// An UNKNOWN answer frees a slot, and so does a commit.
	p.mu.Lock()
	first, second := p.checks[0], p.checks[1]
	p.mu.Unlock()
	select { // the background scheduler (not run here) must be woken by the answer
	case <-h.svc.wake:
	default:
	}
	h.answerCheck(first, ResolutionUnknown)
	select {
	case <-h.svc.wake:
	default:
		t.Fatal("an answer that freed room in the window did not wake the scheduler")
	}
	h.tick()
	p.waitChecks(t, 4)
	h.answerCheck(second, ResolutionCommit)
	h.tick()
	p.waitChecks(t, 5)
	settle()
	if n := p.count(); n != 5 {
		t.Fatalf("%d checks after two answers, want 5", n)
	}

	// The interval frees the rest. The five that never had a check go
	// first, three of them (the window), before any second check.
	h.clk.Add(30 * time.Second)
	h.tick()
	p.waitChecks(t, 8)
	settle()
	p.mu.Lock()
	next := append([]checkMsg(nil), p.checks[5:]...)
	p.mu.Unlock()
	if len(next) != 3 {
		t.Fatalf("%d checks after the interval, want 3", len(next))
	}
	for _, cm := range next {
		id, _ := message.Property(cm.msg.Properties, message.PropUniqClientMessageID)
		if !waiting[id] {
			t.Errorf("checked %s, which was not among the waiting ones", id)
		}
	}
	if h.copiesOf(uniqID(0))+h.copiesOf(uniqID(1))+h.copiesOf(uniqID(2)) > 1 {
		t.Error("more than the one committed transaction has a copy")
	}
}

// A full window delays checks, never discards: a transaction whose
// checks are spent is discarded when due, window or not, and the others
// are still checked until theirs are.
func TestCheckWindowDiscards(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckWindow = 1; c.CheckMax = 1 })
	for i := range 3 {
		h.prepare("PG", uniqID(i))
	}
	p := h.connectProducer("PG", nil)
	defer p.cl.Close()
	h.clk.Add(6 * time.Second)
	for round := 1; round <= 4; round++ {
		h.tick()
		settle()
		h.clk.Add(30 * time.Second)
	}
	h.tick()
	if n := p.count(); n != 3 {
		t.Errorf("%d checks, want one per transaction", n)
	}
	if st := h.svc.Stats(); st.Discarded != 3 || st.Pending != 0 {
		t.Errorf("stats %+v, want all 3 discarded", st)
	}
}

// Without a window (negative) every due transaction is checked at once.
func TestCheckWindowOff(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckWindow = -1 })
	for i := range 10 {
		h.prepare("PG", uniqID(i))
	}
	p := h.connectProducer("PG", nil)
	defer p.cl.Close()
	h.clk.Add(6 * time.Second)
	h.tick()
	p.waitChecks(t, 10)
}
