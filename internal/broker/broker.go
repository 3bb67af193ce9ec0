package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/broker/clients"
	"github.com/txmq/txmq/internal/config"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/schedule"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/txn"
)

// Options are the parts of a broker that are not configuration.
type Options struct {
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
	// NoInlineSend serves every send, END_TRANSACTION and pull on a
	// handler goroutine (the path before inline.go); for tests and
	// benchmarks comparing the two.
	NoInlineSend bool
}

// Broker is one RocketMQ-compatible broker: a remoting server, the message
// store, topic and subscription-group configuration, consumer offsets, the
// client registry and the name-server registration loop.
//
// Lifecycle: New validates, opens the store (which locks the data
// directory), loads metadata and binds the listener; Start serves and
// launches every background loop; Shutdown stops all of it in order.
type Broker struct {
	cfg  config.Config
	log  *slog.Logger
	addr netip.AddrPort // AdvertisedAddr, parsed: STOREHOST of every record

	store   *store.Store
	srv     *remoting.Server
	clients *clients.Manager
	pool    *remoting.Pool // outbound: name servers

	topics  *topicTable
	groups  *groupTable
	offsets *offsetTable
	holds   *pullHolds
	reg     *registrar

	putHooks []putHook // run in order before a message is stored (send.go)
	// txn is the transaction service; txnHook lets the store's record hook
	// reach it (the store is opened before the service exists).
	txn     *txn.Service
	txnHook atomic.Pointer[txn.Service]
	// sched is the schedule service (delay levels, timers); schedHook lets
	// the store's record hook reach it, like txnHook.
	sched     *schedule.Service
	schedHook atomic.Pointer[schedule.Service]
	bootTime  time.Time
	uniq      uniqIDGen
	nextQID   qidCounter

	life lifecycle
}

// New validates cfg, opens the store, loads the metadata under
// <storePathRootDir>/config and binds the remoting listener at
// listenHost:listenPort. Nothing is served until Start.
func New(cfg config.Config, opts Options) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With(slog.String("component", "broker"), slog.String("broker", cfg.BrokerName))
	namesrvs, err := config.ParseNamesrvAddr(cfg.NamesrvAddr)
	if err != nil {
		return nil, fmt.Errorf("broker: namesrvAddr %q: %w", cfg.NamesrvAddr, err)
	}
	root, err := filepath.Abs(cfg.StorePathRootDir)
	if err != nil {
		return nil, fmt.Errorf("broker: storePathRootDir: %w", err)
	}
	// The store keeps its commit log in <dir>/commitlog and takes the
	// directory lock (<dir>/lock) itself, so the broker does not lock again.
	if cfg.StorePathCommitLog != "" {
		cl, err := filepath.Abs(cfg.StorePathCommitLog)
		if err != nil || cl != filepath.Join(root, "commitlog") {
			return nil, fmt.Errorf("broker: storePathCommitLog=%q is not supported yet: the commit log always lives in <storePathRootDir>/commitlog (%s)",
				cfg.StorePathCommitLog, filepath.Join(root, "commitlog"))
		}
	}

	b := &Broker{cfg: cfg, log: log, bootTime: time.Now()}
	b.life.init()
	b.holds = newPullHolds(b)
	b.putHooks = b.defaultPutHooks()

	scfg := store.DefaultConfig(root)
	scfg.SegmentSize = cfg.MappedFileSizeCommitLog
	if cfg.FlushDiskType == config.SyncFlush {
		scfg.FlushMode = store.SyncFlush
	}
	scfg.FlushInterval = time.Duration(cfg.FlushIntervalCommitLog) * time.Millisecond
	scfg.MaxMessageSize = cfg.MaxMessageSize
	scfg.CQEntriesPerFile = int(cfg.MappedFileSizeConsumeQueue / 20)
	scfg.IndexSlots = cfg.MaxIndexSlots
	scfg.IndexEntries = cfg.MaxIndexEntries
	scfg.FileReservedTime = time.Duration(cfg.FileReservedTime) * time.Hour
	scfg.DeleteWhen = cfg.DeleteWhen
	scfg.DiskMaxUsedSpaceRatio = cfg.DiskMaxUsedSpaceRatio
	scfg.Logger = opts.Logger
	if scfg.Logger == nil {
		scfg.Logger = slog.Default()
	}
	scfg.OnDispatch = b.holds.notify
	scfg.UnindexedTopic = message.TransHalfTopic
	// One record hook for the services that follow the commit log; each
	// costs a topic comparison for ordinary records.
	scfg.OnRecord = func(off int64, v message.View) {
		if t := b.txnHook.Load(); t != nil {
			t.OnRecord(off, v)
		}
		if s := b.schedHook.Load(); s != nil {
			s.OnRecord(off, v)
		}
	}
	st, err := store.Open(scfg)
	if err != nil {
		return nil, fmt.Errorf("broker: open store in %s: %w", root, err)
	}
	b.store = st
	fail := func(err error) (*Broker, error) {
		if cerr := st.Close(); cerr != nil {
			log.Warn("closing the store after a failed start", slog.Any("err", cerr))
		}
		return nil, err
	}

	metaDir := filepath.Join(root, "config")
	if b.topics, err = loadTopics(metaDir, cfg); err != nil {
		return fail(fmt.Errorf("broker: %w", err))
	}
	if b.groups, err = loadGroups(metaDir); err != nil {
		return fail(fmt.Errorf("broker: %w", err))
	}
	if b.offsets, err = loadOffsets(metaDir); err != nil {
		return fail(fmt.Errorf("broker: %w", err))
	}

	host := cfg.ListenHost
	srv, err := remoting.NewServer(remoting.ServerConfig{
		Addr:         net.JoinHostPort(host, strconv.Itoa(cfg.ListenPort)),
		MaxFrameSize: cfg.ServerMaxFrameSize,
		IdleTimeout:  time.Duration(cfg.ClientChannelMaxIdleTimeSeconds) * time.Second,
		Logger:       log.With(slog.String("component", "remoting")),
	})
	if err != nil {
		return fail(fmt.Errorf("broker: %w", err))
	}
	b.srv = srv
	port := srv.Addr().(*net.TCPAddr).Port
	b.addr = netip.AddrPortFrom(advertisedIP(cfg.BrokerIP1, cfg.ListenHost), uint16(port))

	b.clients = clients.NewManager(clients.Config{
		ChannelExpiredTimeout: time.Duration(cfg.ChannelExpiredTimeout) * time.Millisecond,
		Logger:                log,
		OnConsumerGroup:       b.onConsumerGroup,
		OnProducerRegistered: func(group string) {
			if t := b.txnHook.Load(); t != nil {
				t.ProducerRegistered(group)
			}
		},
	})
	tx, err := txn.New(txn.Config{
		Enable:           cfg.TransactionEnable,
		Timeout:          time.Duration(cfg.TransactionTimeOut) * time.Millisecond,
		CheckInterval:    time.Duration(cfg.TransactionCheckInterval) * time.Millisecond,
		CheckMax:         cfg.TransactionCheckMax,
		CheckWindow:      checkWindow(cfg.TransactionCheckWindow),
		FileReservedTime: time.Duration(cfg.FileReservedTime) * time.Hour,
		BrokerName:       cfg.BrokerName,
		StoreHost:        b.addr,
		Logger:           log,
		SnapshotDir:      metaDir,
	}, st, b.clients)
	if err != nil {
		_ = srv.Close()
		return fail(fmt.Errorf("broker: %w", err))
	}
	b.txn = tx
	b.txnHook.Store(tx)
	levels, err := config.ParseDelayLevels(cfg.MessageDelayLevel)
	if err != nil { // Validate checked it
		_ = srv.Close()
		return fail(fmt.Errorf("broker: messageDelayLevel: %w", err))
	}
	sched, err := schedule.New(schedule.Config{
		DelayLevels:   levels,
		TimerMaxDelay: time.Duration(cfg.TimerMaxDelaySec) * time.Second,
		Logger:        log,
		SnapshotDir:   metaDir,
	}, st)
	if err != nil {
		_ = srv.Close()
		return fail(fmt.Errorf("broker: %w", err))
	}
	b.sched = sched
	b.schedHook.Store(sched)
	b.pool = remoting.NewPool(remoting.ClientConfig{DialTimeout: 3 * time.Second, Logger: log})
	b.reg = newRegistrar(b, namesrvs)
	b.topics.onChange = func() { b.reg.kickWait(registerTimeout) }
	b.registerHandlers(opts)
	return b, nil
}

// registerHandlers installs every request handler on the server.
func (b *Broker) registerHandlers(opts Options) {
	s := b.srv
	b.clients.Register(s)
	b.txn.Register(s) // END_TRANSACTION and the transaction admin codes
	b.handle(remoting.ReqSendMessage, b.handleSend)
	b.handle(remoting.ReqSendMessageV2, b.handleSend)
	b.handle(remoting.ReqSendBatchMessage, b.handleSend)
	if !opts.NoInlineSend {
		b.handleInline(remoting.ReqSendMessage, b.handleSendInline)
		b.handleInline(remoting.ReqSendMessageV2, b.handleSendInline)
		b.handleInline(remoting.ReqPullMessage, b.handlePullInline)
		b.handleInline(remoting.ReqEndTransaction, b.txn.HandleEndTransactionInline)
	}
	b.handle(remoting.ReqConsumerSendMsgBack, b.handleSendBack)
	b.handle(remoting.ReqPullMessage, b.handlePull)
	b.handle(remoting.ReqQueryConsumerOffset, b.handleQueryConsumerOffset)
	b.handle(remoting.ReqUpdateConsumerOffset, b.handleUpdateConsumerOffset)
	b.handle(remoting.ReqGetMaxOffset, b.handleGetMaxOffset)
	b.handle(remoting.ReqGetMinOffset, b.handleGetMinOffset)
	b.handle(remoting.ReqSearchOffsetByTimestamp, b.handleSearchOffset)
	b.handle(remoting.ReqGetEarliestMsgStoreTime, b.handleEarliestStoreTime)
	b.handle(remoting.ReqQueryMessage, b.handleQueryMessage)
	b.handle(remoting.ReqViewMessageByID, b.handleViewMessage)
	b.handle(remoting.ReqUpdateAndCreateTopic, b.handleCreateTopic)
	b.handle(remoting.ReqGetAllTopicConfig, b.handleGetAllTopicConfig)
	b.handle(remoting.ReqDeleteTopicInBroker, b.handleDeleteTopic)
	b.handle(remoting.ReqGetTopicStatsInfo, b.handleTopicStats)
	b.handle(remoting.ReqUpdateAndCreateSubscriptionGroup, b.handleCreateGroup)
	b.handle(remoting.ReqGetAllSubscriptionGroupConfig, b.handleGetAllGroups)
	b.handle(remoting.ReqGetConsumeStats, b.handleConsumeStats)
	b.handle(remoting.ReqGetBrokerRuntimeInfo, b.handleRuntimeInfo)
	s.OnConnClose(b.holds.connClosed)
}

// handle registers h for code. A *remoting.CodeError from h is answered as
// is and logged at debug level: those are the client's mistakes (bad
// headers, unknown topics), which remoting would log as warnings when the
// code is SYSTEM_ERROR. Other errors go to remoting (SYSTEM_ERROR, warned).
func (b *Broker) handle(code int32, h remoting.Handler) {
	b.srv.Handle(code, func(ctx context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
		resp, err := h(ctx, c, req)
		return b.refused(c, req, resp, err)
	})
}

// handleInline registers h as the inline handler of code (inline.go), its
// refusals answered as handle answers them.
func (b *Broker) handleInline(code int32, h remoting.InlineHandler) {
	b.srv.HandleInline(code, func(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
		resp, err := h(c, req)
		return b.refused(c, req, resp, err)
	})
}

// refused turns a handler's *remoting.CodeError (a refusal: the client's
// business, logged at debug) into the response carrying its code; other
// results pass through.
func (b *Broker) refused(c *remoting.Conn, req, resp *remoting.Command, err error) (*remoting.Command, error) {
	if err == nil {
		return resp, nil
	}
	// errors.AsType, unlike errors.As with a local, does not move a
	// variable to the heap on every call (inline sends return ErrDeferred).
	ce, ok := errors.AsType[*remoting.CodeError](err)
	if !ok {
		return resp, err
	}
	b.log.Debug("request refused", slog.String("code", remoting.RequestCodeName(req.Code)),
		slog.String("remote", c.RemoteAddr().String()), slog.String("response", remoting.ResponseCodeName(ce.Code)),
		slog.String("remark", ce.Msg))
	return req.Reply(ce.Code, ce.Msg), nil
}

// advertisedIP is brokerIP1, else listenHost when it names one address,
// else the first non-loopback IPv4 address of the host, else 127.0.0.1.
func advertisedIP(brokerIP1, listenHost string) netip.Addr {
	for _, s := range []string{brokerIP1, listenHost} {
		if s == "localhost" {
			s = "127.0.0.1"
		}
		if a, err := netip.ParseAddr(s); err == nil && !a.IsUnspecified() {
			return a.Unmap()
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				ip = ip.Unmap()
				if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// Addr returns the address the remoting listener is bound to.
func (b *Broker) Addr() net.Addr { return b.srv.Addr() }

// AdvertisedAddr is the address clients are told to use: brokerIP1 (else
// listenHost when it is one address, else the host's first non-loopback
// IPv4 address, else 127.0.0.1) and the bound port. It is what the broker registers with name servers and what
// STOREHOST and offset message ids carry.
func (b *Broker) AdvertisedAddr() string { return b.addr.String() }

// Config returns the broker's configuration.
func (b *Broker) Config() config.Config { return b.cfg }

// Store returns the message store (for tests and the admin tools).
func (b *Broker) Store() *store.Store { return b.store }

// Clients returns the client registry.
func (b *Broker) Clients() *clients.Manager { return b.clients }

// Start serves requests and launches the background loops: offset
// persistence, name-server registration, client expiry. It fails after
// Shutdown or on a second call.
func (b *Broker) Start() error {
	if err := b.life.start(); err != nil {
		return err
	}
	// The transaction service replays the commit log from its snapshot
	// before any request is served.
	if err := b.txn.Start(context.Background()); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	// So does the schedule service; messages that fell due while the
	// broker was down are delivered as soon as it has started.
	if err := b.sched.Start(context.Background()); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.srv.Start(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.clients.Start()
	b.goFunc(b.persistLoop)
	b.goFunc(b.reg.loop)
	b.log.Info("broker started", slog.String("addr", b.srv.Addr().String()),
		slog.String("advertised", b.AdvertisedAddr()), slog.Any("namesrv", b.reg.addrs))
	return nil
}

// Shutdown stops the broker, in order: the registration loop and
// UNREGISTER_BROKER to every name server (best effort, short timeout);
// parked pulls are answered; the server stops accepting and closes every
// connection; background loops stop; offsets, topics and groups are
// persisted; the store is closed. It returns once every goroutine the
// broker started has exited, or when ctx is done. It is idempotent: later
// calls return the first call's result.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.life.once.Do(func() { b.life.err = b.shutdown(ctx) })
	return b.life.err
}

func (b *Broker) shutdown(ctx context.Context) error {
	started := b.life.beginShutdown()
	var errs []error
	// The registration loop first, so that nothing registers us again
	// after we unregistered.
	b.reg.stop()
	if started {
		b.reg.unregisterAll(ctx)
	}
	b.holds.releaseAll()
	if err := b.srv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	b.clients.Close()
	b.life.stopGo()
	if err := b.life.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("broker: waiting for background goroutines: %w", err))
	}
	b.holds.releaseAll() // anything parked while the server drained
	if err := b.persistAll(); err != nil {
		errs = append(errs, err)
	}
	// The schedule and transaction services flush the store and write
	// their snapshots.
	if err := b.sched.Close(); err != nil {
		errs = append(errs, fmt.Errorf("broker: close schedule service: %w", err))
	}
	if err := b.txn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("broker: close transaction service: %w", err))
	}
	if err := b.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("broker: close store: %w", err))
	}
	_ = b.pool.Close()
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}

// persistAll writes offsets, topics and groups.
func (b *Broker) persistAll() error {
	var errs []error
	if err := b.offsets.persist(); err != nil {
		errs = append(errs, err)
	}
	if err := b.topics.persist(); err != nil {
		errs = append(errs, err)
	}
	if err := b.groups.persist(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// persistLoop writes consumer offsets every offsetPersistInterval.
func (b *Broker) persistLoop() {
	t := time.NewTicker(offsetPersistInterval)
	defer t.Stop()
	for {
		select {
		case <-b.life.done:
			return
		case <-t.C:
			if err := b.offsets.persist(); err != nil {
				b.log.Warn("persisting consumer offsets failed", slog.Any("err", err))
			}
		}
	}
}

const offsetPersistInterval = 5 * time.Second

// goFunc runs fn on a goroutine Shutdown waits for, unless shutdown has
// begun; it reports whether fn was started.
func (b *Broker) goFunc(fn func()) bool { return b.life.goFunc(fn) }

// lifecycle tracks the broker's state and its goroutines.
type lifecycle struct {
	mu       sync.RWMutex // guards the fields below
	started  bool
	shutting bool
	stopped  bool // goFunc refuses
	wg       sync.WaitGroup
	done     chan struct{} // closed when shutdown begins: loops return

	once sync.Once
	err  error
}

func (l *lifecycle) init() { l.done = make(chan struct{}) }

func (l *lifecycle) start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.shutting:
		return errors.New("broker: Start after Shutdown")
	case l.started:
		return errors.New("broker: already started")
	}
	l.started = true
	return nil
}

// beginShutdown closes done and reports whether the broker was started.
func (l *lifecycle) beginShutdown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.shutting {
		l.shutting = true
		close(l.done)
	}
	return l.started
}

func (l *lifecycle) stopGo() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func (l *lifecycle) goFunc(fn func()) bool {
	if !l.enter() {
		return false
	}
	go func() {
		defer l.leave()
		fn()
	}()
	return true
}

// enter counts the caller as a tracked goroutine unless stopGo ran; leave
// must follow a true result.
func (l *lifecycle) enter() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.stopped {
		return false
	}
	l.wg.Add(1)
	return true
}

func (l *lifecycle) leave() { l.wg.Done() }

func (l *lifecycle) wait(ctx context.Context) error {
	ch := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(ch)
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shuttingDown reports whether Shutdown has begun.
func (l *lifecycle) shuttingDown() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// checkWindow maps transactionCheckWindow (0: no window) to
// txn.Config.CheckWindow (0: the default, negative: no window).
func checkWindow(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
