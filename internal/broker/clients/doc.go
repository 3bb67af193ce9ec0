// Package clients is the broker's registry of connected producers and
// consumers: Apache RocketMQ's ProducerManager, ConsumerManager,
// ClientManageProcessor and RebalanceLockManager in one small package.
//
// [Manager.Register] installs the remoting handlers for HEART_BEAT (34),
// UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38), LOCK_BATCH_MQ (41)
// and UNLOCK_BATCH_MQ (42) and a connection-close hook; [Manager.Start] runs
// one background goroutine that expires clients and queue locks and sends
// NOTIFY_CONSUMER_IDS_CHANGED (40). The rest of the broker reads the
// registry: [Manager.ConsumerIDs], [Manager.ConsumerGroup] and
// [Manager.Subscription] for pulls and offsets, [Manager.PickProducer] for
// transaction check-back, [Manager.IsLocked] for orderly consumption, and
// the Describe-style methods for admin commands.
//
// # Model
//
// A client is identified by the clientID of its heartbeats ("ip@pid"), not
// by its socket. Each client has one current connection: the one its
// newest heartbeat came on. A heartbeat lists all of the client's producer
// and consumer groups and replaces what was registered for it. A consumer
// group's subscription to a topic is, among its members, the one with the
// highest subVersion; members are kept apart, so one member leaving or
// differing does not rewrite the others' subscriptions.
//
// A client is dropped, with its queue locks, when its current connection
// closes, when no heartbeat came for Config.ChannelExpiredTimeout (no
// connection is closed for that), or by UNREGISTER_CLIENT for its last
// group. When a consumer group gains or loses a member, or its
// subscriptions change (topics or expressions), every remaining member's
// connection gets a oneway NOTIFY_CONSUMER_IDS_CHANGED (ext consumerGroup),
// sent after the heartbeat is answered and coalesced over a few
// milliseconds.
//
// # Differences from Apache RocketMQ
//
//   - Java keeps a group that a client's heartbeats stop listing until that
//     (group, channel) has been idle for 120 s; here it is left at once.
//   - Java keeps one subscription table per group, overwritten by every
//     member's heartbeat (members with different subscriptions make it flap
//     and lose topics); here each member's subscriptions are kept and the
//     group's view is derived from them.
//   - Java notifies only when the member set or the topic set changes; here
//     an expression change notifies too.
//   - Tag codes are computed from subString with message.TagsHashCode; the
//     client's tagsSet and codeSet are ignored (G2 sends codes as strings,
//     Java as numbers).
//   - Java's getAvailableChannel tries 3 producer channels and may return
//     an inactive one; PickProducer rotates over all live ones or returns
//     nil.
//   - Heartbeat v2 (subscription-less heartbeats) is not offered
//     (IS_SUPPORT_HEART_BEAT_V2=false); a body marked withoutSub keeps the
//     member's known subscriptions.
//   - Queue locks are not replicated to slaves (Java 5 quorum locking).
//
// # Concurrency
//
// Handlers run concurrently, one goroutine per request. Three mutexes guard
// the state: mu (RWMutex) the registry of clients, connections and groups;
// lockMu the queue locks; nmu the queue of pending notifications. Lock
// order: mu before lockMu (a client that is dropped releases its locks
// under mu); nmu is never held with another lock. No lock is held during
// network I/O or while a Config callback runs. Notifications are written
// by one goroutine per target connection, because Conn.InvokeOneway blocks
// while that connection's outbound queue is full.
//
// # Caveats
//
//   - All state is in memory. After a broker restart the registry fills
//     again within one heartbeat period (30 s) and orderly consumers
//     re-lock their queues within one rebalance period (20 s); Java behaves
//     the same.
//   - A client that reconnects is not a member until its first heartbeat on
//     the new connection (the old connection's close drops it); the G2
//     client heartbeats every 30 s.
//   - A TAG expression that names no tag ("||") is kept from a heartbeat
//     and matches nothing, as in Java; ParseSubscription rejects it.
//   - SQL92 subscriptions are stored but never evaluated: MatchCode and
//     MatchTag report false for them, so the pull path must refuse them.
package clients
