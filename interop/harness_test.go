package interop

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

// Environment knobs:
//
//	ROCKETMQ_GO_LOG_LEVEL=info|debug  the official client's own log level (default: error only)
//	TXMQ_TEST_LOG_LEVEL=debug         the in-process broker's log level (its log goes to t.Log)
const offsetDirEnv = "rocketmq.client.localOffsetStoreDir"

// txmqBin is the real binary, built once by TestMain.
var txmqBin string

func TestMain(m *testing.M) {
	// Broadcasting consumers keep their offsets in files under
	// $rocketmq.client.localOffsetStoreDir, read once when the client
	// package initialises (default ~/.rocketmq_client_go). Keep them in a
	// temporary directory: run the tests in a child process that has the
	// variable set.
	if os.Getenv(offsetDirEnv) == "" {
		os.Exit(reexecWithOffsetDir())
	}
	flag.Parse()
	if os.Getenv("ROCKETMQ_GO_LOG_LEVEL") == "" {
		rlog.SetLogLevel("error")
	}
	tmp, err := os.MkdirTemp("", "txmq-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(tmp)
		if !testing.Short() {
			// Build from the repository root, with the product's own
			// go.mod, exactly as it ships.
			bin := filepath.Join(tmp, "txmq")
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/txmq")
			cmd.Dir = ".."
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "interop: building txmq:", err)
				return 1
			}
			txmqBin = bin
		}
		return m.Run()
	}()
	os.Exit(code)
}

func reexecWithOffsetDir() int {
	dir, err := os.MkdirTemp("", "txmq-interop-offsets-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The child's stdout and stderr share one pipe, so their lines keep
	// their order; the parent copies it through and, if the run fails,
	// repeats the failed tests' output at the end.
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), offsetDirEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		fmt.Fprintln(os.Stderr, "interop: re-exec:", err)
		return 1
	}
	pw.Close() // the child holds its own copy; EOF comes when it exits
	digest, cerr := copyAndDigest(os.Stdout, pr)
	if cerr != nil {
		io.Copy(io.Discard, pr) // never leave the child blocked on a full pipe
	}
	pr.Close()
	err = cmd.Wait()
	if cerr != nil {
		fmt.Fprintln(os.Stderr, "interop: copying the test output:", cerr)
	}
	if err != nil {
		digest.write(os.Stdout)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "interop: re-exec:", err)
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// names

var nameSeq atomic.Int64

// uniq returns a short name that is unique in this process: prefix, a
// sequence number and the low digits of the start time. Valid as a topic
// and a group name.
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, nameSeq.Add(1), time.Now().UnixNano()%1_000_000)
}

// ---------------------------------------------------------------------------
// a running txmq: in-process or a real process

// txmq is a broker with its name server, either in this process or a
// spawned `txmq serve`.
type txmq struct {
	t          testing.TB
	NamesrvAdr string // host:port of the name server
	BrokerAddr string // advertised host:port of the broker
	pool       *remoting.Pool
}

// Namesrv is the name-server address list for the official client.
func (x *txmq) Namesrv() primitive.NamesrvAddr { return primitive.NamesrvAddr{x.NamesrvAdr} }

// tail returns at most the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// startInProc runs a name server and a broker in this process
// (testutil.RunBroker: free loopback ports, data in t.TempDir(), small
// files) and waits until the broker is routable. kv are broker.conf
// key/value pairs applied on top. The broker's log goes to t.Log
// (TXMQ_TEST_LOG_LEVEL sets its level).
func startInProc(t testing.TB, kv ...string) *txmq {
	t.Helper()
	bound(t, 150*time.Second)
	if len(kv)%2 != 0 {
		t.Fatalf("startInProc: odd key/value list %q", kv)
	}
	var opts []testutil.Option
	for i := 0; i < len(kv); i += 2 {
		opts = append(opts, testutil.WithConfig(kv[i], kv[i+1]))
	}
	tb := testutil.RunBroker(t, opts...)
	return newTxmq(t, tb.NamesrvAddr, tb.BrokerAddr)
}

func newTxmq(t testing.TB, ns, brokerAddr string) *txmq {
	x := &txmq{t: t, NamesrvAdr: ns, BrokerAddr: brokerAddr,
		pool: remoting.NewPool(remoting.ClientConfig{DialTimeout: 2 * time.Second})}
	t.Cleanup(func() { x.pool.Close() })
	return x
}

// waitReady polls the name server until it routes TBW102 through this
// broker (the broker has registered). exited, when not nil, reports a
// process that died meanwhile.
func (x *txmq) waitReady(t testing.TB, timeout time.Duration, exited func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if exited != nil {
			if err := exited(); err != nil {
				t.Fatalf("txmq exited before it was ready: %v", err)
			}
		}
		rd, err := x.route("TBW102")
		if err == nil {
			for _, bd := range rd.BrokerDatas {
				if bd.BrokerAddrs[0] == x.BrokerAddr {
					return
				}
			}
			err = fmt.Errorf("route of TBW102 does not name %s: %+v", x.BrokerAddr, rd.BrokerDatas)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("txmq not ready after %v: %v", timeout, last)
}

func (x *txmq) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// route asks the name server for a topic's route with txmq's own client.
func (x *txmq) route(topic string) (namesrv.TopicRouteData, error) {
	ctx, cancel := x.ctx()
	defer cancel()
	return namesrv.GetRoute(ctx, x.pool, x.NamesrvAdr, topic)
}

// invoke sends one request to the broker with txmq's own remoting client.
func (x *txmq) invoke(code int32, ext map[string]string) (*remoting.Command, error) {
	ctx, cancel := x.ctx()
	defer cancel()
	return x.pool.Invoke(ctx, x.BrokerAddr, remoting.NewRequest(code, ext))
}

// consumerOffset is the broker's stored offset of group on a queue, or -1
// when it has none (QUERY_NOT_FOUND).
func (x *txmq) consumerOffset(t testing.TB, group, topic string, qid int) int64 {
	t.Helper()
	resp, err := x.invoke(remoting.ReqQueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(qid)})
	if err != nil {
		t.Fatalf("QUERY_CONSUMER_OFFSET %s/%s/%d: %v", group, topic, qid, err)
	}
	switch resp.Code {
	case remoting.RespSuccess:
		v, err := resp.ExtInt64("offset")
		if err != nil {
			t.Fatalf("QUERY_CONSUMER_OFFSET: %v", err)
		}
		return v
	case remoting.RespQueryNotFound:
		return -1
	}
	t.Fatalf("QUERY_CONSUMER_OFFSET %s/%s/%d: code %d %s", group, topic, qid, resp.Code, resp.Remark)
	return 0
}

// maxOffset is the next offset to be written in a queue (GET_MAX_OFFSET).
func (x *txmq) maxOffset(t testing.TB, topic string, qid int) int64 {
	t.Helper()
	resp, err := x.invoke(remoting.ReqGetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(qid)})
	if err != nil || resp.Code != remoting.RespSuccess {
		t.Fatalf("GET_MAX_OFFSET %s/%d: %v %v", topic, qid, err, resp)
	}
	v, err := resp.ExtInt64("offset")
	if err != nil {
		t.Fatalf("GET_MAX_OFFSET: %v", err)
	}
	return v
}

// queueCount is the number of read queues of topic in its route.
func (x *txmq) queueCount(t testing.TB, topic string) int {
	t.Helper()
	rd, err := x.route(topic)
	if err != nil {
		t.Fatalf("route of %s: %v", topic, err)
	}
	n := 0
	for _, q := range rd.QueueDatas {
		n += q.ReadQueueNums
	}
	return n
}

// waitCommitted waits until group's stored offset on every queue of topic
// equals the queue's max offset: everything was consumed and committed.
func (x *txmq) waitCommitted(t testing.TB, group, topic string, timeout time.Duration) {
	t.Helper()
	n := x.queueCount(t, topic)
	eventually(t, timeout, func() error {
		for q := 0; q < n; q++ {
			have, want := x.consumerOffset(t, group, topic, q), x.maxOffset(t, topic, q)
			if have != want {
				return fmt.Errorf("group %s queue %s/%d: stored offset %d, max offset %d", group, topic, q, have, want)
			}
		}
		return nil
	})
}

// createTopic creates topic with the official admin API and waits until
// the name server routes it with that many queues.
func (x *txmq) createTopic(t testing.TB, topic string, queues int) {
	t.Helper()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{x.NamesrvAdr})))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer adm.Close()
	ctx, cancel := x.ctx()
	defer cancel()
	err = adm.CreateTopic(ctx,
		admin.WithTopicCreate(topic),
		admin.WithBrokerAddrCreate(x.BrokerAddr),
		admin.WithReadQueueNums(queues),
		admin.WithWriteQueueNums(queues))
	if err != nil {
		t.Fatalf("admin CreateTopic %s: %v", topic, err)
	}
	x.waitRoute(t, topic, queues, 5*time.Second)
}

// waitRoute waits until the name server routes topic with queues queues.
func (x *txmq) waitRoute(t testing.TB, topic string, queues int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		rd, err := x.route(topic)
		if err != nil {
			return err
		}
		if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].ReadQueueNums != queues || rd.QueueDatas[0].WriteQueueNums != queues {
			return fmt.Errorf("route of %s: %+v, want %d read/write queues", topic, rd.QueueDatas, queues)
		}
		return nil
	})
}

// eventually is testutil.Eventually.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	testutil.Eventually(t, timeout, f)
}

// ---------------------------------------------------------------------------
// the real binary

// proc is a `txmq serve` process with fixed ports and data directory, so it
// can be restarted on both.
type proc struct {
	t       testing.TB
	dir     string
	port    int
	nsPort  int
	extra   []string
	logPath string
	gen     int

	cmd  *exec.Cmd
	done chan struct{}
	err  error // of Wait, valid after done
	X    *txmq
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTxmq starts `txmq serve` on free loopback ports with its data in
// dir and waits until its broker is registered with its name server.
func startTxmq(t testing.TB, dir string, extraFlags ...string) *proc {
	t.Helper()
	if txmqBin == "" {
		t.Skip("the txmq binary is not built in -short mode")
	}
	bound(t, 200*time.Second)
	p := &proc{t: t, dir: dir, port: freePort(t), nsPort: freePort(t), extra: extraFlags}
	for p.nsPort == p.port {
		p.nsPort = freePort(t)
	}
	p.X = newTxmq(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.nsPort)), net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
	t.Cleanup(func() {
		dumped := false
		if t.Failed() && p.running() {
			// The Go runtime prints every goroutine's stack on SIGQUIT
			// (to the log file) and exits: what a stuck broker was doing.
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-p.done:
				dumped = true
			case <-time.After(5 * time.Second):
			}
		}
		if p.running() {
			p.Kill()
		}
		if t.Failed() {
			for g := 1; g <= p.gen; g++ {
				b, _ := os.ReadFile(p.logFile(g))
				n := 150
				if dumped && g == p.gen {
					n = 5000 // the goroutine dump whole
				}
				t.Logf("txmq log (run %d):\n%s", g, tail(string(b), n))
			}
		}
	})
	p.Start()
	return p
}

func (p *proc) logFile(gen int) string {
	return filepath.Join(filepath.Dir(p.dir), fmt.Sprintf("txmq-%s-%d.log", filepath.Base(p.dir), gen))
}

// Start (re)starts the process on the same ports and directory.
func (p *proc) Start() {
	t := p.t
	t.Helper()
	if p.running() {
		t.Fatalf("txmq is already running")
	}
	p.gen++
	logf, err := os.Create(p.logFile(p.gen))
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	args := append([]string{"serve",
		"--listenHost", "127.0.0.1",
		"--brokerIP1", "127.0.0.1",
		"--listenPort", strconv.Itoa(p.port),
		"--namesrvListenPort", strconv.Itoa(p.nsPort),
		"--storePathRootDir", p.dir,
		"--flushDiskType", "SYNC_FLUSH",
		"--grpcListenPort", "-1",
		"--httpListenPort", "-1",
	}, p.extra...)
	cmd := exec.Command(txmqBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start txmq: %v", err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	p.X.waitReady(t, 20*time.Second, func() error {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.logFile(p.gen))
			return fmt.Errorf("%v; log:\n%s", p.err, tail(string(b), 40))
		default:
			return nil
		}
	})
}

func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and requires a clean exit (status 0) within 30 s.
func (p *proc) Stop() {
	t := p.t
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatalf("txmq did not exit within 30 s of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("txmq exited uncleanly after SIGTERM: %v", p.err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("txmq still running 10 s after SIGKILL")
	}
}

// ---------------------------------------------------------------------------
// clients

// newProducer starts a producer of a fresh group with its own client
// instance (so it owns its connections and its name-server list).
func newProducer(t testing.TB, x *txmq, opts ...producer.Option) (rocketmq.Producer, string) {
	t.Helper()
	group := uniq("PG")
	all := append([]producer.Option{
		producer.WithNameServer(x.Namesrv()),
		producer.WithGroupName(group),
		producer.WithInstanceName(uniq("pi")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(5 * time.Second),
	}, opts...)
	p, err := producer.NewDefaultProducer(all...)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = p.Shutdown() }) })
	return p, group
}

// inbox records what a push consumer received.
type inbox struct {
	mu     sync.Mutex
	msgs   []*primitive.MessageExt // in arrival order
	byBody map[string][]*primitive.MessageExt
	signal chan struct{}
}

func newInbox() *inbox {
	return &inbox{byBody: map[string][]*primitive.MessageExt{}, signal: make(chan struct{}, 1)}
}

func (b *inbox) handle(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	b.mu.Lock()
	for _, m := range msgs {
		b.msgs = append(b.msgs, m)
		k := string(m.Body)
		b.byBody[k] = append(b.byBody[k], m)
	}
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
	return consumer.ConsumeSuccess, nil
}

// distinct is the number of distinct bodies received.
func (b *inbox) distinct() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byBody)
}

func (b *inbox) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// get returns the deliveries of the message with body body.
func (b *inbox) get(body string) []*primitive.MessageExt {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*primitive.MessageExt(nil), b.byBody[body]...)
}

func (b *inbox) has(body string) bool { return len(b.get(body)) > 0 }

// snapshot returns every delivery so far.
func (b *inbox) snapshot() []*primitive.MessageExt {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*primitive.MessageExt(nil), b.msgs...)
}

// duplicates is the number of deliveries beyond the first of each body.
func (b *inbox) duplicates() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs) - len(b.byBody)
}

// waitFor waits until cond holds, checking after every delivery.
func (b *inbox) waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-b.signal:
		case <-tick.C:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s (received %d deliveries, %d distinct)", timeout, what, b.total(), b.distinct())
		}
	}
}

// waitDistinct waits until n distinct bodies have arrived.
func (b *inbox) waitDistinct(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	b.waitFor(t, timeout, fmt.Sprintf("%d distinct messages", n), func() bool { return b.distinct() >= n })
}

// pushConsumer is a started push consumer and what it received.
type pushConsumer struct {
	rocketmq.PushConsumer
	Group     string
	Topic     string
	Instance  string
	In        *inbox
	broadcast bool
	lastAlloc atomic.Int64 // unix ns of the last call of the allocation strategy
	once      sync.Once
}

// Close shuts the consumer down once, after its rebalancing has settled.
//
// The official client races with itself when a consumer is shut down
// during a rebalance (rmqClient.close is a plain bool, written by Shutdown
// and read by every rmqClient.InvokeSync of the rebalance goroutine), which
// `go test -race` reports. So Close waits until the start-up rebalance has
// assigned the topic's queues, suspends the consumer (a suspended consumer
// starts no further rebalances) and waits until the allocation strategy
// has not run for a moment (a rebalance already under way, e.g. of
// %RETRY%<group>, calls it within milliseconds and finishes soon after),
// then shuts down.
func (c *pushConsumer) Close(t testing.TB) {
	c.once.Do(func() {
		deadline := time.Now().Add(10 * time.Second)
		if !c.broadcast {
			for time.Now().Before(deadline) && !cliLog.rebalanced(c.Instance, c.Topic) {
				time.Sleep(5 * time.Millisecond)
			}
			c.Suspend()
			const quiet = 150 * time.Millisecond
			for time.Now().Before(deadline) && time.Since(time.Unix(0, c.lastAlloc.Load())) < quiet {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := c.PushConsumer.Shutdown(); err != nil {
			t.Errorf("consumer shutdown: %v", err)
		}
	})
}

// startPushConsumer starts a clustering push consumer of group subscribed
// to topic with expression expr ("" means "*"), in its own client
// instance.
func startPushConsumer(t testing.TB, x *txmq, group, topic, expr string, opts ...consumer.Option) *pushConsumer {
	t.Helper()
	return startPush(t, x, group, topic, expr, false, opts...)
}

// startBroadcastConsumer starts a broadcasting push consumer that begins
// at the first offset.
func startBroadcastConsumer(t testing.TB, x *txmq, group, topic string) *pushConsumer {
	t.Helper()
	return startPush(t, x, group, topic, "", true,
		consumer.WithConsumerModel(consumer.BroadCasting), consumerFromFirst())
}

func startPush(t testing.TB, x *txmq, group, topic, expr string, broadcast bool, opts ...consumer.Option) *pushConsumer {
	t.Helper()
	if expr == "" {
		expr = "*"
	}
	inst := uniq("ci")
	c := &pushConsumer{Group: group, Topic: topic, Instance: inst, In: newInbox(), broadcast: broadcast}
	all := append([]consumer.Option{
		consumer.WithNameServer(x.Namesrv()),
		consumer.WithGroupName(group),
		consumer.WithInstance(inst),
		consumer.WithStrategy(func(g, cid string, mqAll []*primitive.MessageQueue, cidAll []string) []*primitive.MessageQueue {
			c.lastAlloc.Store(time.Now().UnixNano())
			return consumer.AllocateByAveragely(g, cid, mqAll, cidAll)
		}),
		// The client's flow control counts its throttles in plain ints
		// that every queue's pull goroutine increments (push_consumer.go
		// queueFlowControlTimes, queueMaxSpanFlowControlTimes): a data
		// race -race reports when two queues are throttled at once. A
		// consumer starting on TestTxCrash's backlog (about 3,000
		// messages per queue) throttles on span: cached offsets more than
		// ConsumeConcurrentlyMaxSpan (1,000 by default) apart. The largest
		// span the client accepts keeps every test below it; the count
		// and size thresholds (102,400 messages and 50 GiB per topic,
		// shared among its queues) are already out of reach. The broker
		// does not see the difference.
		consumer.WithConsumeConcurrentlyMaxSpan(65535),
	}, opts...)
	pc, err := consumer.NewPushConsumer(all...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	c.PushConsumer = pc
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr}, c.In.handle); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start push consumer of %s on %s: %v", group, topic, err)
	}
	t.Cleanup(func() { c.Close(t) })
	return c
}

// sendSync sends one message and fails the test on error.
func sendSync(t testing.TB, p rocketmq.Producer, msg *primitive.Message) *primitive.SendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.SendSync(ctx, msg)
	if err != nil {
		t.Fatalf("SendSync to %s: %v", msg.Topic, err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("SendSync to %s: status %v", msg.Topic, res.Status)
	}
	return res
}

// sendBodies sends one message per body, n senders in parallel.
func sendBodies(t testing.TB, p rocketmq.Producer, topic string, bodies []string, senders int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(bodies))
	next := atomic.Int64{}
	if senders > 1 && len(bodies) > 1 {
		// The first send alone: the official Go client publishes a
		// topic's queues before it records the brokers' addresses
		// (namesrvs.UpdateTopicRouteInfoWithDefault), so a concurrent
		// first send can pick a queue, find no address and fail with
		// "topic=... route info not found" without retrying
		// (docs/compat.md). One send first fills both.
		sendBodies(t, p, topic, bodies[:1], 1)
		next.Store(1)
	}
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(bodies[i])))
				cancel()
				if err == nil && res.Status != primitive.SendOK {
					err = fmt.Errorf("status %v", res.Status)
				}
				if err != nil {
					errs <- fmt.Errorf("send %q: %w", bodies[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// jsonOf renders v for failure messages.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// bound turns a hang into a failure: if the test is still running after d,
// every goroutine's stack is printed and the test binary panics.
func bound(t testing.TB, d time.Duration) {
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "interop: %s still running after %v; goroutines:\n%s\n", t.Name(), d, buf)
		panic(fmt.Sprintf("interop: %s hung (still running after %v)", t.Name(), d))
	})
	t.Cleanup(func() { timer.Stop() })
}

// sendStream is a bounded stream of sends for the crash and restart tests:
// workers goroutines call send with increasing sequence numbers until Stop;
// send returns the body it sent and whether the broker acknowledged it (a
// failed send pauses its worker for 20 ms). The acknowledged bodies are
// recorded.
type sendStream struct {
	AckN, FailN atomic.Int64

	mu    sync.Mutex
	acked map[string]bool
	seq   atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
	Stop  func() // stops the workers and waits for them; idempotent
}

func startSendStream(t *testing.T, workers int, send func(seq int64) (body string, ok bool)) *sendStream {
	s := &sendStream{acked: map[string]bool{}, stop: make(chan struct{})}
	s.Stop = sync.OnceFunc(func() { close(s.stop); s.wg.Wait() })
	t.Cleanup(s.Stop)
	for range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.stop:
					return
				default:
				}
				body, ok := send(s.seq.Add(1))
				if !ok {
					s.FailN.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				s.mu.Lock()
				s.acked[body] = true
				s.mu.Unlock()
				s.AckN.Add(1)
			}
		}()
	}
	return s
}

// Acked reports whether body was acknowledged.
func (s *sendStream) Acked(body string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[body]
}

// AckedBodies returns the acknowledged bodies.
func (s *sendStream) AckedBodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.acked))
	for b := range s.acked {
		out = append(out, b)
	}
	return out
}
