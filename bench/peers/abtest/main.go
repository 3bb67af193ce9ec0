// Command abtest compares two txmq builds in alternating pairs of runs, so
// that a change of a few percent can be told from the host's drift (on the
// shared 2-vCPU VM of docs/performance.md single runs move by ±25%).
//
//	abtest [-pairs 6] [-flush ASYNC_FLUSH] [-old-serve FLAGS] [-new-serve FLAGS] [-own-gen] OLD_BIN NEW_BIN -- BENCH_ARGS...
//
// (Build it with `go build -o /tmp/abtest ./abtest` in bench/peers, and the
// two txmq binaries with `go build -o FILE ./cmd/txmq` at each commit.)
//
// Each pair starts a fresh broker from each binary, in a random order, on
// 127.0.0.1 with its data in a temporary directory (deleted, then sync),
// and runs `OLD_BIN bench BENCH_ARGS -n <its name server> --json` against
// it: the load generator is the same for both sides (with -own-gen each
// side runs its own binary's, to compare a change that reaches the client
// code too). It prints each run's rate (msgs/s, or tx/s in tx mode), the
// broker's and the load generator's CPU per message and the latency p99
// (e2e p99 too when measured), then for each figure the median of the
// per-pair ratios NEW/OLD and in how many pairs NEW was better.
// With the same binary twice and -old-serve/-new-serve it compares two
// broker settings instead.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/txmq/txmq/internal/bench"
)

// figures is what one run measured.
type figures struct {
	rate, usPerMsg, genUsPerMsg, p99, e2eP99 float64
}

func main() {
	pairs := flag.Int("pairs", 6, "alternating pairs of runs")
	flush := flag.String("flush", "ASYNC_FLUSH", "broker flushDiskType")
	oldServe := flag.String("old-serve", "", "extra `txmq serve` flags for OLD_BIN (space-separated)")
	newServe := flag.String("new-serve", "", "extra `txmq serve` flags for NEW_BIN (space-separated); with the same binary twice, compares two settings")
	ownGen := flag.Bool("own-gen", false, "each side runs its own binary's load generator (compares load generators too); by default both use OLD_BIN's")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: abtest [-pairs N] [-flush F] [-old-serve FLAGS] [-new-serve FLAGS] [-own-gen] OLD_BIN NEW_BIN -- BENCH_ARGS...")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) < 3 || args[2] != "--" {
		flag.Usage()
		os.Exit(2)
	}
	bins := [2]string{args[0], args[1]}
	serveArgs := [2][]string{strings.Fields(*oldServe), strings.Fields(*newServe)}
	benchArgs := args[3:]
	var res [2][]figures
	for i := range *pairs {
		order := [2]int{0, 1}
		if rand.IntN(2) == 1 {
			order = [2]int{1, 0}
		}
		for _, side := range order {
			gen := bins[0]
			if *ownGen {
				gen = bins[side]
			}
			f, err := runOnce(bins[side], gen, *flush, serveArgs[side], benchArgs)
			if err != nil {
				fmt.Fprintf(os.Stderr, "abtest: pair %d, %s: %v\n", i+1, bins[side], err)
				os.Exit(1)
			}
			res[side] = append(res[side], f)
			e2e := "-"
			if f.e2eP99 > 0 {
				e2e = fmt.Sprintf("%.2f ms", f.e2eP99)
			}
			fmt.Printf("pair %d %-3s rate %9.0f  broker %5.1f us/msg  generator %5.1f us/msg  p99 %6.2f ms  e2e p99 %s\n",
				i+1, []string{"old", "new"}[side], f.rate, f.usPerMsg, f.genUsPerMsg, f.p99, e2e)
		}
	}
	summarize := func(name string, get func(figures) float64, higherBetter bool) {
		var ratios []float64
		wins := 0
		for i := range res[0] {
			a, b := get(res[0][i]), get(res[1][i])
			if a <= 0 || b <= 0 {
				continue
			}
			ratios = append(ratios, b/a)
			if (b > a) == higherBetter && b != a {
				wins++
			}
		}
		if len(ratios) == 0 {
			return
		}
		slices.Sort(ratios)
		med := ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			med = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
		}
		fmt.Printf("%-16s new/old median %.3f (range %.3f–%.3f); new better in %d of %d pairs\n",
			name, med, ratios[0], ratios[len(ratios)-1], wins, len(ratios))
	}
	fmt.Println()
	summarize("rate", func(f figures) float64 { return f.rate }, true)
	summarize("broker us/msg", func(f figures) float64 { return f.usPerMsg }, false)
	summarize("generator us/msg", func(f figures) float64 { return f.genUsPerMsg }, false)
	summarize("p99", func(f figures) float64 { return f.p99 }, false)
	summarize("e2e p99", func(f figures) float64 { return f.e2eP99 }, false)
}

// runOnce starts a broker from bin, runs gen's load generator against it
// and stops it.
func runOnce(bin, gen, flush string, serveArgs, benchArgs []string) (figures, error) {
	dir, err := os.MkdirTemp("", "txmq-abtest-")
	if err != nil {
		return figures{}, err
	}
	defer func() {
		os.RemoveAll(dir)
		_ = exec.Command("sync").Run()
	}()
	ports, err := freePorts(2)
	if err != nil {
		return figures{}, err
	}
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return figures{}, err
	}
	defer logf.Close()
	srv := exec.Command(bin, append([]string{"serve", "--storePathRootDir", dir, "--listenHost", "127.0.0.1", "--brokerIP1", "127.0.0.1",
		"--listenPort", strconv.Itoa(ports[0]), "--namesrvListenPort", strconv.Itoa(ports[1]),
		"--grpcListenPort", "-1", "--httpListenPort", "-1", "--flushDiskType", flush}, serveArgs...)...)
	srv.Stdout, srv.Stderr = logf, logf
	// The broker runs with the runtime's own GC settings whatever this
	// process was given (the load generator sets its own).
	srv.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=")
	})
	if err := srv.Start(); err != nil {
		return figures{}, err
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	if err := waitReady(logf.Name(), 10*time.Second); err != nil {
		return figures{}, err
	}
	c0, err := cpuTicks(srv.Process.Pid)
	if err != nil {
		return figures{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gen, append(append([]string{"bench"}, benchArgs...),
		"-n", "127.0.0.1:"+strconv.Itoa(ports[1]), "--json")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return figures{}, fmt.Errorf("bench: %w\n%s", err, errOut.String())
	}
	c1, err := cpuTicks(srv.Process.Pid)
	if err != nil {
		return figures{}, err
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return figures{}, fmt.Errorf("bench summary: %w", err)
	}
	f := figures{rate: r.MsgsPerSec, p99: r.Latency.P99}
	n := float64(r.Acked)
	if r.Tx != nil {
		f.rate = r.Tx.TxPerSec
		n = float64(r.Tx.Committed + r.Tx.RolledBack + r.Tx.LeftUnknown)
	}
	if r.E2E != nil {
		f.e2eP99 = r.E2E.P99
	}
	if n > 0 {
		// CPU ticks are 10 ms; the broker's whole run (warm-up included)
		// over every message it handled. The load generator's figure is
		// its summary's CPU over the same count, so both read alike
		// between the two sides rather than as absolute costs.
		f.usPerMsg = float64(c1-c0) * 1e4 / n
		f.genUsPerMsg = (r.CPU.UserSec + r.CPU.SysSec) * 1e6 / n
	}
	return f, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady waits for the broker's "txmq ready" log line.
func waitReady(log string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("txmq ready")) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(log)
	return fmt.Errorf("broker not ready after %v:\n%s", timeout, b)
}

// cpuTicks is utime+stime of pid, in clock ticks (/proc/PID/stat).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; count from after it.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}
