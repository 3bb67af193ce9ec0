package txn

import (
	"context"
	"errors"
	"testing"
)

// prepareAsync runs PrepareAsync and waits for its completion.
func (h *harness) prepareAsync(group, uniq string) (PrepareResult, error) {
	h.t.Helper()
	type out struct {
		r   PrepareResult
		err error
	}
	ch := make(chan out, 1)
	err := h.svc.PrepareAsync(context.Background(), halfMsg("TopicA", 1, uniq, "body-"+uniq), group,
		func(r PrepareResult, err error) { ch <- out{r, err} })
	if err != nil {
		return PrepareResult{}, err
	}
	o := <-ch
	return o.r, o.err
}

// endAsync runs EndAsync and waits for its completion.
func (h *harness) endAsync(req EndRequest) (EndResult, error) {
	h.t.Helper()
	type out struct {
		r   EndResult
		err error
	}
	ch := make(chan out, 1)
	if err := h.svc.EndAsync(context.Background(), &req, func(r EndResult, err error) { ch <- out{r, err} }); err != nil {
		return EndResult{}, err
	}
	o := <-ch
	return o.r, o.err
}

func endReq(group string, r PrepareResult, res Resolution) EndRequest {
	return EndRequest{ProducerGroup: group, CommitLogOffset: r.Append.CommitLogOffset,
		TranStateTableOffset: r.Append.QueueOffset, HasOffsets: true, Resolution: res}
}

// TestAsyncPathsMatchSync: a transaction prepared and ended through the
// asynchronous forms leaves what the synchronous ones leave: the half
// pending, then the committed copy visible (or nothing, for a rollback),
// the index and counters updated; and each form declines what is not its
// common case with ErrSlowPath, having done nothing.
func TestAsyncPathsMatchSync(t *testing.T) {
	h := newHarness(t, nil)
	r1, err := h.prepareAsync("PG", uniqID(1))
	if err != nil || r1.Duplicate || r1.TransactionID != uniqID(1) {
		t.Fatalf("PrepareAsync: %+v %v", r1, err)
	}
	if e, ok := h.entry(r1.Append.CommitLogOffset); !ok || h.svc.groupName(e.group) != "PG" {
		t.Fatalf("half not pending: %+v %v", e, ok)
	}
	r2 := h.prepare("PG", uniqID(2))

	// A repeated half goes to the synchronous path, which answers the
	// first half's result.
	if _, err := h.prepareAsync("PG", uniqID(1)); !errors.Is(err, ErrSlowPath) {
		t.Fatalf("repeated half: %v, want ErrSlowPath", err)
	}
	if r := h.prepare("PG", uniqID(1)); !r.Duplicate || r.Append.CommitLogOffset != r1.Append.CommitLogOffset {
		t.Fatalf("repeated half on the sync path: %+v", r)
	}

	declined := []struct {
		name string
		req  EndRequest
	}{
		{"no offsets", EndRequest{ProducerGroup: "PG", TransactionID: uniqID(1), Resolution: ResolutionCommit}},
		{"no queue offset", EndRequest{ProducerGroup: "PG", CommitLogOffset: r1.Append.CommitLogOffset, TranStateTableOffset: -1, HasOffsets: true, Resolution: ResolutionCommit}},
		{"unknown", endReq("PG", r1, ResolutionUnknown)},
		{"other group", endReq("PG2", r1, ResolutionCommit)},
		{"wrong queue offset", EndRequest{ProducerGroup: "PG", CommitLogOffset: r1.Append.CommitLogOffset, TranStateTableOffset: r2.Append.QueueOffset, HasOffsets: true, Resolution: ResolutionCommit}},
	}
	for _, tc := range declined {
		if _, err := h.endAsync(tc.req); !errors.Is(err, ErrSlowPath) {
			t.Errorf("%s: %v, want ErrSlowPath", tc.name, err)
		}
	}
	if h.pendingN() != 2 {
		t.Fatalf("declined ENDs changed the index: %d pending", h.pendingN())
	}

	er, err := h.endAsync(endReq("PG", r1, ResolutionCommit))
	if err != nil || !er.Applied || er.State != StateCommitted || er.CopyOffset <= r2.Append.CommitLogOffset {
		t.Fatalf("EndAsync commit: %+v %v", er, err)
	}
	if er, err := h.endAsync(endReq("PG", r2, ResolutionRollback)); err != nil || !er.Applied || er.State != StateRolledBack {
		t.Fatalf("EndAsync rollback: %+v %v", er, err)
	}
	// Ended: a second END is the synchronous path's duplicate.
	if _, err := h.endAsync(endReq("PG", r1, ResolutionRollback)); !errors.Is(err, ErrSlowPath) {
		t.Fatalf("END of an ended transaction: %v, want ErrSlowPath", err)
	}
	if er, err := h.endOff("PG", r1, ResolutionRollback); err != nil || !er.Duplicate || er.State != StateCommitted {
		t.Fatalf("late END: %+v %v", er, err)
	}
	if h.copiesOf(uniqID(1)) != 1 || h.copiesOf(uniqID(2)) != 0 || h.pendingN() != 0 {
		t.Fatalf("copies %d/%d, pending %d", h.copiesOf(uniqID(1)), h.copiesOf(uniqID(2)), h.pendingN())
	}
	// A repeat of a half already ended is the sync path's too.
	if _, err := h.prepareAsync("PG", uniqID(2)); !errors.Is(err, ErrSlowPath) {
		t.Fatalf("half of an ended transaction: %v, want ErrSlowPath", err)
	}
	st := h.svc.Stats()
	if st.HalfStored != 2 || st.Committed.Client != 1 || st.RolledBack.Client != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Everything survives a restart (the records are the same as the
	// synchronous path's).
	h.restart()
	if h.pendingN() != 0 || h.copiesOf(uniqID(1)) != 1 {
		t.Fatalf("after restart: pending %d, copies %d", h.pendingN(), h.copiesOf(uniqID(1)))
	}
}

// TestPrepareAsyncThenSyncDuplicate: a synchronous Prepare of the same
// transaction issued right after the asynchronous one (usually while its
// append is still in flight, so it waits on the flight; otherwise it finds
// the pending half) answers the first half's result, and each transaction
// stores one half.
func TestPrepareAsyncThenSyncDuplicate(t *testing.T) {
	h := newHarness(t, nil)
	const n = 30
	for i := range n {
		uniq := uniqID(i)
		first := make(chan PrepareResult, 1)
		err := h.svc.PrepareAsync(context.Background(), halfMsg("TopicA", 1, uniq, "b"), "PG",
			func(r PrepareResult, err error) {
				if err != nil {
					t.Error(err)
				}
				first <- r
			})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := h.svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniq, "b"), "PG")
		if err != nil {
			t.Fatal(err)
		}
		r1 := <-first
		if r1.Duplicate || !r2.Duplicate || r2.Append.CommitLogOffset != r1.Append.CommitLogOffset {
			t.Fatalf("%s: first %+v, duplicate %+v", uniq, r1, r2)
		}
	}
	if st := h.svc.Stats(); st.HalfStored != n || st.DuplicateHalves != n || h.pendingN() != n {
		t.Fatalf("stats %+v, pending %d", st, h.pendingN())
	}
}
