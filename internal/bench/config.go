package bench

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Mode selects what a run does.
type Mode string

// Modes.
const (
	ModeProducer Mode = "producer"
	ModeConsumer Mode = "consumer"
	ModeTx       Mode = "tx"
)

// Config describes one run. Zero values mean the defaults noted.
type Config struct {
	Mode    Mode
	Namesrv string // name server host:port; required
	Topic   string // created on every master (Queues queues) when missing
	Queues  int    // queues of a topic the run creates; default 4
	Size    int    // message body bytes; default 1024
	// Inflight is the number of requests outstanding at once (producer,
	// tx); default 64. Sync mode runs this many goroutines; async mode
	// keeps this many InvokeAsync calls open.
	Inflight int
	Duration time.Duration // run length; default 10s unless Count is set
	// Warmup runs the load this long before the measured Duration starts:
	// its latencies are dropped and rates count from its end (connections,
	// goroutine stacks, fresh files and the broker's first pages are then
	// warm). Not counted in Count's messages' rates either.
	Warmup time.Duration
	Count  int64 // stop after this many messages (tx: transactions)
	Async  bool  // producer: asynchronous invocations
	Batch  int   // producer: messages per SEND_BATCH_MESSAGE; 1 = single sends
	// Rate caps messages (tx: transactions) per second; 0 means as fast as
	// the window allows. Latency is then measured from each message's
	// scheduled start, so a stalled broker shows up in the percentiles.
	Rate  int
	E2E   bool // producer: also consume the topic in this run (end-to-end latency)
	Conns int  // connections per broker; default 1
	// Timeout fails the requests of a connection whose oldest request is
	// older than this (the connection is closed); default 5s.
	Timeout time.Duration
	Group   string // producer group (tx) or consumer group; defaults per mode
	From    string // consumer: "latest" (default) or "earliest"
	// Binary sends headers in RocketMQ's binary encoding instead of JSON
	// (what the official clients send).
	Binary bool

	// Transactions.
	CommitRatio   float64       // share committed by END_TRANSACTION; default 1 when both ratios are 0
	RollbackRatio float64       // share rolled back; the rest is left unknown for check-back
	LocalDelay    time.Duration // the local step; 0 = empty
	CheckAnswer   string        // "commit" (default) or "rollback": the answer to check-backs
	// EndSync waits for END_TRANSACTION's answer. By default it is sent
	// oneway, as the official clients send it (Java with the oneway flag,
	// Go v2 with InvokeOneWay): a lost END is then resolved by check-back.
	EndSync bool
	// CheckImmunity sets CHECK_IMMUNITY_TIME_IN_SECONDS on every half
	// message when > 0, so unknown transactions are checked sooner than the
	// broker's transactionTimeOut.
	CheckImmunity int
	// DrainTimeout bounds the wait after the load for deliveries and
	// check-backs; default 10s plus CheckImmunity (or 45s when transactions
	// are left unknown without CheckImmunity).
	DrainTimeout time.Duration

	Interval time.Duration // report interval; default 1s
	Out      io.Writer     // per-interval lines; nil: none
	// GC describes the load generator's garbage-collector setting for the
	// summary (TuneGC's answer); empty: not reported.
	GC string
	// InProcessBroker marks the CPU figure as including a broker running
	// in the same process (tests).
	InProcessBroker bool
}

func (c *Config) setDefaults() error {
	switch c.Mode {
	case ModeProducer, ModeConsumer, ModeTx:
	default:
		return fmt.Errorf("bench: unknown mode %q", c.Mode)
	}
	if c.Namesrv == "" {
		return errors.New("bench: a name server address is required")
	}
	if c.Topic == "" {
		c.Topic = "BenchmarkTest"
	}
	if c.Queues == 0 {
		c.Queues = 4
	}
	if c.Size == 0 {
		c.Size = 1024
	}
	if c.Inflight == 0 {
		c.Inflight = 64
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.Conns == 0 {
		c.Conns = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Duration == 0 && c.Count == 0 {
		c.Duration = 10 * time.Second
	}
	if c.From == "" {
		c.From = "latest"
	}
	if c.Group == "" {
		switch c.Mode {
		case ModeTx:
			c.Group = "txmq_bench_tx_producer"
		case ModeConsumer:
			c.Group = "txmq_bench_consumer"
		default:
			c.Group = "txmq_bench_producer"
		}
	}
	if c.CommitRatio == 0 && c.RollbackRatio == 0 {
		c.CommitRatio = 1
	}
	if c.CheckAnswer == "" {
		c.CheckAnswer = "commit"
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
		if c.Mode == ModeTx && c.CommitRatio+c.RollbackRatio < 1 {
			if c.CheckImmunity > 0 {
				c.DrainTimeout += time.Duration(c.CheckImmunity) * time.Second
			} else {
				c.DrainTimeout = 45 * time.Second
			}
		}
	}
	switch {
	case c.Size < 0 || c.Size > 4<<20:
		return fmt.Errorf("bench: size %d: want 0 to 4 MiB", c.Size)
	case c.Inflight < 1 || c.Inflight > 65536:
		return fmt.Errorf("bench: inflight %d: want 1 to 65536", c.Inflight)
	case c.Batch < 1 || c.Batch > 1024:
		return fmt.Errorf("bench: batch %d: want 1 to 1024", c.Batch)
	case c.Batch > 1 && c.Mode == ModeTx:
		return errors.New("bench: transactional messages cannot be batched")
	case c.Conns < 1 || c.Conns > 256:
		return fmt.Errorf("bench: conns %d: want 1 to 256", c.Conns)
	case c.Queues < 1 || c.Queues > 1024:
		return fmt.Errorf("bench: queues %d: want 1 to 1024", c.Queues)
	case c.Duration < 0 || c.Warmup < 0 || c.Count < 0 || c.Rate < 0 || c.Timeout < 0 || c.LocalDelay < 0 || c.CheckImmunity < 0:
		return errors.New("bench: negative duration, warm-up, count, rate, timeout, local delay or check immunity")
	case c.CommitRatio < 0 || c.RollbackRatio < 0 || c.CommitRatio+c.RollbackRatio > 1+1e-9:
		return fmt.Errorf("bench: commit ratio %g + rollback ratio %g must be within 0..1", c.CommitRatio, c.RollbackRatio)
	case c.CheckAnswer != "commit" && c.CheckAnswer != "rollback":
		return fmt.Errorf("bench: check answer %q: want commit or rollback", c.CheckAnswer)
	case c.From != "latest" && c.From != "earliest":
		return fmt.Errorf("bench: from %q: want latest or earliest", c.From)
	case c.Async && c.Mode == ModeTx:
		return errors.New("bench: tx mode runs one goroutine per in-flight transaction; --async applies to producer only")
	}
	return nil
}
