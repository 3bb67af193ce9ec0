package clients

import (
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

// heartbeat is a decoded HEART_BEAT body with its subscriptions parsed.
type heartbeat struct {
	clientID   string
	producers  []string
	consumers  []consumerDecl
	withoutSub bool // Java heartbeat v2: subscriptions omitted, keep the known ones
}

// consumerDecl is one consumer group of a heartbeat.
type consumerDecl struct {
	group            string
	consumeType      string
	messageModel     string
	consumeFromWhere string
	subs             map[string]*Subscription // by topic
}

// registration is what a heartbeat changed.
type registration struct {
	notify       []string            // consumer groups to notify
	newProducers []string            // producer groups the client joined
	groups       []ConsumerGroupInfo // the heartbeat's consumer groups, after it
	subChanged   bool                // some group's subscriptions changed
}

// register applies a heartbeat received on conn. It reports false, and
// changes nothing, if conn is already closed: its close hook has run or is
// about to, and a registration now would outlive it until expiry.
func (m *Manager) register(conn *remoting.Conn, language string, version int32, hb *heartbeat) (registration, bool) {
	var r registration
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// The close hook runs after Closed is closed and takes mu, so checking
	// here, under mu, either sees the close or runs before the hook does.
	select {
	case <-conn.Closed():
		return r, false
	default:
	}
	c := m.clients[hb.clientID]
	if c == nil {
		c = &client{id: hb.clientID, producers: map[string]struct{}{}, consumers: map[string]struct{}{}}
		m.clients[hb.clientID] = c
	}
	if c.conn != conn {
		if c.conn != nil {
			m.unbindLocked(c.conn, c.id)
			m.log.Info("client moved to a new connection", slog.String("client_id", c.id),
				slog.String("old", c.addr), slog.String("new", conn.RemoteAddr().String()))
		}
		c.conn = conn
		c.addr = conn.RemoteAddr().String()
		ids := m.byConn[conn]
		if ids == nil {
			ids = make(map[string]struct{}, 1)
			m.byConn[conn] = ids
		}
		ids[c.id] = struct{}{}
	}
	c.language, c.version, c.lastSeen = language, version, now

	// Producer groups: the heartbeat lists all of them.
	producers := make(map[string]struct{}, len(hb.producers))
	for _, g := range hb.producers {
		producers[g] = struct{}{}
	}
	for g := range c.producers {
		if _, ok := producers[g]; !ok {
			m.leaveProducerLocked(g, c.id)
		}
	}
	for g := range producers {
		if _, ok := c.producers[g]; !ok {
			m.joinProducerLocked(g, c.id)
			r.newProducers = append(r.newProducers, g)
		}
	}
	c.producers = producers

	// Consumer groups: likewise.
	consumers := make(map[string]struct{}, len(hb.consumers))
	for _, d := range hb.consumers {
		consumers[d.group] = struct{}{}
	}
	for g := range c.consumers {
		if _, ok := consumers[g]; !ok {
			if m.leaveConsumerLocked(g, c.id) {
				r.notify = append(r.notify, g)
			}
		}
	}
	for _, d := range hb.consumers {
		g := m.consumers[d.group]
		if g == nil {
			g = &consumerGroup{members: make(map[string]map[string]*Subscription)}
			m.consumers[d.group] = g
		}
		g.consumeType, g.messageModel, g.consumeFromWhere = d.consumeType, d.messageModel, d.consumeFromWhere
		old, was := g.members[c.id]
		subs := d.subs
		if hb.withoutSub && was {
			subs = old
		}
		g.members[c.id] = subs
		changed := !was
		if !was || !sameSubscriptions(old, subs, true) {
			if g.recompute() {
				changed = true
				r.subChanged = true
			}
		}
		if changed {
			r.notify = append(r.notify, d.group)
		}
		r.groups = append(r.groups, g.info(d.group))
	}
	c.consumers = consumers
	return r, true
}

// unbindLocked forgets that conn is id's connection. Caller holds mu.
func (m *Manager) unbindLocked(conn *remoting.Conn, id string) {
	if ids := m.byConn[conn]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m.byConn, conn)
		}
	}
}

func (m *Manager) joinProducerLocked(group, id string) {
	g := m.producers[group]
	if g == nil {
		g = &producerGroup{}
		m.producers[group] = g
	}
	ids := slices.Clone(g.ids)
	if i, found := slices.BinarySearch(ids, id); !found {
		ids = slices.Insert(ids, i, id)
	}
	g.ids = ids
}

func (m *Manager) leaveProducerLocked(group, id string) {
	g := m.producers[group]
	if g == nil {
		return
	}
	i, found := slices.BinarySearch(g.ids, id)
	if !found {
		return
	}
	if len(g.ids) == 1 {
		delete(m.producers, group)
		return
	}
	g.ids = slices.Delete(slices.Clone(g.ids), i, i+1)
}

// leaveConsumerLocked removes id from a consumer group and releases its
// queue locks in the group. It reports whether id was a member; the
// remaining members, if any, are to be notified. Caller holds mu.
func (m *Manager) leaveConsumerLocked(group, id string) bool {
	m.releaseLocks(group, id)
	g := m.consumers[group]
	if g == nil {
		return false
	}
	if _, ok := g.members[id]; !ok {
		return false
	}
	delete(g.members, id)
	if len(g.members) == 0 {
		delete(m.consumers, group)
		return true
	}
	g.recompute()
	return true
}

// dropLocked removes a client from every group, releases its locks and
// forgets it. It returns the consumer groups to notify. Caller holds mu.
func (m *Manager) dropLocked(c *client, reason string) []string {
	var notify []string
	for g := range c.producers {
		m.leaveProducerLocked(g, c.id)
	}
	for g := range c.consumers {
		if m.leaveConsumerLocked(g, c.id) {
			if _, ok := m.consumers[g]; ok {
				notify = append(notify, g)
			}
		}
	}
	m.releaseClientLocks(c.id)
	m.unbindLocked(c.conn, c.id)
	delete(m.clients, c.id)
	m.log.Info("client dropped", slog.String("client_id", c.id), slog.String("addr", c.addr),
		slog.String("reason", reason), slog.Int("producer_groups", len(c.producers)),
		slog.Int("consumer_groups", len(c.consumers)))
	return notify
}

// connClosed drops the clients whose current connection is conn. A client
// that has moved to a newer connection is not affected.
func (m *Manager) connClosed(conn *remoting.Conn) {
	var notify []string
	m.mu.Lock()
	for id := range m.byConn[conn] {
		if c := m.clients[id]; c != nil && c.conn == conn {
			notify = append(notify, m.dropLocked(c, "connection closed")...)
		}
	}
	delete(m.byConn, conn)
	m.mu.Unlock()
	m.notifyGroups(notify)
}

// expireClients drops clients not heard from for ChannelExpiredTimeout. It
// closes no connection.
func (m *Manager) expireClients() {
	now := m.cfg.Now()
	var notify []string
	m.mu.Lock()
	for _, c := range m.clients {
		if now.Sub(c.lastSeen) > m.cfg.ChannelExpiredTimeout {
			notify = append(notify, m.dropLocked(c, "no heartbeat for "+now.Sub(c.lastSeen).Truncate(time.Millisecond).String())...)
		}
	}
	m.mu.Unlock()
	m.notifyGroups(notify)
}

// unregister removes a client from a producer group and/or a consumer group
// (UNREGISTER_CLIENT). A client left in no group is forgotten.
func (m *Manager) unregister(id, producerGroup, consumerGroup string) {
	var notify []string
	m.mu.Lock()
	c := m.clients[id]
	if c != nil {
		if _, ok := c.producers[producerGroup]; ok && producerGroup != "" {
			m.leaveProducerLocked(producerGroup, id)
			delete(c.producers, producerGroup)
		}
		if consumerGroup != "" {
			// Release locks even if the group is not registered.
			if m.leaveConsumerLocked(consumerGroup, id) {
				if _, ok := m.consumers[consumerGroup]; ok {
					notify = append(notify, consumerGroup)
				}
			}
			delete(c.consumers, consumerGroup)
		}
		if len(c.producers) == 0 && len(c.consumers) == 0 {
			m.releaseClientLocks(id)
			m.unbindLocked(c.conn, id)
			delete(m.clients, id)
		}
	} else if consumerGroup != "" {
		m.releaseLocks(consumerGroup, id)
	}
	m.mu.Unlock()
	m.notifyGroups(notify)
}

// clientIDsOf returns the clientIDs whose current connection is conn.
func (m *Manager) clientIDsOf(conn *remoting.Conn) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Collect(maps.Keys(m.byConn[conn]))
}

// recompute sets g.subs from the members' subscriptions: per topic, the
// highest SubVersion wins (ties: the smallest clientID). It reports whether
// the topics or any expression changed.
func (g *consumerGroup) recompute() bool {
	subs := make(map[string]*Subscription, len(g.subs))
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		for topic, s := range g.members[id] {
			if cur, ok := subs[topic]; !ok || s.SubVersion > cur.SubVersion {
				subs[topic] = s
			}
		}
	}
	changed := !sameSubscriptions(g.subs, subs, false)
	g.subs = subs
	return changed
}

// sameSubscriptions reports whether a and b have the same topics with the
// same expressions (and, if withVersion, the same versions).
func sameSubscriptions(a, b map[string]*Subscription, withVersion bool) bool {
	if len(a) != len(b) {
		return false
	}
	for topic, sa := range a {
		sb, ok := b[topic]
		if !ok || !sameFilter(sa, sb) || withVersion && sa.SubVersion != sb.SubVersion {
			return false
		}
	}
	return true
}
