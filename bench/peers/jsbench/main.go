// Command jsbench measures NATS JetStream acknowledged publishes the way
// `txmq bench producer --sync` measures txmq: --inflight goroutines, each
// with one publish awaiting its PubAck at a time, over one connection, to
// a file-storage stream with one replica.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/txmq/txmq/internal/bench"
)

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "server URL")
	size := flag.Int("size", 1024, "message size in bytes")
	inflight := flag.Int("inflight", 64, "publishes awaiting their ack at once")
	dur := flag.Duration("duration", 10*time.Second, "measured run time")
	warmup := flag.Duration("warmup", 0, "load before the measured run time (dropped from rates and latencies)")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	async := flag.Bool("async", false, "PublishAsync with a window of -inflight acks outstanding (like txmq bench --async) instead of -inflight goroutines publishing synchronously")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	if err := run(*url, *size, *inflight, *dur, *warmup, *storage, *async, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "jsbench:", err)
		os.Exit(1)
	}
}

func run(url string, size, inflight int, dur, warmup time.Duration, storage string, async, asJSON bool) error {
	nc, err := nats.Connect(url, nats.Name("jsbench"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inflight))
	if err != nil {
		return err
	}
	ctx := context.Background()
	st := jetstream.FileStorage
	if storage == "memory" {
		st = jetstream.MemoryStorage
	}
	_ = js.DeleteStream(ctx, "BENCH")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: st, Replicas: 1,
	}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var rec bench.Recorder
	var sent, acked, errs atomic.Int64
	var errMu sync.Mutex
	kinds := map[string]int64{}
	cpu0 := bench.StartCPU()
	start := time.Now()
	begin := start
	lctx, cancel := context.WithTimeout(ctx, warmup+dur)
	defer cancel()
	// The measured phase starts after the warm-up: latencies recorded so
	// far are dropped, rates and CPU count from there.
	var measMu sync.Mutex
	var base int64
	if warmup > 0 {
		go func() {
			select {
			case <-lctx.Done():
			case <-time.After(warmup):
				measMu.Lock()
				var scratch bench.Histogram
				rec.Drain(&scratch)
				base = acked.Load()
				start, cpu0 = time.Now(), bench.StartCPU()
				measMu.Unlock()
			}
		}()
	}
	fail := func(err error) {
		errs.Add(1)
		errMu.Lock()
		kinds[err.Error()]++
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	if async {
		// One publisher keeps -inflight acks outstanding; one collector
		// takes the futures in publish order (acks come back in order).
		type pending struct {
			f  jetstream.PubAckFuture
			t0 time.Time
		}
		window := make(chan pending, inflight)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(window)
			for lctx.Err() == nil {
				t0 := time.Now()
				f, err := js.PublishAsync("bench.x", body)
				sent.Add(1)
				if err != nil {
					fail(err)
					continue
				}
				window <- pending{f, t0}
			}
		}()
		go func() {
			defer wg.Done()
			for p := range window {
				select {
				case <-p.f.Ok():
					acked.Add(1)
					rec.Record(time.Since(p.t0))
				case err := <-p.f.Err():
					fail(err)
				case <-time.After(5 * time.Second):
					fail(errors.New("no ack within 5 s"))
				}
			}
		}()
	}
	for range inflight {
		if async {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				sent.Add(1)
				t0 := time.Now()
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := js.Publish(pctx, "bench.x", body)
				pcancel()
				if err != nil {
					fail(err)
					continue
				}
				acked.Add(1)
				rec.Record(time.Since(t0))
			}
		}()
	}
	// Interval lines on stderr, like txmq bench.
	tick := time.NewTicker(time.Second)
	go func() {
		var last int64
		for range tick.C {
			a := acked.Load()
			fmt.Fprintf(os.Stderr, "%6.1f %10d msg/s\n", time.Since(begin).Seconds(), a-last)
			last = a
		}
	}()
	wg.Wait()
	tick.Stop()
	measMu.Lock()
	load := time.Since(start)
	cpu, _ := cpu0.Since()
	measured := acked.Load() - base
	measMu.Unlock()
	var h bench.Histogram
	rec.Drain(&h)
	res := bench.Result{
		Mode: "jetstream-publish", Topic: "BENCH (" + storage + ")", Size: size, Inflight: inflight, Batch: 1, Conns: 1, Async: async,
		Header: "nats", DurationSec: load.Seconds(), Sent: sent.Load(), Acked: acked.Load(), Errors: errs.Load(),
		MsgsPerSec: float64(measured) / load.Seconds(), Latency: bench.LatencyOf(&h), CPU: cpu,
	}
	res.MBPerSec = res.MsgsPerSec * float64(size) / 1e6
	if len(kinds) > 0 {
		res.ErrorKinds = kinds
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("acked %d of %d (errors %d) in %.2f s: %.0f msg/s; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f; client CPU %.0f%%\n",
		res.Acked, res.Sent, res.Errors, res.DurationSec, res.MsgsPerSec, res.Latency.P50, res.Latency.P99, res.Latency.P999,
		res.Latency.Max, res.CPU.Percent)
	return nil
}
