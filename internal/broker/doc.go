// Package broker is txmq's broker: it serves the RocketMQ remoting
// protocol (protocol.md Part A) for the official clients on top of the
// message store.
//
// A Broker owns the remoting server, the store, the client registry
// (package clients), topic and subscription-group configuration, consumer
// offsets, long-polling pulls and the name-server registration loop. One
// file per group of request codes: send.go (10, 310, 320), sendback.go
// (36), pull.go and
// longpoll.go (11), offset.go (14, 15, 29, 30, 31, 32), query.go (12, 33),
// admin.go (17, 21, 28, 200, 201, 202, 208, 215); topics.go and groups.go
// hold the configuration tables, register.go the name-server loop. The
// client registry (package clients) serves HEART_BEAT (34),
// UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38) and
// LOCK/UNLOCK_BATCH_MQ (41/42) on the same server. The schedule service
// (package schedule) diverts delay and timer messages through the send
// path's put hook and follows the commit log through the store's record
// hook, as the transaction service does.
//
// Topic changes (creation, auto-creation on SEND, %RETRY%<group> on a
// consumer heartbeat, deletion) re-register with every name server before
// the request that made them is answered (bounded by a 3 s timeout), as
// Java's registerBrokerAll does, so the topic is routable at once.
//
// Metadata lives under <storePathRootDir>/config as JSON written atomically:
// topics.json ({"topicConfigTable":…,"dataVersion":…}),
// subscriptionGroup.json ({"subscriptionGroupTable":…,"dataVersion":…}) and
// consumerOffset.json ({"offsetTable":{"topic@group":{"0":12}}}), as Java
// writes them.
//
// # Concurrency
//
// The send and pull paths take no broker-wide lock: the topic table is an
// immutable map behind an atomic pointer (writers copy it under one
// mutex); consumer offsets are one mutex held for a map update, never
// across I/O; parked pulls are kept per queue, each queue with its own
// mutex, and notify (the store's dispatch callback) costs one atomic load
// when nothing is parked. No two broker locks are ever held at once (notify
// releases the queue-map lock before it takes a queue's). Every goroutine the broker starts goes through
// lifecycle.goFunc, and Shutdown waits for all of them.
//
// Buffers: the send handlers mark their request recyclable
// (remoting.Command.MarkRecyclable) once the store append has returned
// (the store has copied the record by then), so its frame buffer and ext
// map are reused; half messages and parked pulls are not marked. A pull
// answer whose body is the store result's own Body releases the result
// from the response's OnWritten, once the connection has written it.
//
// Inline sends (inline.go): SEND_MESSAGE and SEND_MESSAGE_V2 have an
// inline handler that validates a plain send to an existing topic on the
// connection's read loop and hands it to store.AppendAsync; the store's
// completion callback answers it (Conn.FinishNoWait) and recycles the
// request. It declines (to handleSend) whatever may block or needs a
// handler goroutine: batches, %RETRY% topics, topics that would be
// auto-created, oversized bodies. A half message goes to the transaction
// service's PrepareAsync, which takes a half whose transaction id is new
// and declines the rest (repeats, concurrent duplicates, refusals) to
// handleSend. END_TRANSACTION likewise goes to txn's EndAsync (an END by
// offsets of a pending transaction). PULL_MESSAGE has one too: a pull at
// most inlinePullWindow entries behind its queue's end (records still in
// the page cache) is served or parked on the read loop; one further behind
// may read from disk and goes to a handler goroutine. Options.NoInlineSend
// turns all of them off.
//
// # Compat notes
//
// Where txmq knowingly differs from Apache RocketMQ's Java broker:
//
//   - Delay levels above the highest configured level are clamped to it
//     (as Java does); a malformed DELAY or TIMER_* value, or a timer more
//     than timerMaxDelaySec ahead, is MESSAGE_ILLEGAL with the reason.
//     Timer messages are delivered at their exact millisecond (Java rounds
//     down to timerPrecisionMs, so may deliver up to 1 s early). Delayed
//     batch items are refused. See docs/compat.md.
//   - CONSUMER_SEND_MSG_BACK (sendback.go) follows Java; a group missing
//     from the configuration is created when autoCreateSubscriptionGroup
//     is on. Sends to %RETRY%<group> whose reconsumeTimes exceed
//     maxReconsumeTimes go to %DLQ%<group> without delay, as Java does;
//     txmq does not also dead-letter retries of groups holding orderly
//     locks.
//   - An invalid topic name in a send is MESSAGE_ILLEGAL (13); Java answers
//     SYSTEM_ERROR, which the Go client retries on another broker. Sending to
//     any system topic (TBW102, RMQ_SYS_*, SCHEDULE_TOPIC_XXXX, the
//     transaction topics) is NO_PERMISSION; SELF_TEST_TOPIC is allowed.
//   - A send whose header lacks producerGroup, defaultTopic,
//     defaultTopicQueueNums, sysFlag, bornTimestamp or flag is accepted with
//     defaults (Java requires them); topic and queueId are required.
//   - Batch items get a UNIQ_KEY when they have none (Java leaves them
//     without), so their ids are stable; batches are refused for retry and
//     DLQ topics. The batch response has no batchUniqId.
//   - PULL_MESSAGE: maxMsgNums is capped at 32 and a response at about
//     256 KiB; records whose TAGS do not match exactly (hash collisions)
//     are dropped by the broker too. A woken long-poll whose new messages
//     are all filtered out keeps waiting past them instead of answering
//     PULL_RETRY_IMMEDIATELY. Error answers carry the four offset fields
//     (nextBeginOffset = the requested offset). The subscription-group
//     configuration is not checked (no SUBSCRIPTION_GROUP_NOT_EXIST,
//     consumeEnable ignored), and a missing heartbeat subscription means "*"
//     rather than SUBSCRIPTION_NOT_EXIST. SQL92 subscriptions are refused.
//   - QUERY_CONSUMER_OFFSET with nothing committed answers 0 whenever the
//     queue's min offset is 0, without Java's "still in memory" check.
//   - GET_TOPIC_STATS_INFO (202) and GET_CONSUME_STATS (208) bodies are
//     lists (TopicStatsBody, ConsumeStatsBody): Java uses MessageQueue
//     objects as JSON map keys, which is not JSON.
//   - GET_ALL_TOPIC_CONFIG has no topicQueueMappingInfoMap (static topics
//     are not supported). UPDATE_AND_CREATE_TOPIC accepts missing queue
//     counts and perm (defaultTopicQueueNums, 6).
//   - storePathCommitLog can only be <storePathRootDir>/commitlog.
package broker
