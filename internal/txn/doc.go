// Package txn implements RocketMQ transactional messages for txmq: half
// messages, END_TRANSACTION, check-back, discard, recovery and the
// operator API. The design is docs/transactions.md.
//
// All state derives from records in the commit log: the half message
// (RMQ_SYS_TRANS_HALF_TOPIC, queue 0), the committed copy in the real
// queue (PREPAREDTXOFFSET = the half's offset; it alone ends a commit by
// the producer's own END), small op records (RMQ_SYS_TRANS_OP_HALF_TOPIC:
// d done, for rollbacks and for commits from a check or an operator, c
// checks sent, x discarded, r resumed) and discarded copies
// (TRANS_CHECK_MAX_TIME_TOPIC). The service
// follows the log through [Service.OnRecord], which the store calls for
// every record in commit-log order; [Service.Start] replays the log from
// the last snapshot. Live paths only claim entries (an END marks its entry
// "ending" before it appends, so the first final state wins) and append;
// the hook applies what was appended.
//
// The pending index holds about 140 bytes per pending transaction: the
// entry, a map by half offset, a map by hash(UNIQ_KEY), and two heaps (by
// next check time, which drives the scheduler, and by store time, which
// drives the retention discard and the oldest-pending gauge). The
// scheduler sleeps until the earliest due time, so it costs nothing
// between checks, however many transactions are pending.
//
// # Wiring (broker)
//
//   - store.Config.OnRecord = svc.OnRecord (the hook tolerates being called
//     before Start: it buffers transactional records until Start's replay);
//   - send path: a message with TRAN_MSG=true goes to [Service.Prepare];
//     answer msgId = OffsetMessageID(storeHost, half offset), queueOffset =
//     half queue offset, transactionId = UNIQ_KEY; map errors with
//     [ResponseCode];
//   - [Service.Register] installs END_TRANSACTION (37) and the operator
//     codes ([AdminCodes]);
//   - clients.Config.OnProducerRegistered = svc.ProducerRegistered;
//   - Start after the store is open and before serving; Close before the
//     store is closed (it takes the final snapshot after a store Flush).
//
// # Locking
//
// Service.mu guards the index, the heaps, the parked lists, the
// recently-resolved table and the in-flight Prepare table. It is held only
// for map, heap and slice operations, never across a store call, a read
// or a network send. Counters are atomics. No other lock is taken while
// mu is held.
package txn
