package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
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

func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }

const testSegSize = 256 << 10

var storeHost = netip.MustParseAddrPort("127.0.0.1:10911")

// countingStore is the real store with its real OnRecord hook; it only
// counts the bytes Scan hands out, so recovery tests can prove that a
// restart does not re-read the whole log, and the ReadAt calls, so END
// tests can tell how the half was read. Appends go straight to the
// store (no serialisation): the store calls the hook from its dispatch
// goroutine, in commit-log order, before each append completes.
type countingStore struct {
	*store.Store
	scanBytes atomic.Int64
	readAts   atomic.Int64
	// afterHook, when set, runs on the dispatch goroutine after the
	// service's hook has seen a record: what other goroutines may do
	// between the hook and the append's return.
	afterHook atomic.Pointer[func(off int64, v message.View)]
}

func (l *countingStore) ReadAt(off int64) ([]byte, error) {
	l.readAts.Add(1)
	return l.Store.ReadAt(off)
}

func (l *countingStore) Scan(from int64, fn func(off int64, v message.View) error) (int64, error) {
	return l.Store.Scan(from, func(off int64, v message.View) error {
		l.scanBytes.Add(int64(v.Len()))
		return fn(off, v)
	})
}

// openStore opens a store in dir whose OnRecord hook forwards to the
// service *hook points at (the store must exist before the service, as in
// the broker, so the hook is late-bound).
func openStore(t testing.TB, dir string, mode store.FlushMode, now func() time.Time, logger *slog.Logger,
	hook *atomic.Pointer[Service]) *countingStore {
	t.Helper()
	scfg := store.DefaultConfig(dir)
	scfg.SegmentSize = testSegSize
	scfg.MaxMessageSize = 16 << 10
	scfg.FlushMode = mode
	if now != nil {
		scfg.Now = now
	}
	if logger != nil {
		scfg.Logger = logger
	}
	cs := &countingStore{}
	scfg.OnRecord = func(off int64, v message.View) {
		if s := hook.Load(); s != nil {
			s.OnRecord(off, v)
		}
		if f := cs.afterHook.Load(); f != nil {
			(*f)(off, v)
		}
	}
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cs.Store = st
	return cs
}

// harness is a store + service on a temp dir with a fake clock and real
// remoting producers.
type harness struct {
	t     testing.TB
	dir   string
	clk   *testkit.Clock
	cfg   Config
	log   *countingStore
	hook  atomic.Pointer[Service] // the service the store's OnRecord feeds
	svc   *Service
	prods *testProducers
	flush store.FlushMode
	cur   atomic.Pointer[Service] // svc, for producer goroutines
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	h := &harness{t: t, dir: testDir(t), clk: testkit.NewClock(time.UnixMilli(1_700_000_000_000))}
	h.cfg = Config{
		Enable: true, Timeout: 6 * time.Second, CheckInterval: 30 * time.Second, CheckMax: 15,
		FileReservedTime: 72 * time.Hour, BrokerName: "broker-a", StoreHost: storeHost,
		Logger: testLogger(t), Now: h.clk.Now, noBackground: true,
	}
	h.cfg.SnapshotDir = h.dir
	if mod != nil {
		mod(&h.cfg)
	}
	h.prods = newTestProducers(t)
	h.open()
	t.Cleanup(func() { h.close() })
	return h
}

func (h *harness) open() {
	h.t.Helper()
	h.hook.Store(nil)
	h.log = openStore(h.t, h.dir+"/store", h.flush, h.clk.Now, h.cfg.Logger, &h.hook)
	svc, err := New(h.cfg, h.log, h.prods)
	if err != nil {
		h.t.Fatal(err)
	}
	h.hook.Store(svc)
	if err := svc.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
	h.cur.Store(svc)
}

func (h *harness) close() {
	if h.svc == nil {
		return
	}
	if err := h.svc.Close(); err != nil {
		h.t.Error(err)
	}
	if err := h.log.Store.Close(); err != nil {
		h.t.Error(err)
	}
	h.svc = nil
}

// restart closes and reopens store and service.
func (h *harness) restart() {
	h.t.Helper()
	h.close()
	h.open()
}

func (h *harness) tick() { h.svc.runDue(context.Background()) }

func halfMsg(topic string, qid int32, uniq string, body string, props ...string) *message.Ext {
	p := message.AppendProperty("", message.PropUniqClientMessageID, uniq)
	p = message.AppendProperty(p, message.PropTransactionPrepared, "true")
	p = message.AppendProperty(p, message.PropTags, "TagA")
	for i := 0; i+1 < len(props); i += 2 {
		p = message.SetProperty(p, props[i], props[i+1])
	}
	return &message.Ext{Topic: topic, QueueID: qid, SysFlag: message.FlagTransPrepared,
		BornTimestamp: 1_699_999_999_000, BornHost: netip.MustParseAddrPort("10.0.0.1:5555"), StoreHost: storeHost,
		Body: []byte(body), Properties: p}
}

func (h *harness) prepare(group, uniq string, props ...string) PrepareResult {
	h.t.Helper()
	r, err := h.svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniq, "body-"+uniq, props...), group)
	if err != nil {
		h.t.Fatalf("Prepare %s: %v", uniq, err)
	}
	return r
}

func (h *harness) endOff(group string, r PrepareResult, res Resolution) (EndResult, error) {
	return h.svc.End(context.Background(), EndRequest{ProducerGroup: group, CommitLogOffset: r.Append.CommitLogOffset,
		TranStateTableOffset: r.Append.QueueOffset, HasOffsets: true, Resolution: res, TransactionID: r.TransactionID})
}

// visible returns the messages of a real queue.
func (h *harness) visible(topic string, qid int32) []*message.Ext {
	h.t.Helper()
	r, err := h.log.GetMessages(topic, qid, 0, 10000, 0, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Release()
	var out []*message.Ext
	for _, rec := range r.Records {
		m, _, err := message.Decode(rec)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// copiesOf counts the visible copies of uniq in TopicA/1.
func (h *harness) copiesOf(uniq string) int {
	n := 0
	for _, m := range h.visible("TopicA", 1) {
		if u, _ := message.Property(m.Properties, message.PropUniqClientMessageID); u == uniq {
			n++
		}
	}
	return n
}

func (h *harness) pendingN() int {
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	return len(h.svc.pending)
}

func (h *harness) entry(off int64) (entry, bool) {
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	e := h.svc.pending[off]
	if e == nil {
		return entry{}, false
	}
	return *e, true
}

// testProducers is the broker side of producer connections: a remoting
// server whose HEART_BEAT handler registers the connection in a group.
type testProducers struct {
	t      testing.TB
	srv    *remoting.Server
	mu     sync.Mutex
	groups map[string][]*remoting.Conn
	rr     map[string]int
	onReg  func(group string)
}

func newTestProducers(t testing.TB) *testProducers {
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p := &testProducers{t: t, srv: srv, groups: map[string][]*remoting.Conn{}, rr: map[string]int{}}
	srv.Handle(remoting.ReqHeartBeat, func(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
		g := req.ExtStringOr("group", "")
		p.mu.Lock()
		p.groups[g] = append(p.groups[g], c)
		fn := p.onReg
		p.mu.Unlock()
		if fn != nil {
			fn(g)
		}
		return req.Reply(remoting.RespSuccess, ""), nil
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *testProducers) PickProducer(group string) *remoting.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.groups[group]
	live := list[:0:0]
	for _, c := range list {
		if c.Err() == nil {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return nil
	}
	i := p.rr[group] % len(live)
	p.rr[group]++
	return live[i]
}

// checkMsg is one CHECK_TRANSACTION_STATE a producer received.
type checkMsg struct {
	ext map[string]string
	msg *message.Ext
}

// producer is a client connection of one producer group that records the
// checks it receives and answers them through answer (nil: no answer).
type producer struct {
	group  string
	cl     *remoting.Client
	mu     sync.Mutex
	checks []checkMsg
	ends   []EndResult // results of the ENDs answering checks
	got    chan checkMsg
}

func (h *harness) connectProducer(group string, answer func(checkMsg) Resolution) *producer {
	h.t.Helper()
	pr := &producer{group: group, got: make(chan checkMsg, 1024)}
	handler := func(ctx context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
		msgs, err := message.DecodeAll(req.Body)
		if err != nil || len(msgs) != 1 {
			h.t.Errorf("check body: %v (%d messages)", err, len(msgs))
			return nil, nil
		}
		cm := checkMsg{ext: req.ExtFields.Map(), msg: msgs[0]}
		defer func() { // recorded once answered, so waitChecks sees the END done
			pr.mu.Lock()
			pr.checks = append(pr.checks, cm)
			pr.mu.Unlock()
			pr.got <- cm
		}()
		if answer != nil {
			res := answer(cm)
			off, _ := strconv.ParseInt(cm.ext["commitLogOffset"], 10, 64)
			tso, _ := strconv.ParseInt(cm.ext["tranStateTableOffset"], 10, 64)
			txid, _ := message.Property(cm.msg.Properties, message.PropTransactionID)
			svc := h.cur.Load()
			er, err := svc.End(ctx, EndRequest{ProducerGroup: group, CommitLogOffset: off, TranStateTableOffset: tso,
				HasOffsets: true, Resolution: res, FromCheck: true, Source: SourceCheck, TransactionID: txid})
			if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotStarted) {
				h.t.Errorf("END from check: %v", err)
			}
			if err == nil {
				pr.mu.Lock()
				pr.ends = append(pr.ends, er)
				pr.mu.Unlock()
			}
		}
		return nil, nil
	}
	cl, err := remoting.Dial(context.Background(), h.prods.srv.Addr().String(), remoting.ClientConfig{
		Handlers: map[int32]remoting.Handler{remoting.ReqCheckTransactionState: handler},
		Logger:   slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cl.Close() })
	if _, err := cl.Invoke(context.Background(), remoting.NewRequest(remoting.ReqHeartBeat, map[string]string{"group": group})); err != nil {
		h.t.Fatal(err)
	}
	pr.cl = cl
	return pr
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.checks)
}

// waitChecks waits until the producer has received n checks in total.
func (p *producer) waitChecks(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("producer %s: %d checks, want %d", p.group, p.count(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle gives oneway checks in flight time to arrive.
func settle() { time.Sleep(30 * time.Millisecond) }

func uniqID(i int) string { return fmt.Sprintf("7F0000010001%020X", i) }

// testDir is a temporary directory, on tmpfs when there is one: the
// tests restart stores often and fsync on a busy disk can take seconds.
func testDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "txn-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
