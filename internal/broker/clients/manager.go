package clients

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

// Defaults applied by NewManager to zero Config fields.
const (
	DefaultChannelExpiredTimeout = 120 * time.Second // Java channelExpiredTimeout
	DefaultLockExpiry            = 60 * time.Second  // Java rebalanceLockMaxLiveTime
	DefaultScanInterval          = 10 * time.Second  // Java ClientHousekeepingService period
	// notifyDelay gathers a burst of member changes (a consumer fleet
	// starting) into one NOTIFY_CONSUMER_IDS_CHANGED per member and group.
	notifyDelay = 20 * time.Millisecond
)

// Config configures a Manager. Zero values mean the defaults.
type Config struct {
	// ChannelExpiredTimeout drops a client whose last heartbeat is older
	// than this. Default 120 s.
	ChannelExpiredTimeout time.Duration
	// LockExpiry is the lease of a queue lock (LOCK_BATCH_MQ). Default 60 s.
	LockExpiry time.Duration
	// ScanInterval is how often Start's loop expires clients and locks.
	// Default 10 s.
	ScanInterval time.Duration
	// Logger receives the manager's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// OnConsumerGroup is called synchronously from the HEART_BEAT handler,
	// before it answers, once for every consumer group in the heartbeat,
	// with the group as registered after this heartbeat (its subscriptions
	// include every live member's, so %RETRY%<group> appears for clustering
	// consumers). The broker uses it to create %RETRY%<group> and the
	// subscription-group config. It runs with no Manager lock held and may
	// call the Manager. An error is logged; the heartbeat still succeeds.
	OnConsumerGroup func(group string, info ConsumerGroupInfo) error
	// OnProducerRegistered is called when a client joins a producer group
	// (first heartbeat naming the group, or the first one after it was
	// dropped, for example on a new connection). The transaction service
	// uses it to check waiting half messages of the group at once. It runs
	// on the heartbeat handler's goroutine with no Manager lock held and
	// must not block.
	OnProducerRegistered func(group string)
}

// Manager is the broker's registry of producer and consumer clients and of
// orderly-consumption queue locks. All methods are safe for concurrent use.
//
// Lock order: mu before lockMu; nmu is never held with another lock. No
// lock is held during network I/O or while a Config callback runs.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu        sync.RWMutex // guards clients, byConn, producers, consumers
	clients   map[string]*client
	byConn    map[*remoting.Conn]map[string]struct{} // clientIDs whose current conn it is
	producers map[string]*producerGroup
	consumers map[string]*consumerGroup

	lockMu sync.Mutex                         // guards locks
	locks  map[string]map[queueKey]*queueLock // by consumer group

	nmu      sync.Mutex // guards pending, inflight
	pending  map[string]struct{}
	inflight map[*remoting.Conn]struct{}
	wake     chan struct{} // capacity 1: pending is not empty

	notified atomic.Uint64 // NOTIFY_CONSUMER_IDS_CHANGED frames queued

	lifeMu  sync.Mutex // guards started, closed
	started bool
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup // the loop and notification senders
}

// client is one client instance, identified by its clientID.
type client struct {
	id        string
	conn      *remoting.Conn // the newest connection it sent a heartbeat on
	addr      string
	language  string
	version   int32
	lastSeen  time.Time
	producers map[string]struct{}
	consumers map[string]struct{}
}

type producerGroup struct {
	ids  []string // sorted clientIDs; replaced, never modified in place
	next atomic.Uint64
}

type consumerGroup struct {
	consumeType      string
	messageModel     string
	consumeFromWhere string
	members          map[string]map[string]*Subscription // clientID → topic → subscription
	// subs is the group's subscription per topic: for each topic the one
	// with the highest SubVersion among the members. Replaced as a whole
	// (never modified in place), so it may be handed out without copying.
	subs map[string]*Subscription
}

// ConsumerGroupInfo describes a consumer group as its members' heartbeats
// declare it.
type ConsumerGroupInfo struct {
	Group            string
	ConsumeType      string // CONSUME_PASSIVELY (push) or CONSUME_ACTIVELY (pull)
	MessageModel     string // CLUSTERING or BROADCASTING
	ConsumeFromWhere string // CONSUME_FROM_LAST_OFFSET, _FIRST_OFFSET, _TIMESTAMP
	// Subscriptions by topic: for each topic, the subscription with the
	// highest SubVersion among the live members. The map is the caller's;
	// the Subscriptions are shared and must not be modified.
	Subscriptions map[string]*Subscription
}

// ClientInfo describes one registered client, for admin commands.
type ClientInfo struct {
	ClientID      string
	Addr          string // remote address of its current connection
	Language      string // from the heartbeat request header: "GO", "JAVA", ...
	Version       int32  // RocketMQ version ordinal from the heartbeat header
	LastHeartbeat time.Time
}

// Stats counts what the Manager holds.
type Stats struct {
	Clients           int
	Connections       int
	ProducerGroups    int
	ConsumerGroups    int
	QueueLocks        int    // held leases, expired ones included until the next scan
	NotificationsSent uint64 // NOTIFY_CONSUMER_IDS_CHANGED frames queued since start
}

// NewManager returns a Manager with cfg's zero fields set to the defaults.
func NewManager(cfg Config) *Manager {
	if cfg.ChannelExpiredTimeout <= 0 {
		cfg.ChannelExpiredTimeout = DefaultChannelExpiredTimeout
	}
	if cfg.LockExpiry <= 0 {
		cfg.LockExpiry = DefaultLockExpiry
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{
		cfg:       cfg,
		log:       cfg.Logger.With(slog.String("component", "clients")),
		clients:   make(map[string]*client),
		byConn:    make(map[*remoting.Conn]map[string]struct{}),
		producers: make(map[string]*producerGroup),
		consumers: make(map[string]*consumerGroup),
		locks:     make(map[string]map[queueKey]*queueLock),
		pending:   make(map[string]struct{}),
		inflight:  make(map[*remoting.Conn]struct{}),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// Register installs the handlers for HEART_BEAT, UNREGISTER_CLIENT,
// GET_CONSUMER_LIST_BY_GROUP, LOCK_BATCH_MQ and UNLOCK_BATCH_MQ on srv, and
// a connection-close hook that drops the clients of a closed connection.
func (m *Manager) Register(srv *remoting.Server) {
	srv.Handle(remoting.ReqHeartBeat, m.handleHeartbeat)
	srv.Handle(remoting.ReqUnregisterClient, m.handleUnregister)
	srv.Handle(remoting.ReqGetConsumerListByGroup, m.handleConsumerList)
	srv.Handle(remoting.ReqLockBatchMQ, m.handleLockBatch)
	srv.Handle(remoting.ReqUnlockBatchMQ, m.handleUnlockBatch)
	srv.OnConnClose(m.connClosed)
}

// Start launches the background goroutine that expires clients and locks
// every ScanInterval and sends NOTIFY_CONSUMER_IDS_CHANGED. Until Start,
// notifications are queued (one per group). Start after Close, or a second
// Start, does nothing.
func (m *Manager) Start() {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run()
	}()
}

// Close stops the background goroutine and waits for it and for the
// notification senders. A sender returns once its connection has taken the
// frame or has closed, so shut the remoting server down first (as the
// broker's shutdown order does) to bound the wait. Registrations stay
// readable. Close is idempotent.
func (m *Manager) Close() {
	m.lifeMu.Lock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	m.lifeMu.Unlock()
	m.wg.Wait()
}

// goTracked runs fn on a goroutine Close waits for, unless Close has begun.
func (m *Manager) goTracked(fn func()) bool {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
	return true
}

func (m *Manager) run() {
	tick := time.NewTicker(m.cfg.ScanInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-tick.C:
			m.scan()
		case <-m.wake:
			t := time.NewTimer(notifyDelay)
			select {
			case <-m.done:
				t.Stop()
				return
			case <-t.C:
			}
			m.flushNotifications()
		}
	}
}

// scan expires clients and locks.
func (m *Manager) scan() {
	m.expireClients()
	m.expireLocks()
}

// live reports whether c counts as online at now: heard from within the
// expiry timeout on a connection that is still open. Caller holds mu.
func (m *Manager) live(c *client, now time.Time) bool {
	if now.Sub(c.lastSeen) > m.cfg.ChannelExpiredTimeout {
		return false
	}
	select {
	case <-c.conn.Closed():
		return false
	default:
		return true
	}
}

// ConsumerIDs returns the sorted clientIDs of the live members of a
// consumer group, or nil.
func (m *Manager) ConsumerIDs(group string) []string {
	now := m.cfg.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		if c := m.clients[id]; c != nil && m.live(c, now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ConsumerGroup returns a consumer group's settings and subscriptions.
func (m *Manager) ConsumerGroup(group string) (ConsumerGroupInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return ConsumerGroupInfo{}, false
	}
	return g.info(group), true
}

func (g *consumerGroup) info(name string) ConsumerGroupInfo {
	return ConsumerGroupInfo{
		Group:            name,
		ConsumeType:      g.consumeType,
		MessageModel:     g.messageModel,
		ConsumeFromWhere: g.consumeFromWhere,
		Subscriptions:    maps.Clone(g.subs),
	}
}

// Subscription returns a consumer group's subscription to topic. The
// result is shared and must not be modified.
func (m *Manager) Subscription(group, topic string) (*Subscription, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil, false
	}
	s, ok := g.subs[topic]
	return s, ok
}

// PickProducer returns a live connection of a producer group, rotating over
// the group's clients (sorted by clientID) on each call and skipping closed
// or expired ones; nil when none is online. It is what the transaction
// check-back sends CHECK_TRANSACTION_STATE on.
func (m *Manager) PickProducer(group string) *remoting.Conn {
	now := m.cfg.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.producers[group]
	if g == nil || len(g.ids) == 0 {
		return nil
	}
	n := uint64(len(g.ids))
	start := g.next.Add(1) - 1
	for i := range n {
		c := m.clients[g.ids[(start+i)%n]]
		if c != nil && m.live(c, now) {
			return c.conn
		}
	}
	return nil
}

// ProducerGroups returns the sorted names of producer groups with at least
// one registered client.
func (m *Manager) ProducerGroups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.producers))
}

// ConsumerGroups returns the sorted names of consumer groups with at least
// one registered client.
func (m *Manager) ConsumerGroups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.consumers))
}

// ProducerClients describes the registered clients of a producer group,
// sorted by clientID.
func (m *Manager) ProducerClients(group string) []ClientInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.producers[group]
	if g == nil {
		return nil
	}
	return m.describeLocked(g.ids)
}

// ConsumerClients describes the registered clients of a consumer group,
// sorted by clientID.
func (m *Manager) ConsumerClients(group string) []ClientInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.consumers[group]
	if g == nil {
		return nil
	}
	return m.describeLocked(slices.Sorted(maps.Keys(g.members)))
}

// describeLocked describes the given clients. Caller holds mu.
func (m *Manager) describeLocked(ids []string) []ClientInfo {
	out := make([]ClientInfo, 0, len(ids))
	for _, id := range ids {
		if c := m.clients[id]; c != nil {
			out = append(out, ClientInfo{ClientID: c.id, Addr: c.addr, Language: c.language,
				Version: c.version, LastHeartbeat: c.lastSeen})
		}
	}
	return out
}

// Stats counts clients, connections, groups and locks.
func (m *Manager) Stats() Stats {
	m.mu.RLock()
	s := Stats{Clients: len(m.clients), Connections: len(m.byConn),
		ProducerGroups: len(m.producers), ConsumerGroups: len(m.consumers)}
	m.mu.RUnlock()
	m.lockMu.Lock()
	for _, g := range m.locks {
		s.QueueLocks += len(g)
	}
	m.lockMu.Unlock()
	s.NotificationsSent = m.notified.Load()
	return s
}
