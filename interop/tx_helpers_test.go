package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/txmq/txmq/internal/testutil"
	"github.com/txmq/txmq/internal/txn"
)

// Transactions in these tests are described by their bodies,
// "<kind>:<name>", and the listener decides by kind:
//
//	commit, warm     commit in ExecuteLocalTransaction
//	rollback         roll back in ExecuteLocalTransaction
//	check-commit     unknown, then commit on the first check
//	check-rollback   unknown, then roll back on the first check
//	check2-commit    unknown, unknown on the first check, commit on the second
//	forever          unknown, and unknown on every check
//
// A body is unique per transaction, so the listener counts checks per body.
func txPolicy(body string, checkN int) primitive.LocalTransactionState {
	kind, _, _ := strings.Cut(body, ":")
	switch kind {
	case "commit", "warm":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	case "check-commit":
		if checkN >= 1 {
			return primitive.CommitMessageState
		}
	case "check-rollback":
		if checkN >= 1 {
			return primitive.RollbackMessageState
		}
	case "check2-commit":
		if checkN >= 2 {
			return primitive.CommitMessageState
		}
	}
	return primitive.UnkonwnState
}

// txCommitted says whether the policy ends body committed.
func txCommitted(body string) bool {
	kind, _, _ := strings.Cut(body, ":")
	return kind == "commit" || kind == "warm" || kind == "check-commit" || kind == "check2-commit"
}

// txListener is a primitive.TransactionListener that decides with
// txPolicy (or decide, when set) and records every call.
type txListener struct {
	name   string
	decide func(body string, checkN int) primitive.LocalTransactionState

	mu       sync.Mutex
	executed map[string]string // body -> transaction id seen by ExecuteLocalTransaction
	checks   map[string]int    // body -> checks received
	checkIDs map[string]int    // transaction id -> checks received
	total    atomic.Int64      // checks received in all
	signal   chan struct{}
}

func newTxListener(name string) *txListener {
	return &txListener{name: name, executed: map[string]string{}, checks: map[string]int{},
		checkIDs: map[string]int{}, signal: make(chan struct{}, 1)}
}

func (l *txListener) policy(body string, n int) primitive.LocalTransactionState {
	if l.decide != nil {
		return l.decide(body, n)
	}
	return txPolicy(body, n)
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	body := string(m.Body)
	l.mu.Lock()
	l.executed[body] = m.TransactionId
	l.mu.Unlock()
	return l.policy(body, 0)
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	body := string(m.Body)
	l.mu.Lock()
	l.checks[body]++
	l.checkIDs[m.TransactionId]++
	n := l.checks[body]
	l.mu.Unlock()
	l.total.Add(1)
	select {
	case l.signal <- struct{}{}:
	default:
	}
	return l.policy(body, n)
}

// checksOf is the number of checks received for body.
func (l *txListener) checksOf(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

// checkCounts copies the per-body check counts.
func (l *txListener) checkCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.checks))
	for k, v := range l.checks {
		out[k] = v
	}
	return out
}

// txTimings are the broker.conf keys of the in-process transaction tests:
// the first check 500 ms after the half is stored, then every 500 ms, at
// most 3 checks.
var txTimings = []string{"transactionTimeOut", "500", "transactionCheckInterval", "500", "transactionCheckMax", "3"}

// txBroker is an in-process broker for transaction tests.
type txBroker struct {
	*txmq
	TB *testutil.TestBroker
}

// startTxBroker runs an in-process broker with txTimings, then kv on top.
func startTxBroker(t testing.TB, kv ...string) *txBroker {
	t.Helper()
	bound(t, 150*time.Second)
	all := append(append([]string(nil), txTimings...), kv...)
	var opts []testutil.Option
	for i := 0; i+1 < len(all); i += 2 {
		opts = append(opts, testutil.WithConfig(all[i], all[i+1]))
	}
	tb := testutil.RunBroker(t, opts...)
	return &txBroker{txmq: newTxmq(t, tb.NamesrvAddr, tb.BrokerAddr), TB: tb}
}

// producerClients is the number of registered clients of a producer group.
func (b *txBroker) producerClients(group string) int {
	return len(b.TB.Broker.Clients().ProducerClients(group))
}

// startTxProducer starts an official transaction producer of group with
// its own client instance.
func startTxProducer(t testing.TB, x *txmq, group string, l primitive.TransactionListener, opts ...producer.Option) rocketmq.TransactionProducer {
	t.Helper()
	all := append([]producer.Option{
		producer.WithNameServer(x.Namesrv()),
		producer.WithGroupName(group),
		producer.WithInstanceName(uniq("tpi")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)
	g := &gatedListener{TransactionListener: l, gate: make(chan struct{}), parked: make(chan struct{}, 1)}
	p, err := rocketmq.NewTransactionProducer(g, all...)
	if err != nil {
		t.Fatalf("new transaction producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start transaction producer: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			g.closing.Store(true)
			// While checks flow, the client's check goroutine is in
			// the gate within milliseconds; otherwise it is idle.
			select {
			case <-g.parked:
			case <-time.After(200 * time.Millisecond):
			}
			_ = p.Shutdown()
			close(g.gate)
		})
	})
	return p
}

// gatedListener holds the checks that arrive while its producer shuts
// down until Shutdown has returned. Why: the official client's
// rmqClient.Shutdown sets a plain bool that its check goroutine reads,
// without synchronisation, when it sends the answer (InvokeOneWay), so a
// check answered during Shutdown is a data race inside the client that
// `go test -race` reports (against whichever test runs then). The
// producer's cleanup waits (briefly) until that goroutine is parked in
// the gate, so none is sending; released after Shutdown, the answers see
// the client closed and are dropped.
type gatedListener struct {
	primitive.TransactionListener
	closing atomic.Bool
	gate    chan struct{}
	parked  chan struct{} // cap 1: a check is waiting in the gate
}

func (g *gatedListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	if g.closing.Load() {
		select {
		case g.parked <- struct{}{}:
		default:
		}
		<-g.gate
	}
	return g.TransactionListener.CheckLocalTransaction(m)
}

// sendTx sends one transactional message and requires SEND_OK.
func sendTx(t testing.TB, p rocketmq.TransactionProducer, topic, body string) *primitive.TransactionSendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
	if err != nil {
		t.Fatalf("SendMessageInTransaction %q: %v", body, err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("SendMessageInTransaction %q: status %v", body, res.Status)
	}
	return res
}

// warmUp sends one committed transaction ("warm:<name>") so that the
// producer learns the broker's address from the topic's route, and waits
// until the broker has registered clients producers of group.
//
// The official client registers a producer with a broker only by its
// heartbeat, sent 1 s after Start and then every 30 s, to the brokers it
// knows from routes: a producer that has sent nothing by its first
// heartbeat is not registered (and cannot be checked) for 30 s.
func warmUp(t testing.TB, b *txBroker, p rocketmq.TransactionProducer, topic, group, name string, clients int) string {
	t.Helper()
	body := "warm:" + name
	sendTx(t, p, topic, body)
	eventually(t, 10*time.Second, func() error {
		if n := b.producerClients(group); n < clients {
			return fmt.Errorf("group %s: %d producers registered, want %d", group, n, clients)
		}
		return nil
	})
	return body
}

// txAdminJSON runs `txmq admin tx <args> --json` and decodes its output.
func txAdminJSON(t testing.TB, x *txmq, v any, args ...string) {
	t.Helper()
	out, code := txmqAdmin(t, x, append(append([]string{"tx"}, args...), "--json")...)
	if code != 0 {
		t.Fatalf("txmq admin tx %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("txmq admin tx %s: %v in %q", strings.Join(args, " "), err, out)
	}
}

// txList is `txmq admin tx list` on the (single) broker.
func txList(t testing.TB, x *txmq, args ...string) txn.ListResponse {
	t.Helper()
	var all []txn.ListResponse
	txAdminJSON(t, x, &all, append([]string{"list"}, args...)...)
	if len(all) != 1 {
		t.Fatalf("tx list: %d brokers answered, want 1", len(all))
	}
	return all[0]
}

// txStats is `txmq admin tx stats` on the (single) broker.
func txStats(t testing.TB, x *txmq) txn.Stats {
	t.Helper()
	var all []txn.StatsResponse
	txAdminJSON(t, x, &all, "stats")
	if len(all) != 1 {
		t.Fatalf("tx stats: %d brokers answered, want 1", len(all))
	}
	return all[0].Stats
}

// txDiscarded is `txmq admin tx discarded` on the (single) broker.
func txDiscarded(t testing.TB, x *txmq) []txn.DiscardedInfo {
	t.Helper()
	var all []txn.DiscardedResponse
	txAdminJSON(t, x, &all, "discarded")
	if len(all) != 1 {
		t.Fatalf("tx discarded: %d brokers answered, want 1", len(all))
	}
	return all[0].List
}

// expectExactly waits until the consumer has every body of want, then
// waits settle more and requires that nothing else arrived and nothing
// arrived twice.
func expectExactly(t testing.TB, c *pushConsumer, want []string, settle time.Duration) {
	t.Helper()
	c.In.waitFor(t, 30*time.Second, fmt.Sprintf("%d committed messages", len(want)), func() bool {
		for _, b := range want {
			if !c.In.has(b) {
				return false
			}
		}
		return true
	})
	time.Sleep(settle)
	wantSet := map[string]bool{}
	for _, b := range want {
		wantSet[b] = true
	}
	for _, m := range c.In.snapshot() {
		if !wantSet[string(m.Body)] {
			t.Errorf("consumer received %q, which was not committed", m.Body)
		}
	}
	for _, b := range want {
		if n := len(c.In.get(b)); n != 1 {
			t.Errorf("consumer received %q %d times, want once", b, n)
		}
	}
}
