// Command gstates reads a Go runtime execution trace (runtime/trace, or
// /debug/pprof/trace of `txmq serve --pprofAddr`) and prints, for each
// goroutine that ran for at least 0.5% of the window, and for the rest
// grouped by their function, the share of the window spent running,
// runnable (ready but waiting for a processor) and waiting (blocked or
// in a system call), and how often per second it was woken (made
// runnable after waiting: each wake-up of a parked goroutine is a
// hand-off that may cost a thread wake-up). A serial stage that is rarely
// waiting is a bottleneck; goroutines that are often runnable wait for
// CPU.
//
//	curl -o t.out 'http://127.0.0.1:6060/debug/pprof/trace?seconds=2'
//	go run ./bench/gstates t.out        (from bench/gstates: go run . t.out)
//
// It is a module of its own: golang.org/x/exp/trace has no compatibility
// promise, and neither txmq's go.mod nor the peers' should carry it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

// gor is one goroutine's accounting.
type gor struct {
	id                     trace.GoID
	fn                     string // outermost function of ours on its stacks
	state                  trace.GoState
	since                  trace.Time
	run, runnable, waiting trace.Time
	wakes                  int // waiting -> runnable transitions
}

// wrapper frames are skipped when naming a goroutine: they start many
// different goroutines.
var wrappers = []string{"tracker).Go", "goFunc", "Group).Go"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gstates TRACE_FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gstates:", err)
		os.Exit(1)
	}
}

func run(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	gs := map[trace.GoID]*gor{}
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &gor{id: id, state: from, since: first}
			gs[id] = g
		}
		g.account(ev.Time())
		if from == trace.GoWaiting && to == trace.GoRunnable {
			g.wakes++
		}
		g.state = to
		if g.fn == "" {
			g.fn = ourOutermost(st.Stack)
		}
	}
	for _, g := range gs {
		g.account(last)
	}
	return report(w, gs, last-first)
}

// account adds the time since the last transition to g's current state.
func (g *gor) account(now trace.Time) {
	d := now - g.since
	switch g.state {
	case trace.GoRunning:
		g.run += d
	case trace.GoRunnable:
		g.runnable += d
	case trace.GoWaiting, trace.GoSyscall:
		g.waiting += d
	}
	g.since = now
}

// ourOutermost is the outermost frame of a stack that is not the
// runtime's, the standard library's or a goroutine-starting wrapper.
func ourOutermost(s trace.Stack) string {
	fn := ""
	for fr := range s.Frames() {
		if !strings.Contains(fr.Func, ".") || strings.HasPrefix(fr.Func, "runtime.") || !strings.Contains(fr.Func, "/") {
			continue
		}
		wrapped := false
		for _, x := range wrappers {
			wrapped = wrapped || strings.Contains(fr.Func, x)
		}
		if !wrapped {
			fn = fr.Func
		}
	}
	return fn
}

type row struct {
	name                   string
	n, wakes               int
	run, runnable, waiting trace.Time
}

func report(w io.Writer, gs map[trace.GoID]*gor, window trace.Time) error {
	if window <= 0 {
		return errors.New("empty trace")
	}
	rows := map[string]*row{}
	for _, g := range gs {
		name := g.fn
		if name == "" {
			name = "(no frame of ours seen)"
		}
		if g.run*200 >= window {
			name = fmt.Sprintf("%s [goroutine %d]", name, g.id)
		}
		r := rows[name]
		if r == nil {
			r = &row{name: name}
			rows[name] = r
		}
		r.n++
		r.run += g.run
		r.runnable += g.runnable
		r.waiting += g.waiting
		r.wakes += g.wakes
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].run > list[j].run })
	pct := func(t trace.Time) float64 { return 100 * float64(t) / float64(window) }
	fmt.Fprintf(w, "window %.3f s; shares of it, summed over the goroutines of a row\n", float64(window)/1e9)
	fmt.Fprintf(w, "%8s %9s %9s %8s %5s  %s\n", "running", "runnable", "waiting", "wakes/s", "gs", "goroutine")
	for _, r := range list {
		if pct(r.run) < 0.05 && pct(r.runnable) < 0.05 {
			continue
		}
		fmt.Fprintf(w, "%7.1f%% %8.1f%% %8.1f%% %8.0f %5d  %s\n", pct(r.run), pct(r.runnable), pct(r.waiting),
			float64(r.wakes)*1e9/float64(window), r.n, r.name)
	}
	return nil
}
