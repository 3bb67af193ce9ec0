// Command dtmbench measures DTM's two-phase messages the way `txmq bench
// tx` measures txmq's transactions: --inflight goroutines each run one
// transaction at a time (Prepare to DTM, the local step, Submit to DTM;
// what Msg.DoAndSubmit does without a barrier table), and DTM delivers the
// message by calling a branch URL on a local HTTP server here, which
// counts deliveries and measures commit(Submit)-to-delivery latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dtm-labs/dtm/client/dtmcli"

	"github.com/txmq/txmq/internal/bench"
)

func main() {
	dtm := flag.String("dtm", "http://127.0.0.1:36789/api/dtmsvr", "DTM server API URL")
	size := flag.Int("size", 1024, "payload size in bytes")
	inflight := flag.Int("inflight", 64, "transactions in flight")
	dur := flag.Duration("duration", 10*time.Second, "run time")
	localDelay := flag.Duration("local-delay", 0, "duration of the local step")
	drain := flag.Duration("drain-timeout", 20*time.Second, "wait at most this long for deliveries after the load")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	if err := run(*dtm, *size, *inflight, *dur, *localDelay, *drain, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "dtmbench:", err)
		os.Exit(1)
	}
}

type counters struct {
	sent, acked, errs, delivered, dups, queries atomic.Int64
}

func run(dtm string, size, inflight int, dur, localDelay, drain time.Duration, asJSON bool) error {
	// DTM's client keeps resty's default of GOMAXPROCS+1 idle connections
	// per host; with --inflight callers that churns connections. Give it
	// enough idle connections so the run measures DTM, not TCP set-up.
	dtmcli.GetRestyClient().SetTransport(&http.Transport{
		MaxIdleConns: 4 * inflight, MaxIdleConnsPerHost: 2 * inflight, IdleConnTimeout: time.Minute,
	})

	var c counters
	var commitNs sync.Map // gid → int64 (Unix ns just before Submit)
	var e2e, lat bench.Recorder
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	ok := []byte(`{"dtm_result":"SUCCESS"}`)
	mux.HandleFunc("/deliver", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		gid := r.URL.Query().Get("gid")
		if v, found := commitNs.LoadAndDelete(gid); found {
			c.delivered.Add(1)
			e2e.Record(time.Duration(now - v.(int64)))
		} else {
			c.dups.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(ok)
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		c.queries.Add(1) // QueryPrepared: the local step committed
		w.Header().Set("Content-Type", "application/json")
		w.Write(ok)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	payload := map[string]string{"data": strings.Repeat("a", max(size-11, 0))} // {"data":"…"} is size bytes

	prefix := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var next atomic.Int64
	var errMu sync.Mutex
	kinds := map[string]int64{}
	cpu0 := bench.StartCPU()
	start := time.Now()
	lctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				gid := prefix + strconv.FormatInt(next.Add(1), 10)
				c.sent.Add(1)
				t0 := time.Now()
				msg := dtmcli.NewMsg(dtm, gid).Add(base+"/deliver", payload)
				err := msg.Prepare(base + "/query")
				if err == nil {
					if localDelay > 0 {
						time.Sleep(localDelay)
					}
					commitNs.Store(gid, time.Now().UnixNano())
					if err = msg.Submit(); err != nil {
						commitNs.Delete(gid)
					}
				}
				if err != nil {
					c.errs.Add(1)
					s := err.Error()
					if len(s) > 80 {
						s = s[:80]
					}
					errMu.Lock()
					kinds[s]++
					errMu.Unlock()
					continue
				}
				c.acked.Add(1)
				lat.Record(time.Since(t0))
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	go func() {
		var last int64
		for range tick.C {
			a := c.acked.Load()
			fmt.Fprintf(os.Stderr, "%6.1f %10d tx/s  delivered %d\n", time.Since(start).Seconds(), a-last, c.delivered.Load())
			last = a
		}
	}()
	wg.Wait()
	load := time.Since(start)
	deadline := time.Now().Add(drain)
	for c.delivered.Load() < c.acked.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	tick.Stop()
	cpu, _ := cpu0.Since()
	// Say what DTM reports for a few transactions it has not delivered.
	left := 0
	commitNs.Range(func(any, any) bool { left++; return true })
	fmt.Fprintf(os.Stderr, "%d submitted transactions not delivered\n", left)
	shown := 0
	commitNs.Range(func(k, _ any) bool {
		resp, err := dtmcli.GetRestyClient().R().SetQueryParam("gid", k.(string)).Get(dtm + "/query")
		if err != nil {
			fmt.Fprintf(os.Stderr, "undelivered %s: query: %v\n", k, err)
		} else {
			body := resp.String()
			if len(body) > 400 {
				body = body[:400]
			}
			fmt.Fprintf(os.Stderr, "undelivered %s: %s\n", k, body)
		}
		shown++
		return shown < 3
	})
	var lh, eh bench.Histogram
	lat.Drain(&lh)
	e2e.Drain(&eh)
	el := bench.LatencyOf(&eh)
	acked := c.acked.Load()
	res := bench.Result{
		Mode: "dtm-msg", Topic: "branch " + base + "/deliver", Size: size, Inflight: inflight, Batch: 1, Conns: 0,
		Header: "http+json", DurationSec: load.Seconds(), Sent: c.sent.Load(), Acked: acked, Errors: c.errs.Load(),
		MsgsPerSec: float64(acked) / load.Seconds(), Latency: bench.LatencyOf(&lh), E2E: &el,
		Received: c.delivered.Load(), RecvPerSec: float64(c.delivered.Load()) / load.Seconds(), CPU: cpu,
		Tx: &bench.TxResult{
			TxPerSec: float64(acked) / load.Seconds(), CommitsPerSec: float64(acked) / load.Seconds(),
			HalfAcked: acked, Committed: acked, Delivered: c.delivered.Load(),
			Missing: max(acked-c.delivered.Load(), 0), Duplicates: c.dups.Load(), UnexpectedChecks: c.queries.Load(),
		},
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
	fmt.Printf("%d transactions (errors %d) in %.2f s: %.0f tx/s; tx latency ms p50 %.3f p99 %.3f; delivered %d, e2e ms p50 %.3f p99 %.3f; client CPU %.0f%%\n",
		acked, res.Errors, res.DurationSec, res.MsgsPerSec, res.Latency.P50, res.Latency.P99, res.Received, el.P50, el.P99, res.CPU.Percent)
	return nil
}
