package clients

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"

	"github.com/txmq/txmq/internal/remoting"
)

// Response ext fields of HEART_BEAT that Java brokers send. txmq does not
// support Java's heartbeat v2 (subscription-less heartbeats keyed by a
// fingerprint), so it says so; G2 ignores both fields.
const (
	extSupportHeartbeatV2 = "IS_SUPPORT_HEART_BEAT_V2"
	extSubChange          = "IS_SUB_CHANGE"
)

// handleHeartbeat answers HEART_BEAT (34).
//
// Behavior: registers the body's clientID on this connection (the newest
// connection a clientID sends a heartbeat on wins) in every producer and
// consumer group listed; groups the client no longer lists are left. Member
// or subscription changes of a consumer group queue NOTIFY_CONSUMER_IDS_CHANGED
// to its members. Config.OnProducerRegistered runs for groups joined and
// Config.OnConsumerGroup for every consumer group listed, before the answer.
//
// Compat notes: Java keeps a group a client stops listing until that
// (group, channel) is idle for 120 s; txmq drops it at once, since every
// official client lists all its groups in every heartbeat. The response is
// SUCCESS with IS_SUPPORT_HEART_BEAT_V2=false and IS_SUB_CHANGE; its version
// is remoting.DefaultVersion (G2 only needs it to be >= 0).
func (m *Manager) handleHeartbeat(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	hb, bad, err := decodeHeartbeat(req.Body)
	if err != nil {
		m.log.Warn("bad heartbeat", slog.String("conn", c.String()), slog.Any("err", err))
		return nil, remoting.Errorf(remoting.RespSystemError, "%w", err)
	}
	for _, b := range bad {
		m.log.Warn("heartbeat subscription names no tag; it matches nothing",
			slog.String("client_id", hb.clientID), slog.String("subscription", b))
	}
	r, ok := m.register(c, req.Language, req.Version, hb)
	if !ok {
		return nil, nil // connection closed meanwhile; nobody to answer
	}
	m.notifyGroups(r.notify)
	if fn := m.cfg.OnProducerRegistered; fn != nil {
		for _, g := range r.newProducers {
			fn(g)
		}
	}
	if fn := m.cfg.OnConsumerGroup; fn != nil {
		for _, info := range r.groups {
			if err := fn(info.Group, info); err != nil {
				m.log.Warn("consumer group hook failed", slog.String("group", info.Group),
					slog.String("client_id", hb.clientID), slog.Any("err", err))
			}
		}
	}
	resp := req.Reply(remoting.RespSuccess, "")
	resp.SetExtBool(extSupportHeartbeatV2, false)
	resp.SetExtBool(extSubChange, r.subChanged)
	return resp, nil
}

// handleUnregister answers UNREGISTER_CLIENT (35): ext clientID,
// producerGroup, consumerGroup (each optional). The client leaves the named
// groups (and releases its queue locks in the consumer group); the
// consumer group's remaining members are notified. Without clientID, the
// clients of this connection are meant. Always SUCCESS, as in Java. G2
// never sends it; Java clients do on shutdown.
func (m *Manager) handleUnregister(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	pg := req.ExtStringOr("producerGroup", "")
	cg := req.ExtStringOr("consumerGroup", "")
	ids := []string{req.ExtStringOr("clientID", "")}
	if ids[0] == "" {
		ids = m.clientIDsOf(c)
	}
	for _, id := range ids {
		m.unregister(id, pg, cg)
	}
	return req.Reply(remoting.RespSuccess, ""), nil
}

// consumerListJSON is the GET_CONSUMER_LIST_BY_GROUP response body.
type consumerListJSON struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// handleConsumerList answers GET_CONSUMER_LIST_BY_GROUP (38): ext
// consumerGroup; body {"consumerIdList":[...]} with the sorted clientIDs
// of the live members, which include the caller once its heartbeat has
// been processed (protocol rule 9). No member: SYSTEM_ERROR "no consumer
// for this group, <group>" as in Java (G2 ignores the code).
func (m *Manager) handleConsumerList(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	group, err := req.ExtString("consumerGroup")
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "%w", err)
	}
	ids := m.ConsumerIDs(group)
	if len(ids) == 0 {
		return req.Reply(remoting.RespSystemError, "no consumer for this group, "+group), nil
	}
	body, err := json.Marshal(consumerListJSON{ConsumerIDList: ids})
	if err != nil {
		return nil, err
	}
	resp := req.Reply(remoting.RespSuccess, "")
	resp.Body = body
	return resp, nil
}

// lockOKJSON is the LOCK_BATCH_MQ response body.
type lockOKJSON struct {
	LockOKMQSet []queueKey `json:"lockOKMQSet"`
}

// handleLockBatch answers LOCK_BATCH_MQ (41): body
// {"consumerGroup","clientId","mqSet":[{"topic","brokerName","queueId"}]};
// response body {"lockOKMQSet":[...]}, the listed queues the client now
// holds. See tryLock.
func (m *Manager) handleLockBatch(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	group, clientID, queues, err := decodeLockBatch(req.Body)
	if err != nil {
		m.log.Debug("bad LOCK_BATCH_MQ", slog.String("conn", c.String()), slog.Any("err", err))
		return nil, remoting.Errorf(remoting.RespSystemError, "%w", err)
	}
	held := m.tryLock(group, clientID, queues)
	body, err := json.Marshal(lockOKJSON{LockOKMQSet: held})
	if err != nil {
		return nil, err
	}
	if len(held) < len(queues) {
		m.log.Debug("queue locks refused", slog.String("group", group), slog.String("client_id", clientID),
			slog.String("granted", strconv.Itoa(len(held))+"/"+strconv.Itoa(len(queues))))
	}
	resp := req.Reply(remoting.RespSuccess, "")
	resp.Body = body
	return resp, nil
}

// handleUnlockBatch answers UNLOCK_BATCH_MQ (42): same body as LOCK_BATCH_MQ;
// releases the listed queues the client holds. Always SUCCESS for a
// well-formed body (G2 sends it oneway or sync on shutdown).
func (m *Manager) handleUnlockBatch(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	group, clientID, queues, err := decodeLockBatch(req.Body)
	if err != nil {
		m.log.Debug("bad UNLOCK_BATCH_MQ", slog.String("conn", c.String()), slog.Any("err", err))
		return nil, remoting.Errorf(remoting.RespSystemError, "%w", err)
	}
	m.unlock(group, clientID, queues)
	return req.Reply(remoting.RespSuccess, ""), nil
}
