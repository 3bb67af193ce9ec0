// Package schedule implements RocketMQ delay-level and timer messages for
// txmq: the put-hook that diverts them (Divert), the in-memory schedule,
// delivery to the real topic when due, and recovery.
//
// # Records
//
// A delay-level message (DELAY = level > 0, clamped to the highest
// configured level) is stored in SCHEDULE_TOPIC_XXXX, queue level − 1, with
// REAL_TOPIC/REAL_QID, as Apache RocketMQ stores it; it is due at its store
// time + the level's delay. A timer message (TIMER_DELAY_SEC >
// TIMER_DELAY_MS > TIMER_DELIVER_MS; DELAY wins over all) is stored in
// rmq_sys_wheel_timer (Apache RocketMQ 5's timer topic name), queue 0, with
// REAL_TOPIC/REAL_QID and TIMER_OUT_MS = its due time (ms). When due, a copy
// is written to REAL_TOPIC/REAL_QID: same body, flag, born time and host,
// reconsume times and properties, without DELAY and TIMER_*, with
// TXMQ_SCHEDULED_OFFSET = the scheduled record's commit-log offset. Both
// stay in the commit log until retention removes them.
//
// # Schedule
//
// The service follows the commit log through [Service.OnRecord] (the
// store's record hook; ordinary records cost a topic-length comparison).
// Each scheduled record becomes a 16-byte entry (commit-log offset, due
// ms) in a wheel bucketed by due second: a map from second to a slice of
// entries plus a min-heap of those seconds. Adding is O(1); the deliverer
// sleeps until the earliest due time (or a kick for an earlier one), takes
// what is due in (due, offset) order, reads each record, and writes the
// copies with one store append per batch (256). Nothing walks the whole
// schedule. Memory: 16 bytes per entry plus append slack (measured 19–29
// bytes per scheduled message, up to 44 for 1,000,000 entries spread
// thinly over 3 days) plus about 120 bytes per non-empty second (at most
// timerMaxDelaySec of them, 259,200 by default).
//
// # Recovery and "never twice"
//
// A snapshot (config/schedule.snapshot: the entries and two commit-log
// offsets) is written every 30 s when anything changed, after a store
// Flush, and on Close. Start loads it and replays the log from it: a
// scheduled record after the snapshot's stateAt becomes an entry, and a
// record carrying TXMQ_SCHEDULED_OFFSET removes that entry (it was
// delivered). The batch being delivered when a snapshot is taken stays in
// it, and the snapshot's replayFrom is set before that batch's copies, so
// a copy written before a crash is always found by the replay: a
// scheduled message is never delivered twice, and never before its due
// time (which is derived from the record). What fell due while the broker
// was down is delivered as soon as Start returns. Without a snapshot the
// whole log is replayed.
//
// # Wiring (broker)
//
//   - store.Config.OnRecord calls svc.OnRecord (it buffers scheduled
//     records seen before Start's replay);
//   - the send path's put hook calls [Service.Divert] (errors wrap
//     [ErrIllegal]: MESSAGE_ILLEGAL);
//   - Start after the store is open and before serving; Close before the
//     store is closed.
//
// # Locking
//
// Service.mu guards the wheel, the in-flight batch and the replay state;
// it is held for map, heap and slice operations only, never across a
// store call. A snapshot encodes the entries under mu (about 10 ns per
// entry: 0.1 s for 10,000,000, during which scheduled records wait).
package schedule
