// Command cmptable prints the side-by-side table of a bench/compare.sh run
// from the JSON summaries in a results directory, and the ratios txmq/peer.
//
//	cmptable DIR            the table
//	cmptable field FILE KEY one top-level number of a summary (for the script)
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/txmq/txmq/internal/bench"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "field" {
		var m map[string]any
		b, err := os.ReadFile(os.Args[2])
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cmptable:", err)
			os.Exit(1)
		}
		// Numbers in full: a count of a million or more printed as
		// 1.4e+06 would be read by the shell as 1.
		switch v := m[os.Args[3]].(type) {
		case float64:
			fmt.Println(strconv.FormatFloat(v, 'f', -1, 64))
		default:
			fmt.Println(v)
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cmptable DIR | cmptable field FILE KEY")
		os.Exit(2)
	}
	dir := os.Args[1]
	rows := []struct{ file, name, durability string }{
		{"txmq-send-sync", "txmq send (acked)", "SYNC_FLUSH: fsync per group commit before the ack"},
		{"js-send-always", "JetStream publish (acked)", "sync_interval: always (fsync per write before the ack)"},
		{"txmq-send-async", "txmq send (acked)", "ASYNC_FLUSH: fsync every 500 ms"},
		{"js-send-500ms", "JetStream publish (acked)", "sync_interval: 500ms (fsync every 500 ms)"},
		{"txmq-send-async-window", "txmq send, async window", "ASYNC_FLUSH: fsync every 500 ms"},
		{"js-send-500ms-async", "JetStream PublishAsync", "sync_interval: 500ms (fsync every 500 ms)"},
		{"js-send-default", "JetStream publish (acked)", "default sync_interval (fsync every 2 min)"},
		{"txmq-consume", "txmq consume (pull)", "backlog of the ASYNC_FLUSH run (latency = its age)"},
		{"txmq-send-consume-async", "txmq send+consume", "ASYNC_FLUSH, consumed in the same run"},
		{"txmq-tx-sync", "txmq transactions", "SYNC_FLUSH"},
		{"txmq-tx-async", "txmq transactions", "ASYNC_FLUSH"},
		{"dtm-msg", "DTM 2-phase msg", "BoltDB store (fsync per update)"},
		{"txmq-e2e-20k", "txmq send+consume @20k/s", "ASYNC_FLUSH, rate-limited"},
		{"txmq-e2e-20k-sync", "txmq send+consume @20k/s", "SYNC_FLUSH, rate-limited"},
	}
	res := map[string]*bench.Result{}
	srv := map[string]map[string]float64{}
	for _, r := range rows {
		if x := readResult(dir, r.file); x != nil {
			res[r.file] = x
		}
		srv[r.file] = readKV(filepath.Join(dir, r.file+".srv"))
	}
	fmt.Printf("%-26s %-52s %6s %5s %10s %8s %8s %8s %9s %8s %15s\n", "case", "durability", "size", "infl",
		"ops/s", "p50 ms", "p99 ms", "e2e p99", "gen CPU%", "srv CPU%", "srv RSS MB a/f")
	for _, r := range rows {
		x := res[r.file]
		if x == nil {
			fmt.Printf("%-26s %-52s %s\n", r.name, r.durability, "(no result: see "+r.file+".log)")
			continue
		}
		rate := rateOf(x)
		e2e := "-"
		if x.E2E != nil {
			e2e = fmt.Sprintf("%.2f", x.E2E.P99)
		}
		s := srv[r.file]
		rss := num(s, "rss_anon_peak_mb", "%.0f") + "/" + num(s, "rss_file_peak_mb", "%.0f")
		fmt.Printf("%-26s %-52s %6d %5d %10.0f %8.2f %8.2f %8s %9.0f %8s %15s\n", r.name, r.durability, x.Size, x.Inflight,
			rate, x.Latency.P50, x.Latency.P99, e2e, x.CPU.Percent, num(s, "cpu_pct", "%.0f"), rss)
	}
	ratio := func(a, b string, txa, txb bool) (float64, bool) {
		x, y := res[a], res[b]
		if x == nil || y == nil {
			return 0, false
		}
		ra, rb := x.MsgsPerSec, y.MsgsPerSec
		if txa && x.Tx != nil {
			ra = x.Tx.TxPerSec
		}
		if txb && y.Tx != nil {
			rb = y.Tx.TxPerSec
		}
		if rb == 0 {
			return 0, false
		}
		return ra / rb, true
	}
	fmt.Println("srv RSS MB a/f: peak anonymous / peak file-backed (mapped store files) resident memory of the server")
	fmt.Println("\nratios (throughput)                                     measured   target")
	for _, q := range []struct {
		name     string
		a, b     string
		txa, txb bool
		target   float64
		note     string // target 0: why the row is there
	}{
		{"txmq send / JetStream publish, fsync before ack", "txmq-send-sync", "js-send-always", false, false, 1.5, ""},
		{"txmq send / JetStream publish, fsync every 500 ms", "txmq-send-async", "js-send-500ms", false, false, 1.5, ""},
		{"same, both with an asynchronous window of in-flight", "txmq-send-async-window", "js-send-500ms-async", false, false, 1.5, ""},
		{"txmq send (500 ms) / JetStream publish (2 min)", "txmq-send-async", "js-send-default", false, false, 0, "weaker durability on the peer's side"},
		{"txmq transactions / txmq sends, SYNC_FLUSH", "txmq-tx-sync", "txmq-send-sync", true, false, 0.5, ""},
		{"txmq transactions / txmq sends, ASYNC_FLUSH", "txmq-tx-async", "txmq-send-async", true, false, 0.5, ""},
		{"txmq transactions / txmq sends consumed, ASYNC_FLUSH", "txmq-tx-async", "txmq-send-consume-async", true, false, 0, "like for like: both delivered"},
		{"txmq transactions (SYNC_FLUSH) / DTM 2-phase msgs", "txmq-tx-sync", "dtm-msg", true, true, 5, ""},
		{"txmq transactions (ASYNC_FLUSH) / DTM 2-phase msgs", "txmq-tx-async", "dtm-msg", true, true, 5, ""},
	} {
		if v, ok := ratio(q.a, q.b, q.txa, q.txb); ok && q.target == 0 {
			fmt.Printf("%-55s %8.2fx  (for information: %s)\n", q.name, v, q.note)
		} else if ok {
			met := "no"
			if v >= q.target {
				met = "yes"
			}
			fmt.Printf("%-55s %8.2fx  >= %.1fx  %s\n", q.name, v, q.target, met)
		} else if q.target == 0 {
			fmt.Printf("%-55s %9s\n", q.name, "n/a")
		} else {
			fmt.Printf("%-55s %9s  >= %.1fx\n", q.name, "n/a", q.target)
		}
	}
	alternatingRounds(dir)
	m := readKV(filepath.Join(dir, "metrics.srv"))
	fmt.Println("\nother targets                                           measured   target")
	for _, f := range []string{"txmq-e2e-20k", "txmq-e2e-20k-sync"} {
		if x := res[f]; x != nil && x.E2E != nil {
			fmt.Printf("%-55s %7.2f ms  < 2 ms  %s (at %.0f msg/s acked, %.0f received/s, errors %d)\n", "end-to-end p99, 1 KiB at 20,000 msg/s ("+f+")",
				x.E2E.P99, yes(x.E2E.P99 < 2), x.MsgsPerSec, x.RecvPerSec, x.Errors)
			if v, ok := srv[f]["rss_peak_mb"]; ok {
				fmt.Printf("%-55s %7.1f MB  < 100 MB  %s\n", "broker peak RSS during that load (whole resident set)", v, yes(v < 100))
				if a, ok := srv[f]["rss_anon_peak_mb"]; ok {
					fmt.Printf("%-55s %7.1f MB  < 100 MB  %s (mapped store files: %.1f MB of page cache)\n", "  of which anonymous (heap, stacks)", a, yes(a < 100), srv[f]["rss_file_peak_mb"])
				} else {
					fmt.Printf("%-55s %10s  (no sample)\n", "  of which anonymous (heap, stacks)", "n/a")
				}
			}
		}
	}
	e2eRounds(dir)
	if v, ok := m["idle_rss_mb"]; ok {
		fmt.Printf("%-55s %7.1f MB  < 30 MB  %s\n", "broker RSS idle (fresh start, 2 s)", v, yes(v < 30))
	}
	if v, ok := m["ready_ms"]; ok {
		fmt.Printf("%-55s %7.0f ms  < 200 ms  %s (broker's own startup figure: %s ms)\n", "txmq serve: exec to ready (log line seen)", v, yes(v < 200),
			num(m, "startup_ms", "%.0f"))
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func num(m map[string]float64, k, f string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf(f, v)
	}
	return "-"
}

// readKV reads "key value" lines.
func readKV(path string) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// alternatingRounds prints the ratios of compare.sh's alternating rounds
// (txmq-alt-{send,sendc,tx}-N and js-alt-500ms-N): transactions/sends,
// transactions/sends consumed and sends/JetStream, each round's and their
// median, if there are any.
func alternatingRounds(dir string) {
	rate := func(file string) float64 {
		if x := readResult(dir, file); x != nil {
			return rateOf(x)
		}
		return 0
	}
	var strict, like, js []float64
	for i := 1; ; i++ {
		s, sc, tx := rate(fmt.Sprintf("txmq-alt-send-%d", i)), rate(fmt.Sprintf("txmq-alt-sendc-%d", i)), rate(fmt.Sprintf("txmq-alt-tx-%d", i))
		j := rate(fmt.Sprintf("js-alt-500ms-%d", i))
		if s == 0 && sc == 0 && tx == 0 && j == 0 {
			break
		}
		if i == 1 {
			fmt.Println("\nalternating rounds, ASYNC_FLUSH / sync_interval 500ms (each run on a fresh server, in this order)")
			fmt.Printf("%-7s %10s %10s %17s %15s %10s %10s %18s\n", "round", "sends/s", "JS pub/s", "sends consumed/s", "transactions/s",
				"sends/JS", "tx/sends", "tx/sends consumed")
		}
		r0, r1, r2 := "n/a", "n/a", "n/a"
		if s > 0 && j > 0 {
			js = append(js, s/j)
			r0 = fmt.Sprintf("%.2fx", s/j)
		}
		if s > 0 && tx > 0 {
			strict = append(strict, tx/s)
			r1 = fmt.Sprintf("%.3fx", tx/s)
		}
		if sc > 0 && tx > 0 {
			like = append(like, tx/sc)
			r2 = fmt.Sprintf("%.3fx", tx/sc)
		}
		fmt.Printf("%-7d %10.0f %10.0f %17.0f %15.0f %10s %10s %18s\n", i, s, j, sc, tx, r0, r1, r2)
	}
	medianLine := func(name string, v []float64, target float64) {
		if len(v) == 0 {
			return
		}
		fmt.Printf("%-55s %8.2fx  >= %.1fx  %s (%d of %d rounds at or above)\n", name, median(v), target,
			yes(median(v) >= target), countAtLeast(v, target), len(v))
	}
	medianLine("median: txmq send / JetStream publish, 500 ms", js, 1.5)
	medianLine("median: txmq transactions / txmq sends, ASYNC_FLUSH", strict, 0.5)
	if len(like) > 0 {
		fmt.Printf("%-55s %8.2fx  (for information: like for like: both delivered; %d of %d rounds at or above 0.5x)\n",
			"median: transactions / sends consumed, ASYNC_FLUSH", median(like), countAtLeast(like, 0.5), len(like))
	}
}

// e2eRounds prints the end-to-end p99 of compare.sh's alternating rounds
// (txmq-alt-e2e-N), each round's and their median, if there are any.
func e2eRounds(dir string) {
	var p99 []float64
	var each []string
	for i := 1; ; i++ {
		x := readResult(dir, fmt.Sprintf("txmq-alt-e2e-%d", i))
		if x == nil {
			if readResult(dir, fmt.Sprintf("txmq-alt-tx-%d", i)) != nil {
				each = append(each, "n/a")
				continue
			}
			break
		}
		if x.E2E == nil || x.Errors != 0 {
			each = append(each, "n/a")
			continue
		}
		p99 = append(p99, x.E2E.P99)
		each = append(each, fmt.Sprintf("%.2f", x.E2E.P99))
	}
	if len(p99) == 0 {
		return
	}
	fmt.Printf("%-55s %7.2f ms  < 2 ms  %s (rounds: %s ms; %d of %d under 2 ms)\n", "median: end-to-end p99 at 20,000 msg/s, ASYNC_FLUSH",
		median(p99), yes(median(p99) < 2), strings.Join(each, ", "), countBelow(p99, 2), len(each))
}

func countBelow(v []float64, limit float64) int {
	n := 0
	for _, x := range v {
		if x < limit {
			n++
		}
	}
	return n
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// readResult reads a load generator's JSON summary (DIR/FILE.json); nil
// when it is missing or unreadable.
func readResult(dir, file string) *bench.Result {
	b, err := os.ReadFile(filepath.Join(dir, file+".json"))
	if err != nil {
		return nil
	}
	var x bench.Result
	if json.Unmarshal(b, &x) != nil {
		return nil
	}
	return &x
}

// rateOf is a run's throughput: transactions per second for a
// transactional run, messages per second otherwise.
func rateOf(x *bench.Result) float64 {
	if x.Tx != nil {
		return x.Tx.TxPerSec
	}
	return x.MsgsPerSec
}

func countAtLeast(v []float64, t float64) int {
	n := 0
	for _, x := range v {
		if x >= t {
			n++
		}
	}
	return n
}
