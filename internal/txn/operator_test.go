package txn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

func TestOperator(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckMax = 1 })
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		h.prepare("PG", uniqID(i))
		h.clk.Add(time.Second)
	}
	h.prepare("PG2", uniqID(9))
	list := h.svc.List(10, ListFilter{ProducerGroup: "PG"})
	if len(list) != 4 || list[0].TransactionID != uniqID(0) || list[0].Topic != "TopicA" || list[0].AgeMs != 4000 ||
		list[0].OffsetMsgID == "" || list[0].State != "PREPARED" {
		t.Fatalf("list %+v", list)
	}
	if l := h.svc.List(10, ListFilter{TransactionID: uniqID(9)}); len(l) != 1 || l[0].ProducerGroup != "PG2" {
		t.Fatalf("list by id %+v", l)
	}
	// Commit and roll back by transaction id.
	if r, err := h.svc.End(ctx, EndRequest{TransactionID: uniqID(0), Resolution: ResolutionCommit, Source: SourceOperator}); err != nil || !r.Applied {
		t.Fatalf("operator commit: %+v %v", r, err)
	}
	if r, err := h.svc.End(ctx, EndRequest{TransactionID: uniqID(1), Resolution: ResolutionRollback, Source: SourceOperator}); err != nil || !r.Applied {
		t.Fatalf("operator rollback: %+v %v", r, err)
	}
	// Discard 2 and 3 (no producer answers, CheckMax 1).
	p := h.discardUnanswered("PG", 2)
	d, err := h.svc.Discarded(10)
	if err != nil || len(d) != 2 || d[0].TransactionID != uniqID(3) || d[0].State != StateDiscarded {
		t.Fatalf("discarded %+v %v", d, err)
	}
	if _, err := h.svc.Resume(ctx, uniqID(0)); !errors.Is(err, ErrNotDiscarded) {
		t.Fatalf("resume of a committed one: %v", err)
	}
	// Resume 2: back to pending, checked at once with a fresh count.
	if r, err := h.svc.Resume(ctx, uniqID(2)); err != nil || r.ProducerGroup != "PG" {
		t.Fatalf("resume: %+v %v", r, err)
	}
	if _, err := h.svc.Resume(ctx, uniqID(2)); !errors.Is(err, ErrNotDiscarded) {
		t.Fatalf("second resume: %v", err)
	}
	p.cl.Close()
	h.restart() // the resume survives a restart
	if l := h.svc.List(10, ListFilter{TransactionID: uniqID(2)}); len(l) != 1 || l[0].ChecksSent != 0 {
		t.Fatalf("resumed: %+v", l)
	}
	p2 := h.connectProducer("PG", func(checkMsg) Resolution { return ResolutionCommit })
	h.tick()
	p2.waitChecks(t, 1)
	if h.copiesOf(uniqID(2)) != 1 {
		t.Fatal("resumed transaction not committed by its check")
	}
	// Operator commit of a discarded one resumes it first.
	if r, err := h.svc.End(ctx, EndRequest{TransactionID: uniqID(3), Resolution: ResolutionCommit, Source: SourceOperator}); err != nil || !r.Applied {
		t.Fatalf("operator commit of discarded: %+v %v", r, err)
	}
	d, _ = h.svc.Discarded(10)
	if len(d) != 2 || d[0].State != StateCommitted || d[1].State != StateCommitted {
		t.Fatalf("discarded after resolution %+v", d)
	}
	st := h.svc.Stats() // counters count since the (re)start
	if st.Committed.Operator != 1 || st.Committed.Check != 1 || st.Resumed != 1 || st.Pending != 1 {
		t.Fatalf("stats %+v", st)
	}
	if h.copiesOf(uniqID(0)) != 1 || h.copiesOf(uniqID(1)) != 0 || h.copiesOf(uniqID(3)) != 1 {
		t.Fatal("copies")
	}
}

func TestRetentionDiscard(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FileReservedTime = 8 * time.Hour })
	r := h.prepare("PG", uniqID(1)) // no producer: parked, never checked
	h.clk.Add(6 * time.Second)
	h.tick()
	h.clk.Add(7*time.Hour - 6*time.Second - time.Millisecond)
	h.tick()
	if _, ok := h.entry(r.Append.CommitLogOffset); !ok {
		t.Fatal("discarded too early")
	}
	h.clk.Add(time.Millisecond) // 8h less an eighth
	h.tick()
	if _, ok := h.entry(r.Append.CommitLogOffset); ok {
		t.Fatal("not discarded before retention")
	}
	d, _ := h.svc.Discarded(1)
	if len(d) != 1 || d[0].Reason != "retention" {
		t.Fatalf("%+v", d)
	}
}

func TestHandlers(t *testing.T) {
	h := newHarness(t, nil)
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Register(srv)
	srv.Start()
	defer srv.Close()
	cl, err := remoting.Dial(context.Background(), srv.Addr().String(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := h.prepare("PG", uniqID(1))
	h.prepare("PG", uniqID(2))
	end := func(ext map[string]string) *remoting.Command {
		t.Helper()
		base := map[string]string{"producerGroup": "PG", "tranStateTableOffset": strconv.FormatInt(r.Append.QueueOffset, 10),
			"commitLogOffset": strconv.FormatInt(r.Append.CommitLogOffset, 10), "commitOrRollback": "8",
			"fromTransactionCheck": "false", "msgId": uniqID(1), "transactionId": uniqID(1), "bname": "broker-a"}
		for k, v := range ext {
			if v == "-" {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		resp, err := cl.Invoke(context.Background(), remoting.NewRequest(remoting.ReqEndTransaction, base))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tests := []struct {
		name string
		ext  map[string]string
		code int32
	}{
		{"bad state", map[string]string{"commitOrRollback": "5"}, remoting.RespInvalidParameter},
		{"group mismatch", map[string]string{"producerGroup": "X"}, remoting.RespTransactionStateGroupWrong},
		{"unknown offset", map[string]string{"commitLogOffset": "999999"}, remoting.RespQueryNotFound},
		{"unknown state 0", map[string]string{"commitOrRollback": "0"}, remoting.RespSuccess},
		{"commit", nil, remoting.RespSuccess},
		{"repeat", map[string]string{"commitOrRollback": "12"}, remoting.RespSuccess},
		{"by id only", map[string]string{"commitLogOffset": "-", "tranStateTableOffset": "-", "transactionId": uniqID(2), "msgId": uniqID(2), "commitOrRollback": "12"}, remoting.RespSuccess},
	}
	for _, tt := range tests {
		if resp := end(tt.ext); resp.Code != tt.code {
			t.Errorf("%s: code %d (%s), want %d", tt.name, resp.Code, resp.Remark, tt.code)
		}
	}
	if h.copiesOf(uniqID(1)) != 1 || h.pendingN() != 0 {
		t.Fatal("END over the wire did not apply")
	}
	resp, err := cl.Invoke(context.Background(), remoting.NewRequest(ReqTxStats, nil))
	if err != nil || resp.Code != 0 {
		t.Fatal(err, resp)
	}
	var sr StatsResponse
	if err := json.Unmarshal(resp.Body, &sr); err != nil || sr.BrokerName != "broker-a" || sr.DuplicateEnds != 1 || sr.Committed.Client != 1 {
		t.Fatalf("stats %s %v", resp.Body, err)
	}
	h.prepare("PG", uniqID(3))
	resp, _ = cl.Invoke(context.Background(), remoting.NewRequest(ReqTxList, map[string]string{"limit": "5"}))
	var lr ListResponse
	if err := json.Unmarshal(resp.Body, &lr); err != nil || len(lr.List) != 1 || lr.List[0].TransactionID != uniqID(3) {
		t.Fatalf("list %s %v", resp.Body, err)
	}
	resp, _ = cl.Invoke(context.Background(), remoting.NewRequest(ReqTxRollback, map[string]string{"transactionId": uniqID(3)}))
	var er EndResult
	if err := json.Unmarshal(resp.Body, &er); err != nil || !er.Applied || er.State != StateRolledBack {
		t.Fatalf("rollback %s %v", resp.Body, err)
	}
	resp, _ = cl.Invoke(context.Background(), remoting.NewRequest(ReqTxResume, map[string]string{"transactionId": uniqID(3)}))
	if resp.Code != remoting.RespIllegalOperation {
		t.Fatalf("resume of rolled back: %d %s", resp.Code, resp.Remark)
	}
	resp, _ = cl.Invoke(context.Background(), remoting.NewRequest(ReqTxDiscarded, nil))
	var dr DiscardedResponse
	if err := json.Unmarshal(resp.Body, &dr); err != nil || len(dr.List) != 0 {
		t.Fatalf("discarded %s %v", resp.Body, err)
	}
	_ = message.TransHalfTopic
}

// discardUnanswered connects a producer of group that answers no check,
// lets the n pending transactions (CheckMax 1) be checked once, and then
// discarded; it returns the producer.
func (h *harness) discardUnanswered(group string, n int) *producer {
	h.t.Helper()
	p := h.connectProducer(group, nil)
	h.clk.Add(6 * time.Second)
	h.tick()
	p.waitChecks(h.t, n)
	h.clk.Add(30 * time.Second)
	h.tick()
	return p
}

// opDone counts the op d records in the log for the half at off.
func (h *harness) opDone(off int64) int {
	h.t.Helper()
	r, err := h.log.GetMessages(message.TransOpHalfTopic, 0, 0, 10000, 0, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Release()
	n := 0
	for _, rec := range r.Records {
		v, err := message.Parse(rec)
		if err != nil {
			h.t.Fatal(err)
		}
		if ev, ok := parseEvent(v.CommitLogOffset(), v, nil); ok && ev.kind == evDone {
			for _, oe := range ev.ents {
				if oe.off == off {
					n++
				}
			}
		}
	}
	return n
}

// A producer's commit is recorded by its copy alone; a rollback, and a
// commit answered to a check, by op d. The discarded list still sees a
// resumed transaction that its producer then committed as committed, from
// the copy, also after a restart.
func TestEndRecords(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckMax = 1 })
	ctx := context.Background()
	commit := h.prepare("PG", uniqID(1))
	rollback := h.prepare("PG", uniqID(2))
	discard := h.prepare("PG", uniqID(3))
	if _, err := h.endOff("PG", commit, ResolutionCommit); err != nil {
		t.Fatal(err)
	}
	if _, err := h.endOff("PG", rollback, ResolutionRollback); err != nil {
		t.Fatal(err)
	}
	if n := h.opDone(commit.Append.CommitLogOffset); n != 0 {
		t.Errorf("producer's commit wrote %d op d records, want 0 (the copy records it)", n)
	}
	if n := h.opDone(rollback.Append.CommitLogOffset); n != 1 {
		t.Errorf("rollback wrote %d op d records, want 1", n)
	}
	// Discard 3 (a producer that does not answer), resume it, and let its
	// producer commit it by END.
	p := h.discardUnanswered("PG", 1)
	if d, err := h.svc.Discarded(10); err != nil || len(d) != 1 || d[0].State != StateDiscarded {
		t.Fatalf("discarded %+v %v", d, err)
	}
	if _, err := h.svc.Resume(ctx, uniqID(3)); err != nil {
		t.Fatal(err)
	}
	if r, err := h.endOff("PG", discard, ResolutionCommit); err != nil || !r.Applied {
		t.Fatalf("commit after resume: %+v %v", r, err)
	}
	if n := h.opDone(discard.Append.CommitLogOffset); n != 0 {
		t.Errorf("producer's commit after resume wrote %d op d records, want 0", n)
	}
	p.cl.Close()
	for _, phase := range []string{"live", "after restart"} {
		if d, err := h.svc.Discarded(10); err != nil || len(d) != 1 || d[0].State != StateCommitted {
			t.Fatalf("%s: discarded list %+v %v, want the resumed one committed", phase, d, err)
		}
		if _, err := h.svc.Resume(ctx, uniqID(3)); !errors.Is(err, ErrNotDiscarded) {
			t.Fatalf("%s: resume of a committed one: %v", phase, err)
		}
		if h.pendingN() != 0 || h.copiesOf(uniqID(1)) != 1 || h.copiesOf(uniqID(2)) != 0 || h.copiesOf(uniqID(3)) != 1 {
			t.Fatalf("%s: pending %d, copies %d %d %d", phase, h.pendingN(), h.copiesOf(uniqID(1)), h.copiesOf(uniqID(2)), h.copiesOf(uniqID(3)))
		}
		h.restart()
	}
}

// A resumed transaction can be checked and ended between the moment the
// store hook applies its op r and the moment Resume's Append returns (the
// scheduler is kicked at once; the official client answers in
// milliseconds). Resume must not take it for a record the hook missed and
// make it pending again: that checked it again, and a second commit
// delivered it twice (seen in the interop suite under load).
func TestResumeEndedBeforeAppendReturns(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckMax = 1 })
	ctx := context.Background()
	h.prepare("PG", uniqID(1))
	p := h.discardUnanswered("PG", 1)
	defer p.cl.Close()
	ended := false
	f := func(off int64, v message.View) {
		ev, ok := parseEvent(off, v, nil)
		if !ok || ev.kind != evResume {
			return
		}
		// What the hook does when it sees the END's records.
		s := h.svc
		s.mu.Lock()
		for _, oe := range ev.ents {
			if e := s.pending[oe.off]; e != nil {
				s.resolve(e, StateCommitted, s.nowMs())
				ended = true
			}
		}
		s.mu.Unlock()
	}
	h.log.afterHook.Store(&f)
	if _, err := h.svc.Resume(ctx, uniqID(1)); err != nil {
		t.Fatal(err)
	}
	h.log.afterHook.Store(nil)
	if !ended {
		t.Fatal("the hook did not apply the resume")
	}
	if n := h.pendingN(); n != 0 {
		t.Errorf("%d pending after a resume that was ended at once, want 0", n)
	}
	if st := h.svc.Stats(); st.HookMisses != 0 {
		t.Errorf("hook misses %d, want 0", st.HookMisses)
	}
}
