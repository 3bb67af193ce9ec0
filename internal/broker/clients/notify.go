package clients

import (
	"log/slog"

	"github.com/txmq/txmq/internal/remoting"
)

// notifyGroups queues NOTIFY_CONSUMER_IDS_CHANGED for the members of the
// given consumer groups. The background goroutine sends them notifyDelay
// later, so a burst of changes to a group becomes one notification per
// member. Caller holds no lock.
func (m *Manager) notifyGroups(groups []string) {
	if len(groups) == 0 {
		return
	}
	m.nmu.Lock()
	for _, g := range groups {
		m.pending[g] = struct{}{}
	}
	m.nmu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// flushNotifications sends the queued notifications: for every pending
// group, one oneway NOTIFY_CONSUMER_IDS_CHANGED (ext consumerGroup) to each
// live member's connection. Each connection is written by its own tracked
// goroutine, because Conn.InvokeOneway blocks while the connection's
// outbound queue is full; a connection that still has a notification
// blocked is skipped, as the blocked one makes the client rebalance
// (G2 and Java rebalance every group on any notification).
func (m *Manager) flushNotifications() {
	m.nmu.Lock()
	pending := m.pending
	m.pending = make(map[string]struct{})
	m.nmu.Unlock()
	if len(pending) == 0 {
		return
	}
	now := m.cfg.Now()
	targets := make(map[*remoting.Conn][]string)
	m.mu.RLock()
	for group := range pending {
		g := m.consumers[group]
		if g == nil {
			continue
		}
		for id := range g.members {
			if c := m.clients[id]; c != nil && m.live(c, now) {
				targets[c.conn] = append(targets[c.conn], group)
			}
		}
	}
	m.mu.RUnlock()

	for conn, groups := range targets {
		m.nmu.Lock()
		if _, busy := m.inflight[conn]; busy {
			m.nmu.Unlock()
			continue
		}
		m.inflight[conn] = struct{}{}
		m.nmu.Unlock()
		if !m.goTracked(func() { m.sendNotify(conn, groups) }) {
			m.nmu.Lock()
			delete(m.inflight, conn)
			m.nmu.Unlock()
			return
		}
	}
}

func (m *Manager) sendNotify(conn *remoting.Conn, groups []string) {
	defer func() {
		m.nmu.Lock()
		delete(m.inflight, conn)
		m.nmu.Unlock()
	}()
	for _, g := range groups {
		req := remoting.NewRequest(remoting.ReqNotifyConsumerIDsChanged, map[string]string{"consumerGroup": g})
		if err := conn.InvokeOneway(req); err != nil {
			m.log.Debug("cannot notify consumer", slog.String("group", g),
				slog.String("conn", conn.String()), slog.Any("err", err))
			return
		}
		m.notified.Add(1)
	}
}
