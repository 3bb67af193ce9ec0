package clients

import (
	"log/slog"
	"slices"
	"time"
)

// Queue locks for orderly consumption (Java RebalanceLockManager). They
// live in memory only, as in Java: after a broker restart every lock is
// free and orderly consumers re-lock within their 20 s rebalance period.
// A lock belongs to a clientID, not a connection, so it survives a
// reconnect; it is released by UNLOCK_BATCH_MQ, when its lease (LockExpiry)
// runs out without renewal, and when the client is dropped (connection
// closed, expiry, UNREGISTER_CLIENT, or leaving the group in a heartbeat).

// queueLock is one held lease.
type queueLock struct {
	clientID string
	renewed  time.Time
}

// tryLock grants or renews the locks a client asks for: a queue is granted
// if it is free, already held by clientID (the lease is renewed), or held by
// another client whose lease has expired. It returns the queues clientID now
// holds, in request order.
//
// A request of two or more queues that renews at least one queue the
// client already held is its periodic "lock all" (the clients send every
// queue they still own on that broker, every 20 s); a queue of that broker
// the client holds but no longer lists there has been given up. The
// official Go client never unlocks a queue its rebalance takes away (Java
// clients do), so without this the new owner would wait for the 60 s
// lease: such queues are released at once, and the group's members are
// notified (NOTIFY_CONSUMER_IDS_CHANGED) so that the new owner rebalances
// and locks them now rather than at its next 20 s rebalance.
func (m *Manager) tryLock(group, clientID string, queues []queueKey) []queueKey {
	held, released := m.tryLockLocked(group, clientID, queues)
	if released {
		m.notifyGroups([]string{group})
	}
	return held
}

func (m *Manager) tryLockLocked(group, clientID string, queues []queueKey) (held []queueKey, released bool) {
	now := m.cfg.Now()
	held = make([]queueKey, 0, len(queues))
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	g := m.locks[group]
	if g == nil {
		if len(queues) == 0 {
			return held, false
		}
		g = make(map[queueKey]*queueLock, len(queues))
		m.locks[group] = g
	}
	renews := false
	for _, q := range queues {
		if l := g[q]; l != nil && l.clientID == clientID && !m.lockExpired(l, now) {
			renews = true
			break
		}
	}
	if renews && len(queues) >= 2 {
		released = m.releaseOmittedLocked(group, g, clientID, queues)
	}
	for _, q := range queues {
		l := g[q]
		switch {
		case l == nil:
			g[q] = &queueLock{clientID: clientID, renewed: now}
		case l.clientID == clientID:
			l.renewed = now
		case m.lockExpired(l, now):
			m.log.Info("queue lock taken over after its lease expired", slog.String("group", group),
				slog.String("topic", q.Topic), slog.String("broker", q.BrokerName), slog.Int("queue", int(q.QueueID)),
				slog.String("old_client_id", l.clientID), slog.String("client_id", clientID))
			l.clientID, l.renewed = clientID, now
		default:
			continue
		}
		held = append(held, q)
	}
	return held, released
}

// releaseOmittedLocked releases the queues of the request's brokers that
// clientID holds in group but did not list. lockMu held.
func (m *Manager) releaseOmittedLocked(group string, g map[queueKey]*queueLock, clientID string, listed []queueKey) bool {
	released := false
	for q, l := range g {
		if l.clientID != clientID || slices.Contains(listed, q) {
			continue
		}
		if !slices.ContainsFunc(listed, func(k queueKey) bool { return k.BrokerName == q.BrokerName }) {
			continue
		}
		delete(g, q)
		released = true
		m.log.Info("queue lock released: its owner no longer renews it", slog.String("group", group),
			slog.String("topic", q.Topic), slog.String("broker", q.BrokerName), slog.Int("queue", int(q.QueueID)),
			slog.String("client_id", clientID))
	}
	return released
}

// unlock releases the listed queues that clientID holds.
func (m *Manager) unlock(group, clientID string, queues []queueKey) {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	g := m.locks[group]
	for _, q := range queues {
		if l := g[q]; l != nil && l.clientID == clientID {
			delete(g, q)
		}
	}
	if g != nil && len(g) == 0 {
		delete(m.locks, group)
	}
}

// IsLocked reports whether clientID holds an unexpired lock on the queue in
// the consumer group. It does not renew the lease (LOCK_BATCH_MQ does).
func (m *Manager) IsLocked(group, topic, brokerName string, queueID int32, clientID string) bool {
	now := m.cfg.Now()
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	l := m.locks[group][queueKey{Topic: topic, BrokerName: brokerName, QueueID: queueID}]
	return l != nil && l.clientID == clientID && !m.lockExpired(l, now)
}

func (m *Manager) lockExpired(l *queueLock, now time.Time) bool {
	return now.Sub(l.renewed) > m.cfg.LockExpiry
}

// releaseLocks releases every lock clientID holds in a group.
func (m *Manager) releaseLocks(group, clientID string) {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	m.releaseLocksLocked(group, clientID)
}

// releaseClientLocks releases every lock clientID holds in any group.
func (m *Manager) releaseClientLocks(clientID string) {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	for group := range m.locks {
		m.releaseLocksLocked(group, clientID)
	}
}

// releaseLocksLocked: caller holds lockMu.
func (m *Manager) releaseLocksLocked(group, clientID string) {
	g := m.locks[group]
	for q, l := range g {
		if l.clientID == clientID {
			delete(g, q)
		}
	}
	if g != nil && len(g) == 0 {
		delete(m.locks, group)
	}
}

// expireLocks forgets leases that have expired, to bound memory.
func (m *Manager) expireLocks() {
	now := m.cfg.Now()
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	for group, g := range m.locks {
		for q, l := range g {
			if m.lockExpired(l, now) {
				delete(g, q)
			}
		}
		if len(g) == 0 {
			delete(m.locks, group)
		}
	}
}
