package schedule

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/testutil/testkit"
)

func testLogger(t testing.TB) *slog.Logger { return testkit.Logger(t) }

func newClock() *testkit.Clock { return testkit.NewClock(time.UnixMilli(1_700_000_000_000)) }

var host = netip.MustParseAddrPort("127.0.0.1:10911")

var testLevels = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 10 * time.Second}

// env is a store and a schedule service over it, with a fake clock.
type env struct {
	t     testing.TB
	dir   string
	clock *testkit.Clock
	st    *store.Store
	svc   *Service
	hook  atomic.Pointer[Service]
	// delivered records (real copies) seen by the store hook, by body.
	mu   sync.Mutex
	got  map[string][]message.View
	cfg  Config
	opts func(*Config)
}

func newEnv(t testing.TB, clock *testkit.Clock, dir string, opts func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dir: dir, clock: clock, got: map[string][]message.View{}, opts: opts}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	t := e.t
	t.Helper()
	scfg := store.DefaultConfig(e.dir)
	scfg.SegmentSize = 1 << 20
	scfg.MaxMessageSize = 64 << 10
	scfg.Logger = testLogger(t)
	scfg.Now = e.clock.Now
	scfg.OnRecord = func(off int64, v message.View) {
		if s := e.hook.Load(); s != nil {
			s.OnRecord(off, v)
		}
		if _, ok := message.PropertyBytes(v.Properties(), PropScheduledOffset); ok {
			cp, _ := message.Parse(append([]byte(nil), v.Bytes()...))
			e.mu.Lock()
			e.got[string(cp.Body())] = append(e.got[string(cp.Body())], cp)
			e.mu.Unlock()
		}
	}
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	cfg := Config{DelayLevels: testLevels, Logger: testLogger(t), Now: e.clock.Now, SnapshotDir: e.dir, noBackground: true}
	if e.opts != nil {
		e.opts(&cfg)
	}
	e.cfg = cfg
	svc, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.hook.Store(svc)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) close() {
	if e.svc != nil {
		_ = e.svc.Close()
		e.hook.Store(nil)
		e.svc = nil
	}
	if e.st != nil {
		_ = e.st.Close()
		e.st = nil
	}
}

// crash drops the service without a final snapshot and closes the store
// (the log is what a SIGKILL after the last append would leave under
// SYNC_FLUSH).
func (e *env) crash() {
	e.hook.Store(nil)
	e.svc = nil
	_ = e.st.Close()
	e.st = nil
}

func (e *env) restart() {
	e.close()
	e.open()
}

// send diverts and appends a message to topic T queue qid with properties kv.
func (e *env) send(body string, qid int32, kv ...string) (store.AppendResult, error) {
	props := message.AppendProperty("", message.PropUniqClientMessageID, "U-"+body)
	for i := 0; i+1 < len(kv); i += 2 {
		props = message.AppendProperty(props, kv[i], kv[i+1])
	}
	m := &message.Ext{Topic: "T", QueueID: qid, BornTimestamp: e.clock.Now().UnixMilli(), BornHost: host,
		StoreHost: host, Body: []byte(body), Properties: props, ReconsumeTimes: 2, Flag: 7}
	if err := e.svc.Divert(m); err != nil {
		return store.AppendResult{}, err
	}
	return e.st.Append(context.Background(), m)
}

func (e *env) mustSend(body string, qid int32, kv ...string) store.AppendResult {
	e.t.Helper()
	r, err := e.send(body, qid, kv...)
	if err != nil {
		e.t.Fatalf("send %s: %v", body, err)
	}
	return r
}

// run delivers what is due at the fake clock's time.
func (e *env) run() { e.svc.deliverDue(context.Background()) }

func (e *env) deliveries(body string) []message.View {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[body]
}

func (e *env) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.got {
		n += len(v)
	}
	return n
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
