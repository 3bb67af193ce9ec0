package testutil

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/config"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// readyTimeout bounds the wait for a broker's TBW102 route.
const readyTimeout = 10 * time.Second

// TestBroker is a broker running inside a test.
type TestBroker struct {
	Broker      *broker.Broker
	Namesrv     *namesrv.Server // nil when the test passed its own address with WithNamesrvAddr
	NamesrvAddr string
	BrokerAddr  string // the advertised address, 127.0.0.1:port
	Dir         string // storePathRootDir
	Config      config.Config

	opts     options
	mu       sync.Mutex // guards stopped
	stopped  bool
	nsClient *remoting.Pool
}

// Option configures RunBroker.
type Option func(*options)

type options struct {
	ns       *namesrv.Server
	nsAddr   string
	dir      string
	set      [][2]string
	mutate   []func(*config.Config)
	noReady  bool
	noInline bool
}

// WithNamesrv makes the broker register with ns instead of a new name
// server of its own.
func WithNamesrv(ns *namesrv.Server) Option { return func(o *options) { o.ns = ns } }

// WithNamesrvAddr makes the broker register with the name servers at
// addr ("host:port;host:port").
func WithNamesrvAddr(addr string) Option { return func(o *options) { o.nsAddr = addr } }

// WithDir puts the broker's data in dir (for example the Dir of a broker
// that was shut down) instead of a new t.TempDir().
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithConfig sets broker.conf keys by their RocketMQ names, e.g.
// WithConfig("autoCreateTopicEnable", "false").
func WithConfig(key, value string) Option {
	return func(o *options) { o.set = append(o.set, [2]string{key, value}) }
}

// WithConfigFunc edits the configuration after the defaults and the
// WithConfig keys are applied.
func WithConfigFunc(fn func(*config.Config)) Option {
	return func(o *options) { o.mutate = append(o.mutate, fn) }
}

// WithoutInlineSend serves every send on a handler goroutine
// (broker.Options.NoInlineSend).
func WithoutInlineSend() Option { return func(o *options) { o.noInline = true } }

// WithoutReadyWait returns as soon as the broker started, without waiting
// for its route (for tests about registration itself).
func WithoutReadyWait() Option { return func(o *options) { o.noReady = true } }

// TestConfig is the configuration RunBroker starts from: the defaults with
// loopback addresses, port 0 and small files.
func TestConfig(dir, namesrvAddr string) config.Config {
	cfg := config.DefaultConfig()
	cfg.StorePathRootDir = dir
	cfg.ListenHost = "127.0.0.1"
	cfg.ListenPort = 0
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.NamesrvAddr = namesrvAddr
	cfg.EmbeddedNamesrv = false
	cfg.NamesrvListenPort = 0
	cfg.GrpcListenPort = -1
	cfg.HTTPListenPort = -1
	cfg.MappedFileSizeCommitLog = 4 << 20
	cfg.MappedFileSizeConsumeQueue = 20 * 4096
	cfg.MaxMessageSize = 1 << 20
	cfg.ServerMaxFrameSize = 4 << 20
	cfg.MaxIndexSlots = 1024
	cfg.MaxIndexEntries = 4096
	cfg.RegisterNameServerPeriod = 30_000
	return cfg
}

// RunBroker starts a broker (and, unless given one, a name server) and
// waits until the name server serves the broker's TBW102 route. The broker
// is shut down when the test ends.
func RunBroker(t testing.TB, opts ...Option) *TestBroker {
	t.Helper()
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	tb := &TestBroker{opts: o}
	switch {
	case o.nsAddr != "":
		tb.NamesrvAddr = o.nsAddr
	case o.ns != nil:
		tb.Namesrv = o.ns
	default:
		tb.Namesrv = RunNamesrv(t)
	}
	if tb.Namesrv != nil {
		tb.NamesrvAddr = tb.Namesrv.Addr().String()
	}
	tb.Dir = o.dir
	if tb.Dir == "" {
		tb.Dir = t.TempDir()
	}
	cfg := TestConfig(tb.Dir, tb.NamesrvAddr)
	for _, kv := range o.set {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("testutil: config %s=%s: %v", kv[0], kv[1], err)
		}
	}
	for _, fn := range o.mutate {
		fn(&cfg)
	}
	tb.nsClient = remoting.NewPool(remoting.ClientConfig{})
	t.Cleanup(func() { _ = tb.nsClient.Close() })
	tb.start(t, cfg)
	t.Cleanup(func() { tb.Shutdown(t) })
	return tb
}

func (tb *TestBroker) start(t testing.TB, cfg config.Config) {
	t.Helper()
	b, err := broker.New(cfg, broker.Options{Logger: NewTestLogger(t).With("test", "broker"), NoInlineSend: tb.opts.noInline})
	if err != nil {
		t.Fatalf("testutil: new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		_ = b.Shutdown(context.Background())
		t.Fatalf("testutil: start broker: %v", err)
	}
	tb.mu.Lock()
	tb.Broker, tb.Config, tb.stopped = b, cfg, false
	tb.mu.Unlock()
	tb.BrokerAddr = b.AdvertisedAddr()
	if !tb.opts.noReady {
		tb.WaitRoutable(t, "TBW102")
	}
}

// WaitRoutable waits until the name server routes topic to this broker.
func (tb *TestBroker) WaitRoutable(t testing.TB, topic string) {
	t.Helper()
	Eventually(t, readyTimeout, func() error { return tb.routable(topic) })
}

func (tb *TestBroker) routable(topic string) error {
	addrs, err := config.ParseNamesrvAddr(tb.NamesrvAddr)
	if err != nil || len(addrs) == 0 {
		return errf("no name server address in %q", tb.NamesrvAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rd, err := namesrv.GetRoute(ctx, tb.nsClient, addrs[0], topic)
	if err != nil {
		return err
	}
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerAddrs[0] == tb.BrokerAddr {
			return nil
		}
	}
	return errf("route of %s does not list %s yet: %+v", topic, tb.BrokerAddr, rd.BrokerDatas)
}

// Shutdown stops the broker (once; later calls do nothing) and fails the
// test if that fails.
func (tb *TestBroker) Shutdown(t testing.TB) {
	t.Helper()
	tb.mu.Lock()
	b, stopped := tb.Broker, tb.stopped
	tb.stopped = true
	tb.mu.Unlock()
	if stopped || b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Errorf("testutil: broker shutdown: %v", err)
	}
}

// Restart shuts the broker down and starts a new one on the same data
// directory and configuration, on the same port when it is still free.
func (tb *TestBroker) Restart(t testing.TB) {
	t.Helper()
	tb.Shutdown(t)
	cfg := tb.Config
	if _, p, err := net.SplitHostPort(tb.BrokerAddr); err == nil {
		port, _ := strconv.Atoi(p)
		if ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenHost, p)); err == nil {
			_ = ln.Close()
			cfg.ListenPort = port
		}
	}
	tb.start(t, cfg)
}

// Dial connects a remoting client to the broker; it is closed when the
// test ends.
func (tb *TestBroker) Dial(t testing.TB) *remoting.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := remoting.Dial(ctx, tb.BrokerAddr, remoting.ClientConfig{Logger: NewTestLogger(t).With("test", "client")})
	if err != nil {
		t.Fatalf("testutil: dial broker: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
