package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var (
		cfg     bench.Config
		asJSON  bool
		cpuProf string
		sync    bool
		async   bool
		noteCPU = "\nThe CPU the load generator itself used is printed per interval and in the summary.\n" +
			"It runs with GOGC=off GOMEMLIMIT=128MiB (it collects only at 128 MiB, so that its\n" +
			"own garbage collections are not timed as broker latency) unless GOGC or GOMEMLIMIT\n" +
			"is set."
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generator: producer, consumer and transactional producer",
		Long: `Load generator in the spirit of Apache RocketMQ's benchmark tools. It finds the
brokers of --topic through the name server (creating the topic on every master
with --queues queues when it does not exist) and drives them over txmq's own
remoting client with a bounded window of --inflight outstanding requests.

Every interval it prints messages (or transactions) per second, MB/s, latency
percentiles (p50/p99/p99.9/max) and errors, and at the end a summary (--json:
the summary as JSON on stdout, the interval lines on stderr).` + noteCPU,
	}
	def := os.Getenv("NAMESRV_ADDR")
	if def == "" {
		def = "127.0.0.1:9876"
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&cfg.Namesrv, "namesrv", "n", def, "name server address (host:port)")
	pf.StringVarP(&cfg.Topic, "topic", "t", "BenchmarkTest", "topic")
	pf.IntVar(&cfg.Queues, "queues", 4, "queues per master when the topic has to be created")
	pf.IntVarP(&cfg.Size, "size", "s", 1024, "message body size in bytes")
	pf.IntVarP(&cfg.Inflight, "inflight", "w", 64, "requests (tx: transactions) outstanding at once")
	pf.DurationVarP(&cfg.Duration, "duration", "d", 0, "run time (default 10s unless --count is set)")
	pf.Int64VarP(&cfg.Count, "count", "c", 0, "stop after this many messages (tx: transactions)")
	pf.DurationVar(&cfg.Warmup, "warmup", 0, "run the load this long before --duration starts; its latencies are dropped and rates count from its end")
	pf.IntVar(&cfg.Rate, "rate", 0, "cap on messages (tx: transactions) per second, paced in 1 ms ticks; latency then counts from each message's tick (or from its sender's wake-up when that is later and the window was not full)")
	pf.IntVar(&cfg.Conns, "conns", 1, "connections per broker")
	pf.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "a request older than this fails (its connection is closed and redialled)")
	pf.StringVarP(&cfg.Group, "group", "g", "", "producer or consumer group (default per mode)")
	pf.BoolVar(&cfg.Binary, "binary-header", false, "send RocketMQ binary headers instead of JSON (the official clients send JSON)")
	pf.DurationVar(&cfg.Interval, "interval", time.Second, "report interval")
	pf.DurationVar(&cfg.DrainTimeout, "drain-timeout", 0, "after the load, wait at most this long for deliveries and check-backs (default 10s, more with unknown transactions)")
	pf.BoolVar(&asJSON, "json", false, "print the summary as JSON on stdout (interval lines go to stderr)")
	pf.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the load generator itself to this file")

	run := func(mode bench.Mode) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, _ []string) error {
			cfg.Mode = mode
			if sync && async {
				return fmt.Errorf("%w: --sync and --async exclude each other", errUsage)
			}
			cfg.Async = async
			cfg.Out = c.OutOrStdout()
			if asJSON {
				cfg.Out = c.ErrOrStderr()
			}
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			cfg.GC = bench.TuneGC()
			res, err := bench.Run(c.Context(), cfg)
			if err != nil {
				return err
			}
			if c.Context().Err() != nil {
				res.Interrupted = true
			}
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			}
			switch {
			case res.Tx != nil && (res.Tx.Missing > 0 || res.Tx.RolledBackDelivered > 0):
				return fmt.Errorf("transactions: %d committed messages not delivered, %d rolled-back messages delivered",
					res.Tx.Missing, res.Tx.RolledBackDelivered)
			case res.Acked == 0 && res.Received == 0:
				return fmt.Errorf("nothing was sent or received (errors: %d)", res.Errors)
			}
			return nil
		}
	}
	producer := &cobra.Command{
		Use:   "producer",
		Short: "Send messages as fast as the window (or --rate) allows",
		Long: `Send messages with SEND_MESSAGE_V2 (or SEND_BATCH_MESSAGE with --batch) and report
acknowledged messages per second and send latency. --sync (default) runs --inflight
goroutines with one request each; --async keeps --inflight asynchronous requests
open per run. --e2e also consumes the topic in the same run and reports
send-to-delivery latency.`,
		Args: cobra.NoArgs,
		RunE: run(bench.ModeProducer),
	}
	producer.Flags().BoolVar(&sync, "sync", false, "synchronous sends, one per goroutine (the default)")
	producer.Flags().BoolVar(&async, "async", false, "asynchronous sends with a window of --inflight")
	producer.Flags().IntVarP(&cfg.Batch, "batch", "b", 1, "messages per request (SEND_BATCH_MESSAGE when > 1)")
	producer.Flags().BoolVar(&cfg.E2E, "e2e", false, "consume the topic in the same run and report send-to-delivery latency")

	consumer := &cobra.Command{
		Use:   "consumer",
		Short: "Pull every queue of the topic and report delivery throughput",
		Long: `Pull every readable queue of the topic with long polling (one puller per queue,
32 messages per pull) and report messages per second and send-to-delivery latency
(from the stamp txmq bench producer puts in each body, else the born timestamp).`,
		Args: cobra.NoArgs,
		RunE: run(bench.ModeConsumer),
	}
	consumer.Flags().StringVar(&cfg.From, "from", "latest", "start at each queue's latest or earliest offset")

	tx := &cobra.Command{
		Use:   "tx",
		Short: "Run full transactions: half message, local step, commit/rollback, check-back",
		Long: `Run transactions on --inflight goroutines: send a half message (TRAN_MSG=true,
PGROUP), run the local step (--local-delay, empty by default), then END_TRANSACTION
commit or rollback by --commit-ratio / --rollback-ratio, sent oneway as the official
clients send it (--end-sync waits for its answer). The rest is left unknown:
the tool registers as a producer of its group (HEART_BEAT) and answers the broker's
CHECK_TRANSACTION_STATE with --check-answer. A consumer in the same run pulls the
topic, checks that every committed message (and no rolled-back one) is delivered
and reports commit-to-delivery latency. The command fails if a committed message
is missing or a rolled-back one was delivered.`,
		Args: cobra.NoArgs,
		RunE: run(bench.ModeTx),
	}
	tx.Flags().Float64Var(&cfg.CommitRatio, "commit-ratio", 0, "share of transactions committed (default 1 when both ratios are 0)")
	tx.Flags().Float64Var(&cfg.RollbackRatio, "rollback-ratio", 0, "share of transactions rolled back; the rest is left unknown")
	tx.Flags().DurationVar(&cfg.LocalDelay, "local-delay", 0, "duration of the local transaction step")
	tx.Flags().BoolVar(&cfg.EndSync, "end-sync", false, "wait for END_TRANSACTION's answer (the official clients send it oneway)")
	tx.Flags().StringVar(&cfg.CheckAnswer, "check-answer", "commit", "answer to check-backs: commit or rollback")
	tx.Flags().IntVar(&cfg.CheckImmunity, "check-immunity", 0, "set CHECK_IMMUNITY_TIME_IN_SECONDS on half messages (first check sooner than transactionTimeOut)")

	cmd.AddCommand(producer, consumer, tx)
	return cmd
}
