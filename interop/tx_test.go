package interop

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/txn"
)

// The transaction tests run the official transaction producer
// (rocketmq.NewTransactionProducer with a TransactionListener) against
// an in-process broker with transactionTimeOut 500 ms,
// transactionCheckInterval 500 ms and transactionCheckMax 3 (txTimings).

// TestTxCommitAndRollback: transactions committed or rolled back by
// ExecuteLocalTransaction. A consumer of the real topic sees exactly the
// committed ones, each once, and the listener is never asked about a
// transaction that ended before its timeout.
func TestTxCommitAndRollback(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t)
	topic, group := uniq("T_tx"), uniq("PG_tx")
	b.createTopic(t, topic, 4)
	l := newTxListener("p")
	p := startTxProducer(t, b.txmq, group, l)
	want := []string{warmUp(t, b, p, topic, group, "cr", 1)}

	const n = 20
	for i := range n {
		body := fmt.Sprintf("rollback:%d", i)
		if i%2 == 0 {
			body = fmt.Sprintf("commit:%d", i)
			want = append(want, body)
		}
		res := sendTx(t, p, topic, body)
		if wantState := txPolicy(body, 0); res.State != wantState {
			t.Fatalf("%s: local state %v, want %v", body, res.State, wantState)
		}
	}
	lastSent := time.Now()

	c := startPushConsumer(t, b.txmq, uniq("CG_tx"), topic, "", consumerFromFirst())
	expectExactly(t, c, want, time.Second)

	// Long after the timeout and several intervals: nothing was checked.
	time.Sleep(time.Until(lastSent.Add(500*time.Millisecond + 4*500*time.Millisecond)))
	if got := l.total.Load(); got != 0 {
		t.Errorf("the listener received %d checks (%v) for transactions that ended before their timeout", got, l.checkCounts())
	}
	st := txStats(t, b.txmq)
	if st.Pending != 0 || st.ChecksSent != 0 || st.HalfStored != n+1 || st.Committed.Client != n/2+1 || st.RolledBack.Client != n/2 ||
		st.DuplicateHalves != 0 || st.HookMisses != 0 {
		t.Errorf("tx stats: %+v", st)
	}
}

// TestTxCheckAnswers: transactions left unknown by ExecuteLocalTransaction
// are checked after the timeout; the listener's answer commits or rolls
// back; an unknown answer is checked again after the interval. Each gets
// exactly the checks it needs, no more.
func TestTxCheckAnswers(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t)
	topic, group := uniq("T_txchk"), uniq("PG_txchk")
	b.createTopic(t, topic, 4)
	l := newTxListener("p")
	p := startTxProducer(t, b.txmq, group, l)
	want := []string{warmUp(t, b, p, topic, group, "chk", 1)}
	wantChecks := map[string]int{}
	for i := range 3 {
		for _, kind := range []string{"check-commit", "check-rollback", "check2-commit"} {
			body := fmt.Sprintf("%s:%d", kind, i)
			if res := sendTx(t, p, topic, body); res.State != primitive.UnkonwnState {
				t.Fatalf("%s: local state %v", body, res.State)
			}
			if txCommitted(body) {
				want = append(want, body)
			}
			wantChecks[body] = 1
			if kind == "check2-commit" {
				wantChecks[body] = 2
			}
		}
	}
	c := startPushConsumer(t, b.txmq, uniq("CG_txchk"), topic, "", consumerFromFirst())
	expectExactly(t, c, want, 0)
	eventually(t, 10*time.Second, func() error {
		if st := txStats(t, b.txmq); st.Pending != 0 {
			return fmt.Errorf("%d transactions still pending", st.Pending)
		}
		return nil
	})
	// Several intervals more: no check of anything resolved, no duplicate.
	time.Sleep(4 * 500 * time.Millisecond)
	expectExactly(t, c, want, 0)
	got := l.checkCounts()
	for body, n := range wantChecks {
		if got[body] != n {
			t.Errorf("%s: %d checks received, want %d", body, got[body], n)
		}
	}
	if len(got) != len(wantChecks) {
		t.Errorf("checks received %v, want %v", got, wantChecks)
	}
	st := txStats(t, b.txmq)
	if st.ChecksSent != 12 || st.Committed.Check != 6 || st.RolledBack.Check != 3 ||
		st.CheckAnswers != (txn.Answers{Commit: 6, Rollback: 3, Unknown: 3}) || st.Discarded != 0 {
		t.Errorf("tx stats: %+v", st)
	}
}

// TestTxDiscardedAfterCheckMax: a transaction that stays unknown is
// checked exactly transactionCheckMax times, then discarded (listed by
// `txmq admin tx discarded`) and never checked again; `txmq admin tx
// resume` puts it back, and the next check's answer commits it.
func TestTxDiscardedAfterCheckMax(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t)
	topic, group := uniq("T_txmax"), uniq("PG_txmax")
	b.createTopic(t, topic, 4)
	l := newTxListener("p")
	var release atomic.Bool
	l.decide = func(body string, n int) primitive.LocalTransactionState {
		if release.Load() && strings.HasPrefix(body, "forever:") {
			return primitive.CommitMessageState
		}
		return txPolicy(body, n)
	}
	p := startTxProducer(t, b.txmq, group, l)
	warm := warmUp(t, b, p, topic, group, "max", 1)
	bodies := []string{"forever:a", "forever:b"}
	ids := map[string]string{}
	for _, body := range bodies {
		ids[body] = sendTx(t, p, topic, body).MsgID
	}
	var disc []txn.DiscardedInfo
	eventually(t, 15*time.Second, func() error {
		disc = txDiscarded(t, b.txmq)
		if len(disc) != len(bodies) {
			return fmt.Errorf("%d discarded, want %d", len(disc), len(bodies))
		}
		return nil
	})
	for _, d := range disc {
		if d.Topic != topic || d.ProducerGroup != group || d.ChecksSent != 3 || d.Reason != "checks" || d.State != txn.StateDiscarded {
			t.Errorf("discarded: %+v", d)
		}
	}
	// Nothing is checked after the discard.
	time.Sleep(4 * 500 * time.Millisecond)
	for _, body := range bodies {
		if n := l.checksOf(body); n != 3 {
			t.Errorf("%s: the listener received %d checks, want exactly transactionCheckMax = 3", body, n)
		}
	}
	st := txStats(t, b.txmq)
	if st.ChecksSent != 6 || st.Discarded != 2 || st.Pending != 0 || st.CheckAnswers.Unknown != 6 {
		t.Errorf("tx stats: %+v", st)
	}
	if l := txList(t, b.txmq); l.Pending != 0 || len(l.List) != 0 {
		t.Errorf("tx list after the discard: %+v", l)
	}

	// An operator resumes one: it is checked again and committed.
	release.Store(true)
	out, code := txmqAdmin(t, b.txmq, "tx", "resume", ids["forever:a"])
	if code != 0 || !strings.Contains(out, "pending again") {
		t.Fatalf("tx resume: exit %d: %s", code, out)
	}
	c := startPushConsumer(t, b.txmq, uniq("CG_txmax"), topic, "", consumerFromFirst())
	expectExactly(t, c, []string{warm, "forever:a"}, time.Second)
	if n := l.checksOf("forever:a"); n != 4 {
		t.Errorf("forever:a: %d checks in all, want 3 + 1 after the resume", n)
	}
	if n := l.checksOf("forever:b"); n != 3 {
		t.Errorf("forever:b (still discarded): %d checks, want 3", n)
	}
}

// TestTxProducerOffline: the producer that sent the transactions goes
// away before their timeout. While no producer of the group is online
// nothing is checked and no check is counted (`txmq admin tx list` shows
// them parked with 0 checks, long past transactionCheckMax intervals);
// when a new producer of the group connects, it receives one check per
// transaction and its answers commit them.
func TestTxProducerOffline(t *testing.T) {
	t.Parallel()
	// A longer timeout, so the first producer is surely gone before the
	// first check is due.
	b := startTxBroker(t, "transactionTimeOut", "1500")
	topic, group := uniq("T_txoff"), uniq("PG_txoff")
	b.createTopic(t, topic, 4)
	l1 := newTxListener("p1")
	p1 := startTxProducer(t, b.txmq, group, l1)
	var bodies []string
	for i := range 3 {
		body := fmt.Sprintf("check-commit:off-%d", i)
		sendTx(t, p1, topic, body)
		bodies = append(bodies, body)
	}
	if err := p1.Shutdown(); err != nil {
		t.Fatalf("producer 1 shutdown: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if n := b.producerClients(group); n != 0 {
			return fmt.Errorf("%d producers of %s still registered", n, group)
		}
		return nil
	})
	offline := time.Now()
	// Timeout 1.5 s plus more than transactionCheckMax (3) intervals.
	time.Sleep(1500*time.Millisecond + 5*500*time.Millisecond)
	lr := txList(t, b.txmq, "--group", group)
	if lr.Pending != 3 || len(lr.List) != 3 {
		t.Fatalf("tx list while offline: %+v", lr)
	}
	for _, pi := range lr.List {
		if pi.ChecksSent != 0 || pi.State != "PARKED" || pi.Topic != topic || pi.ProducerGroup != group {
			t.Errorf("while offline: %+v", pi)
		}
	}
	if st := txStats(t, b.txmq); st.ChecksSent != 0 || st.Discarded != 0 {
		t.Errorf("tx stats while offline: %+v", st)
	}
	t.Logf("offline for %v: 3 parked, 0 checks counted", time.Since(offline).Round(time.Millisecond))

	l2 := newTxListener("p2")
	p2 := startTxProducer(t, b.txmq, group, l2)
	warm := warmUp(t, b, p2, topic, group, "off", 1)
	c := startPushConsumer(t, b.txmq, uniq("CG_txoff"), topic, "", consumerFromFirst())
	expectExactly(t, c, append([]string{warm}, bodies...), time.Second)
	for _, body := range bodies {
		if n := l2.checksOf(body); n != 1 {
			t.Errorf("%s: the new producer received %d checks, want 1", body, n)
		}
	}
	if n := l1.total.Load(); n != 0 {
		t.Errorf("the producer that went away received %d checks", n)
	}
	if st := txStats(t, b.txmq); st.ChecksSent != 3 || st.Committed.Check != 3 || st.Pending != 0 {
		t.Errorf("tx stats: %+v", st)
	}
}

// TestTxTwoProducersShareChecks: with two producers of a group online,
// the checks of the transactions one of them sent are shared between
// them, each transaction checked once.
func TestTxTwoProducersShareChecks(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t)
	topic, group := uniq("T_txtwo"), uniq("PG_txtwo")
	b.createTopic(t, topic, 4)
	la, lb := newTxListener("a"), newTxListener("b")
	// Each producer sends right after its start, so that its first
	// heartbeat (1 s after the start) reaches the broker (see warmUp).
	pa := startTxProducer(t, b.txmq, group, la)
	want := []string{warmUp(t, b, pa, topic, group, "two-a", 1)}
	pb := startTxProducer(t, b.txmq, group, lb)
	want = append(want, warmUp(t, b, pb, topic, group, "two-b", 2))
	const n = 10
	for i := range n {
		body := fmt.Sprintf("check-commit:two-%d", i)
		sendTx(t, pa, topic, body)
		want = append(want, body)
	}
	c := startPushConsumer(t, b.txmq, uniq("CG_txtwo"), topic, "", consumerFromFirst())
	expectExactly(t, c, want, time.Second)
	ca, cb := la.checkCounts(), lb.checkCounts()
	for _, body := range want[2:] {
		if ca[body]+cb[body] != 1 {
			t.Errorf("%s: checked %d times by a and %d by b, want once in all", body, ca[body], cb[body])
		}
	}
	if len(ca) == 0 || len(cb) == 0 {
		t.Errorf("checks not shared: a got %d, b got %d", len(ca), len(cb))
	}
	t.Logf("checks: %d to producer a, %d to producer b", len(ca), len(cb))
}

// TestTxDuplicateHalfSend: the same half SEND (same producer group and
// UNIQ_KEY, as the official client repeats a send that timed out) sent
// twice, and then twice at once, with txmq's own remoting client: one
// transaction, both answers name the same half, and after the commit the
// consumer sees one message.
func TestTxDuplicateHalfSend(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t, "transactionTimeOut", "60000")
	topic, group := uniq("T_txdup"), uniq("PG_txdup")
	b.createTopic(t, topic, 4)

	send := func(uniqKey, body string) *remoting.Command {
		props := message.AppendProperty("", message.PropUniqClientMessageID, uniqKey)
		props = message.AppendProperty(props, message.PropTransactionPrepared, "true")
		props = message.AppendProperty(props, message.PropProducerGroup, group)
		props = message.AppendProperty(props, message.PropWaitStoreMsgOK, "true")
		req := remoting.NewRequest(remoting.ReqSendMessage, map[string]string{
			"producerGroup": group, "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
			"queueId": "1", "sysFlag": strconv.Itoa(int(message.FlagTransPrepared)),
			"bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0", "properties": props,
			"reconsumeTimes": "0", "unitMode": "false", "batch": "false"})
		req.Body = []byte(body)
		ctx, cancel := b.ctx()
		defer cancel()
		resp, err := b.pool.Invoke(ctx, b.BrokerAddr, req)
		if err != nil || resp.Code != remoting.RespSuccess {
			t.Fatalf("half SEND %s: %v %+v", uniqKey, err, resp)
		}
		return resp
	}
	same := func(a, c *remoting.Command) bool {
		for _, k := range []string{"msgId", "queueId", "queueOffset", "transactionId"} {
			if a.ExtStringOr(k, "") != c.ExtStringOr(k, "") {
				return false
			}
		}
		return true
	}
	const key1, key2 = "7F000001000118B4AAC2000000000001", "7F000001000118B4AAC2000000000002"
	r1 := send(key1, "dup:1")
	r2 := send(key1, "dup:1")
	if !same(r1, r2) || r1.ExtStringOr("transactionId", "") != key1 {
		t.Fatalf("repeated half SEND answered differently: %v vs %v", r1.ExtFields, r2.ExtFields)
	}
	var wg sync.WaitGroup
	rs := make([]*remoting.Command, 2)
	for i := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); rs[i] = send(key2, "dup:2") }()
	}
	wg.Wait()
	if !same(rs[0], rs[1]) {
		t.Fatalf("concurrent half SENDs answered differently: %v vs %v", rs[0].ExtFields, rs[1].ExtFields)
	}
	lr := txList(t, b.txmq, "--group", group)
	if lr.Pending != 2 || len(lr.List) != 2 {
		t.Fatalf("tx list: %+v, want 2 pending", lr)
	}
	st := txStats(t, b.txmq)
	if st.HalfStored != 2 || st.DuplicateHalves != 2 {
		t.Errorf("tx stats: %+v", st)
	}

	// END_TRANSACTION commit, as the official client sends it, for both.
	end := func(r *remoting.Command, key string) {
		_, off, err := message.ParseOffsetMessageID(r.ExtStringOr("msgId", ""))
		if err != nil {
			t.Fatalf("msgId %q: %v", r.ExtStringOr("msgId", ""), err)
		}
		resp, err := b.invoke(remoting.ReqEndTransaction, map[string]string{
			"producerGroup": group, "tranStateTableOffset": r.ExtStringOr("queueOffset", ""),
			"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": strconv.Itoa(int(message.FlagTransCommit)),
			"fromTransactionCheck": "false", "msgId": key, "transactionId": key})
		if err != nil || resp.Code != remoting.RespSuccess {
			t.Fatalf("END_TRANSACTION %s: %v %+v", key, err, resp)
		}
	}
	end(r1, key1)
	end(rs[0], key2)
	// A repeat after the commit still names the first half and is no new transaction.
	if r3 := send(key1, "dup:1"); !same(r1, r3) {
		t.Errorf("half SEND repeated after the commit: %v vs %v", r3.ExtFields, r1.ExtFields)
	}
	c := startPushConsumer(t, b.txmq, uniq("CG_txdup"), topic, "", consumerFromFirst())
	expectExactly(t, c, []string{"dup:1", "dup:2"}, time.Second)
	for _, m := range c.In.snapshot() {
		if m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex) == "" {
			t.Errorf("delivered %q without its UNIQ_KEY", m.Body)
		}
	}
	if st := txStats(t, b.txmq); st.HalfStored != 2 || st.Pending != 0 || st.Committed.Client != 2 {
		t.Errorf("tx stats after commit: %+v", st)
	}
}

// TestTxAdmin: `txmq admin tx list|stats|commit|rollback` on pending
// transactions of the official producer (no checks: a long timeout).
func TestTxAdmin(t *testing.T) {
	t.Parallel()
	b := startTxBroker(t, "transactionTimeOut", "60000")
	topic, group := uniq("T_txadm"), uniq("PG_txadm")
	b.createTopic(t, topic, 4)
	l := newTxListener("p")
	p := startTxProducer(t, b.txmq, group, l)
	id1 := sendTx(t, p, topic, "forever:adm-1").MsgID
	id2 := sendTx(t, p, topic, "forever:adm-2").MsgID

	lr := txList(t, b.txmq)
	if lr.Pending != 2 || len(lr.List) != 2 || lr.List[0].TransactionID != id1 || lr.List[1].TransactionID != id2 {
		t.Fatalf("tx list: %+v", lr)
	}
	for _, pi := range lr.List {
		if pi.Topic != topic || pi.ProducerGroup != group || pi.ChecksSent != 0 || pi.State != "PREPARED" || pi.NextCheck.IsZero() {
			t.Errorf("tx list entry: %+v", pi)
		}
	}
	// The table form names the transaction.
	if out, code := txmqAdmin(t, b.txmq, "tx", "list"); code != 0 || !strings.Contains(out, id1) || !strings.Contains(out, "2 pending in all") {
		t.Errorf("tx list (table): exit %d:\n%s", code, out)
	}
	if st := txStats(t, b.txmq); st.Pending != 2 || st.HalfStored != 2 || st.OldestPendingAgeMs <= 0 {
		t.Errorf("tx stats: %+v", st)
	}
	if out, code := txmqAdmin(t, b.txmq, "tx", "stats"); code != 0 || !strings.Contains(out, "PENDING") {
		t.Errorf("tx stats (table): exit %d:\n%s", code, out)
	}

	if out, code := txmqAdmin(t, b.txmq, "tx", "commit", id1); code != 0 || !strings.Contains(out, "COMMITTED") {
		t.Fatalf("tx commit: exit %d: %s", code, out)
	}
	if out, code := txmqAdmin(t, b.txmq, "tx", "rollback", id2); code != 0 || !strings.Contains(out, "ROLLED_BACK") {
		t.Fatalf("tx rollback: exit %d: %s", code, out)
	}
	// Repeats are harmless no-ops; an unknown id is an error.
	if out, code := txmqAdmin(t, b.txmq, "tx", "rollback", id1); code != 0 || !strings.Contains(out, "already COMMITTED") {
		t.Errorf("tx rollback of a committed transaction: exit %d: %s", code, out)
	}
	if _, code := txmqAdmin(t, b.txmq, "tx", "commit", "NO_SUCH_TRANSACTION"); code == 0 {
		t.Errorf("tx commit of an unknown id: exit 0")
	}
	if lr := txList(t, b.txmq); lr.Pending != 0 || len(lr.List) != 0 {
		t.Errorf("tx list after commit and rollback: %+v", lr)
	}
	c := startPushConsumer(t, b.txmq, uniq("CG_txadm"), topic, "", consumerFromFirst())
	expectExactly(t, c, []string{"forever:adm-1"}, time.Second)
	st := txStats(t, b.txmq)
	if st.Committed.Operator != 1 || st.RolledBack.Operator != 1 || st.Pending != 0 || st.ChecksSent != 0 || st.DuplicateEnds != 1 {
		t.Errorf("tx stats: %+v", st)
	}
	if l.total.Load() != 0 {
		t.Errorf("%d checks with a 60 s timeout", l.total.Load())
	}
}
