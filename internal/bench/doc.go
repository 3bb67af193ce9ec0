// Package bench is txmq's load generator, behind `txmq bench producer`,
// `txmq bench consumer` and `txmq bench tx` (in the spirit of Apache
// RocketMQ's benchmark tools).
//
// It drives a broker over txmq's own remoting client (internal/remoting):
// no official client and no JSON body per message, so the generator stays
// cheap next to the broker it measures. The load is a closed loop with a
// bounded window (Config.Inflight outstanding requests): either Inflight
// goroutines each with one synchronous request at a time, or one submitter
// per connection with asynchronous invocations and a semaphore of Inflight
// slots. Every slot owns its request, header map and body buffer, which are
// reused after the response arrived, so a send allocates only the few
// strings of its header. Requests carry no per-call context (that would
// cost an allocation and a lock on the parent context per call); a
// watchdog closes a connection whose oldest request is older than
// Config.Timeout instead, which fails its pending calls.
//
// Latencies go into a lock-free log-linear histogram (Recorder, 0.4%
// relative precision, 1 ns to hours) that the reporter drains once per
// interval. A message body starts with a 20-byte stamp (magic, sequence,
// send time in nanoseconds) when it is large enough, so a consumer in the
// same run measures end-to-end latency with microsecond precision; other
// messages fall back to their born timestamp (milliseconds).
//
// Transactions (ModeTx) send a half message (TRAN_MSG=true, PGROUP), run
// an empty or fixed-delay local step, and end with END_TRANSACTION commit
// or rollback by the configured mix; the rest is left unknown and
// answered when the broker pushes CHECK_TRANSACTION_STATE (code 39): the
// generator registers as a producer of its group (HEART_BEAT with
// producerDataSet) on every connection for that. A consumer in the same
// run pulls the topic and checks that every committed message, and no
// rolled-back one, is delivered, measuring commit-to-delivery latency.
//
// The CPU the generator itself used (getrusage) is part of every report.
package bench
