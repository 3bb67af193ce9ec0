package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// LatencyOf summarises h in milliseconds.
func LatencyOf(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{Count: h.Count(), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
}

// TxResult is the transaction part of a Result.
type TxResult struct {
	TxPerSec            float64 `json:"tx_per_s"`        // transactions the producer finished (ended or left unknown) per second of load
	EndOneway           bool    `json:"end_oneway"`      // END_TRANSACTION sent oneway (the clients' way), not waited for
	CommitsPerSec       float64 `json:"commits_per_s"`   // committed by END_TRANSACTION, per second of load
	HalfAcked           int64   `json:"half_acked"`      // half messages stored
	Committed           int64   `json:"committed"`       // by END_TRANSACTION
	RolledBack          int64   `json:"rolled_back"`     // by END_TRANSACTION
	LeftUnknown         int64   `json:"left_unknown"`    // no END sent (or END failed): resolved by check-back
	CheckCommitted      int64   `json:"check_committed"` // answered commit on check-back
	CheckRolledBack     int64   `json:"check_rolled_back"`
	StillUnknown        int64   `json:"still_unknown"` // never checked within the drain time
	UnexpectedChecks    int64   `json:"unexpected_checks"`
	EndErrors           int64   `json:"end_errors"`
	CheckEndErrors      int64   `json:"check_end_errors"`
	Delivered           int64   `json:"delivered"` // committed messages the consumer received
	Missing             int64   `json:"missing"`   // committed, not received within the drain time
	Duplicates          int64   `json:"duplicates"`
	RolledBackDelivered int64   `json:"rolled_back_delivered"` // must be 0
	DeliveredEarly      int64   `json:"delivered_before_commit"`
	Untracked           int64   `json:"untracked"` // received messages this run did not send
	// CheckDelay is from leaving a transaction unknown to its check.
	CheckDelay Latency `json:"check_delay_ms"`
}

// Result is the machine-readable summary of a run (txmq bench --json).
type Result struct {
	Mode        string  `json:"mode"`
	Topic       string  `json:"topic"`
	Size        int     `json:"size"`
	Inflight    int     `json:"inflight"`
	Batch       int     `json:"batch"`
	Async       bool    `json:"async"`
	Conns       int     `json:"conns"`
	Rate        int     `json:"rate,omitempty"`
	Header      string  `json:"header"`
	DurationSec float64 `json:"duration_s"`         // the measured load phase (rates are over it)
	WarmupSec   float64 `json:"warmup_s,omitempty"` // load before the measured phase (not in rates or latencies)

	Sent        int64            `json:"sent"`   // messages whose send was issued (tx: half messages)
	Acked       int64            `json:"acked"`  // answered SUCCESS
	Errors      int64            `json:"errors"` // failed sends: sent = acked + errors
	ErrorKinds  map[string]int64 `json:"error_kinds,omitempty"`
	MsgsPerSec  float64          `json:"msgs_per_s"` // acked (consumer: received) per second
	MBPerSec    float64          `json:"mb_per_s"`   // body bytes, 10^6 per second
	Latency     Latency          `json:"latency_ms"` // send (tx: whole transaction) latency; consumer: delivery
	Received    int64            `json:"received,omitempty"`
	Pulls       int64            `json:"pulls,omitempty"` // PULL_MESSAGE requests answered (whole run)
	RecvPerSec  float64          `json:"received_per_s,omitempty"`
	E2E         *Latency         `json:"e2e_ms,omitempty"` // send (tx: commit) to delivery
	Tx          *TxResult        `json:"tx,omitempty"`
	CPU         CPUUsage         `json:"cpu"`          // of the load generator's process
	GC          string           `json:"gc,omitempty"` // the load generator's GC setting
	Interrupted bool             `json:"interrupted,omitempty"`
}

// reporter prints a line per interval and builds the result.
type reporter struct {
	r *runner
	w io.Writer

	mu            sync.Mutex
	totLat, totE2 Histogram
	ivLat, ivE2   Histogram
	last          counters
	lastAt        time.Time
	cpu           CPUMeter
	loadEnd       time.Time
	headerDone    bool

	// After a warm-up: where the measured phase starts, the counters and
	// the CPU meter at that point. warm is false without a warm-up (or
	// when the load ended within it).
	warm      bool
	measStart time.Time
	base      counters
	cpuBase   CPUMeter
}

// endWarmup drops the latencies recorded so far and starts the measured
// phase at now.
func (p *reporter) endWarmup(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var scratch Histogram
	p.r.lat.Drain(&scratch)
	p.r.e2e.Drain(&scratch)
	p.totLat.Reset()
	p.totE2.Reset()
	p.base = p.r.counters()
	p.measStart = now
	p.cpuBase = StartCPU()
	p.warm = true
}

// measured returns where the measured phase started and the CPU meter
// started with it: the warm-up's end, or start and cpu0 without one.
func (p *reporter) measured(start time.Time, cpu0 CPUMeter) (time.Time, CPUMeter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.warm {
		return p.measStart, p.cpuBase
	}
	return start, cpu0
}

type counters struct {
	acked, errs, received, receivedBytes, txDone, commits int64
}

func (r *runner) counters() counters {
	c := counters{acked: r.acked.Load(), errs: r.errs.Load(), received: r.received.Load(), receivedBytes: r.receivedBytes.Load()}
	if r.tx != nil {
		c.commits = r.tx.committed.Load()
		c.txDone = c.commits + r.tx.rolledBack.Load() + r.tx.leftUnknown.Load()
	}
	return c
}

func newReporter(r *runner) *reporter {
	return &reporter{r: r, w: r.cfg.Out, lastAt: r.start, cpu: StartCPU()}
}

func (p *reporter) loop(ctx context.Context) {
	t := time.NewTicker(p.r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.tick(time.Now())
			return
		case now := <-t.C:
			p.tick(now)
		}
	}
}

func (p *reporter) markLoadEnd(t time.Time) {
	p.mu.Lock()
	p.loadEnd = t
	p.mu.Unlock()
}

func (p *reporter) tick(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.r
	p.ivLat.Reset()
	p.ivE2.Reset()
	r.lat.Drain(&p.ivLat)
	r.e2e.Drain(&p.ivE2)
	p.totLat.Merge(&p.ivLat)
	p.totE2.Merge(&p.ivE2)
	c := r.counters()
	d := now.Sub(p.lastAt).Seconds()
	prev := p.last
	p.last, p.lastAt = c, now
	cpu, next := p.cpu.Since()
	p.cpu = next
	// A sliver of an interval (the tick at the end of the load) would
	// print a meaningless rate; its counts are in the summary.
	if p.w == nil || d < 0.25*p.r.cfg.Interval.Seconds() {
		return
	}
	if !p.headerDone {
		p.headerDone = true
		fmt.Fprintln(p.w, p.header())
	}
	el := now.Sub(r.start).Seconds()
	size := float64(r.cfg.Size)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1f", el)
	switch r.cfg.Mode {
	case ModeProducer:
		rate := float64(c.acked-prev.acked) / d
		fmt.Fprintf(&b, " %10.0f %8.2f %8s %8s %8s %8s %7d", rate, rate*size/1e6,
			ms(p.ivLat.Quantile(.5)), ms(p.ivLat.Quantile(.99)), ms(p.ivLat.Quantile(.999)), ms(p.ivLat.Max()), c.errs-prev.errs)
		if r.cfg.E2E {
			fmt.Fprintf(&b, " %10.0f %8s %8s %8s", float64(c.received-prev.received)/d,
				ms(p.ivE2.Quantile(.5)), ms(p.ivE2.Quantile(.99)), ms(p.ivE2.Max()))
		}
	case ModeConsumer:
		rate := float64(c.received-prev.received) / d
		fmt.Fprintf(&b, " %10.0f %8.2f %8s %8s %8s %8s", rate, rate*size/1e6,
			ms(p.ivE2.Quantile(.5)), ms(p.ivE2.Quantile(.99)), ms(p.ivE2.Quantile(.999)), ms(p.ivE2.Max()))
	case ModeTx:
		fmt.Fprintf(&b, " %9.0f %9.0f %8s %8s %8s %7d %9.0f %8s %8s %8s", float64(c.txDone-prev.txDone)/d,
			float64(c.commits-prev.commits)/d, ms(p.ivLat.Quantile(.5)), ms(p.ivLat.Quantile(.99)), ms(p.ivLat.Max()),
			c.errs-prev.errs, float64(c.received-prev.received)/d,
			ms(p.ivE2.Quantile(.5)), ms(p.ivE2.Quantile(.99)), ms(p.ivE2.Max()))
	}
	fmt.Fprintf(&b, " %5.0f%%", cpu.Percent)
	fmt.Fprintln(p.w, b.String())
}

func (p *reporter) header() string {
	switch p.r.cfg.Mode {
	case ModeProducer:
		h := "  time      msg/s     MB/s  p50(ms)  p99(ms) p999(ms)  max(ms)  errors"
		if p.r.cfg.E2E {
			h += "  recv msg/s  e2e p50  e2e p99  e2e max"
		}
		return h + "   cpu"
	case ModeConsumer:
		return "  time      msg/s     MB/s  p50(ms)  p99(ms) p999(ms)  max(ms)   cpu   (latency: send to delivery)"
	default:
		return "  time      tx/s  commit/s  p50(ms)  p99(ms)  max(ms)  errors  deliver/s  e2e p50  e2e p99  e2e max   cpu"
	}
}

// result builds the summary over a load phase of the given length.
func (p *reporter) result(load time.Duration, cpu CPUUsage) *Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.r
	cfg := &r.cfg
	r.lat.Drain(&p.totLat)
	r.e2e.Drain(&p.totE2)
	secs := load.Seconds()
	rate := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	res := &Result{
		Mode: string(cfg.Mode), Topic: cfg.Topic, Size: cfg.Size, Inflight: cfg.Inflight, Batch: cfg.Batch,
		Async: cfg.Async, Conns: cfg.Conns, Rate: cfg.Rate, Header: "json", DurationSec: secs, GC: cfg.GC,
		Sent: r.sent.Load(), Acked: r.acked.Load(), Errors: r.errs.Load(), CPU: cpu,
	}
	if cfg.Binary {
		res.Header = "rocketmq"
	}
	r.errMu.Lock()
	if len(r.errKinds) > 0 {
		res.ErrorKinds = make(map[string]int64, len(r.errKinds))
		for k, v := range r.errKinds {
			res.ErrorKinds[k] = v
		}
	}
	r.errMu.Unlock()
	res.Received = r.received.Load()
	res.Pulls = r.pulls.Load()
	// Counts are of the whole run (they check delivery); rates are of the
	// measured phase.
	var base counters
	if p.warm {
		base = p.base
		res.WarmupSec = cfg.Warmup.Seconds()
	}
	switch cfg.Mode {
	case ModeConsumer:
		res.MsgsPerSec = rate(res.Received - base.received)
		res.MBPerSec = rate(r.receivedBytes.Load()-base.receivedBytes) / 1e6
		res.Latency = LatencyOf(&p.totE2)
		res.RecvPerSec = res.MsgsPerSec
	default:
		res.MsgsPerSec = rate(res.Acked - base.acked)
		res.MBPerSec = res.MsgsPerSec * float64(cfg.Size) / 1e6
		res.Latency = LatencyOf(&p.totLat)
		if cfg.E2E || cfg.Mode == ModeTx {
			e := LatencyOf(&p.totE2)
			res.E2E = &e
			res.RecvPerSec = rate(res.Received - base.received)
		}
	}
	if tx := r.tx; tx != nil {
		var ch Histogram
		tx.checkLat.Drain(&ch)
		t := &TxResult{
			HalfAcked: tx.halfAcked.Load(), Committed: tx.committed.Load(), RolledBack: tx.rolledBack.Load(),
			LeftUnknown: tx.leftUnknown.Load(), CheckCommitted: tx.checkCommitted.Load(),
			CheckRolledBack: tx.checkRolledBack.Load(), StillUnknown: int64(tx.unknownLen()),
			UnexpectedChecks: tx.unexpectedChecks.Load(), EndErrors: tx.endErrors.Load(),
			CheckEndErrors: tx.checkEndErrors.Load(), Delivered: tx.delivered.Load(),
			Duplicates: tx.duplicates.Load(), RolledBackDelivered: tx.rolledBackDelivered.Load(),
			DeliveredEarly: tx.deliveredEarly.Load(), Untracked: tx.untracked.Load(), CheckDelay: LatencyOf(&ch),
		}
		t.EndOneway = !cfg.EndSync
		t.Missing = max(tx.committedTotal()-t.Delivered, 0)
		t.TxPerSec = rate(t.Committed + t.RolledBack + t.LeftUnknown - base.txDone)
		t.CommitsPerSec = rate(t.Committed - base.commits)
		res.Tx = t
	}
	return res
}

func (p *reporter) printSummary(res *Result) {
	w := p.w
	if w == nil {
		return
	}
	cfg := &p.r.cfg
	fmt.Fprintf(w, "\n--- summary: %s, topic %s, %d B messages, in-flight %d, batch %d, %s, %d conn(s), %s headers\n",
		res.Mode, res.Topic, res.Size, res.Inflight, res.Batch, map[bool]string{true: "async", false: "sync"}[res.Async],
		res.Conns, res.Header)
	if res.WarmupSec > 0 {
		fmt.Fprintf(w, "(counts include a %.1f s warm-up; rates, latencies and CPU are of the %.2f s after it)\n", res.WarmupSec, res.DurationSec)
	}
	lat := func(name string, l Latency) {
		fmt.Fprintf(w, "%-22s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f ms  (%d samples)\n",
			name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
	}
	switch cfg.Mode {
	case ModeConsumer:
		fmt.Fprintf(w, "received %d messages in %.2f s: %.0f msg/s, %.2f MB/s%s\n", res.Received, res.DurationSec+res.WarmupSec, res.MsgsPerSec, res.MBPerSec, perPull(res))
		lat("send-to-delivery", res.Latency)
	default:
		fmt.Fprintf(w, "sent %d = acked %d + errors %d in %.2f s: %.0f msg/s, %.2f MB/s\n",
			res.Sent, res.Acked, res.Errors, res.DurationSec+res.WarmupSec, res.MsgsPerSec, res.MBPerSec)
		name := "send latency (ms)"
		if cfg.Mode == ModeTx {
			name = "transaction (ms)"
		}
		lat(name, res.Latency)
		if res.E2E != nil {
			name := "send-to-delivery (ms)"
			if cfg.Mode == ModeTx {
				name = "commit-to-delivery(ms)"
			}
			lat(name, *res.E2E)
			fmt.Fprintf(w, "received %d messages%s\n", res.Received, perPull(res))
		}
	}
	if t := res.Tx; t != nil {
		endMode := "END oneway"
		if !t.EndOneway {
			endMode = "END answered"
		}
		fmt.Fprintf(w, "transactions: %.0f tx/s, %.0f commits/s; halves %d, committed %d, rolled back %d, left unknown %d (%s)\n",
			t.TxPerSec, t.CommitsPerSec, t.HalfAcked, t.Committed, t.RolledBack, t.LeftUnknown, endMode)
		fmt.Fprintf(w, "check-backs: committed %d, rolled back %d, still unknown %d, unexpected %d, end errors %d/%d\n",
			t.CheckCommitted, t.CheckRolledBack, t.StillUnknown, t.UnexpectedChecks, t.EndErrors, t.CheckEndErrors)
		if t.CheckDelay.Count > 0 {
			lat("check delay (ms)", t.CheckDelay)
		}
		fmt.Fprintf(w, "delivery: %d of %d committed delivered, missing %d, duplicates %d, rolled back delivered %d, before commit %d, untracked %d\n",
			t.Delivered, t.Committed+t.CheckCommitted, t.Missing, t.Duplicates, t.RolledBackDelivered, t.DeliveredEarly, t.Untracked)
	}
	for _, k := range sortedKinds(res.ErrorKinds) {
		fmt.Fprintf(w, "error: %s: %d\n", k, res.ErrorKinds[k])
	}
	note := ""
	if res.CPU.InProcessBroker {
		note = " (includes the in-process broker)"
	}
	fmt.Fprintf(w, "load generator CPU: user %.2f s + sys %.2f s = %.0f%% of one core over the run (%d cores)%s; %d GC cycles\n",
		res.CPU.UserSec, res.CPU.SysSec, res.CPU.Percent, res.CPU.Cores, note, res.CPU.GCCycles)
	if res.GC != "" {
		fmt.Fprintf(w, "load generator GC: %s\n", res.GC)
	}
}

// perPull says how many pulls delivered the messages received.
func perPull(res *Result) string {
	if res.Pulls == 0 {
		return ""
	}
	return fmt.Sprintf(" in %d pulls (%.1f per pull)", res.Pulls, float64(res.Received)/float64(res.Pulls))
}
