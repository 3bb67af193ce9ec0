package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/lifecycle"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// Body stamp: magic, sequence number, send time (Unix ns).
const (
	stampLen   = 20
	stampMagic = 0x54584d42 // "TXMB"
)

func putStamp(b []byte, seq uint64, ns int64) {
	if len(b) < stampLen {
		return
	}
	binary.BigEndian.PutUint32(b, stampMagic)
	binary.BigEndian.PutUint64(b[4:], seq)
	binary.BigEndian.PutUint64(b[12:], uint64(ns))
}

func readStamp(b []byte) (seq uint64, ns int64, ok bool) {
	if len(b) < stampLen || binary.BigEndian.Uint32(b) != stampMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), int64(binary.BigEndian.Uint64(b[12:])), true
}

// runner is the state of one run.
type runner struct {
	cfg        Config
	cl         *cluster
	id         string
	uniqPrefix [16]byte // hex; UNIQ_KEY = prefix + 16 hex digits of uniqSeq
	uniqSeq    atomic.Uint64
	next       atomic.Int64 // next sequence number to claim (messages; tx: transactions)
	start      time.Time    // start of the load
	startNs    int64

	sent, acked, errs atomic.Int64 // messages
	received          atomic.Int64 // messages pulled (consumer, e2e, tx)
	pulls             atomic.Int64 // PULL_MESSAGE requests answered
	receivedBytes     atomic.Int64
	lat, e2e          Recorder // send (tx: transaction) latency; delivery latency

	errMu    sync.Mutex
	errKinds map[string]int64

	slots []*slotState // watched by the watchdog
	tx    *txState     // tx mode only
}

// slotState is what the watchdog sees of one outstanding request.
type slotState struct {
	startNs atomic.Int64 // 0 when idle
	cli     atomic.Pointer[remoting.Client]
}

func (s *slotState) begin(c *remoting.Client) {
	s.cli.Store(c)
	s.startNs.Store(time.Now().UnixNano())
}

func (s *slotState) end() { s.startNs.Store(0) }

func (r *runner) newSlot() *slotState {
	s := &slotState{}
	r.slots = append(r.slots, s)
	return s
}

// watchdog closes the connection of any request older than the timeout;
// closing fails its pending calls, and the next call redials.
func (r *runner) watchdog(ctx context.Context) {
	t := time.NewTicker(max(r.cfg.Timeout/8, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			limit := now.Add(-r.cfg.Timeout).UnixNano()
			for _, s := range r.slots {
				if st := s.startNs.Load(); st != 0 && st < limit {
					if c := s.cli.Load(); c != nil {
						r.noteErr("timeout (connection closed by the watchdog)", 0)
						_ = c.Conn().Close()
					}
				}
			}
		}
	}
}

func (r *runner) noteErr(kind string, n int64) {
	r.errMu.Lock()
	if r.errKinds == nil {
		r.errKinds = map[string]int64{}
	}
	r.errKinds[kind] += max(n, 1)
	r.errMu.Unlock()
}

// classify names an error for the error table.
func classify(resp *remoting.Command, err error) string {
	switch {
	case err != nil && errors.Is(err, remoting.ErrConnClosed):
		return "connection closed"
	case err != nil:
		s := err.Error()
		if len(s) > 80 {
			s = s[:80]
		}
		return s
	default:
		return "code " + strconv.Itoa(int(resp.Code)) + " " + remoting.ResponseCodeName(resp.Code)
	}
}

// pacer is one sender's memory of its last wake-up under a rate cap: the
// tick it slept for and when it woke.
type pacer struct {
	due, woke int64
}

// claim takes the next n sequence numbers (fewer at the end of a count),
// waits for their scheduled time under a rate cap, and returns the first
// one, how many, and the time latency is measured from. p is the caller's
// pacer; held says the caller waited for room in the window (a response)
// just before, so a due time already past is the broker's delay.
func (r *runner) claim(ctx context.Context, p *pacer, held bool, n int) (seq int64, got int, t0 int64, ok bool) {
	if ctx.Err() != nil {
		return 0, 0, 0, false
	}
	seq = r.next.Add(int64(n)) - int64(n)
	got = n
	if c := r.cfg.Count; c > 0 {
		if seq >= c {
			return 0, 0, 0, false
		}
		got = int(min(int64(n), c-seq))
	}
	if r.cfg.Rate > 0 {
		// Paced in 1 ms ticks: the messages of one tick share its due time.
		due := r.startNs + int64(float64(seq)*1e3/float64(r.cfg.Rate))*int64(time.Millisecond)
		if d := time.Duration(due - time.Now().UnixNano()); d > 0 {
			select {
			case <-ctx.Done():
				return 0, 0, 0, false
			case <-time.After(d):
			}
			// The sender was early for its tick, so how late it woke is
			// the load generator's own delay, not the broker's: the
			// runtime sleeps in whole milliseconds when idle (a timer
			// fires 0.6 ms late at the median and 1.1 ms at p99 on
			// the 2-core machine of docs/performance.md). Count from
			// the wake-up.
			p.due, p.woke = due, max(due, time.Now().UnixNano())
			return seq, got, p.woke, true
		}
		// Already due. The rest of a tick this sender woke up for counts
		// from that wake-up too, unless the sender had to wait for room
		// in the window: then the tick is late because of the broker
		// and counts from its due time.
		if !held && due == p.due {
			return seq, got, p.woke, true
		}
		return seq, got, due, true
	}
	return seq, got, time.Now().UnixNano(), true
}

// appendUniq appends a new UNIQ_KEY (32 upper-case hex digits).
func (r *runner) appendUniq(dst []byte) []byte {
	dst = append(dst, r.uniqPrefix[:]...)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r.uniqSeq.Add(1))
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

func appendProp(dst []byte, k, v string) []byte {
	dst = append(dst, k...)
	dst = append(dst, message.NameValueSeparator)
	dst = append(dst, v...)
	return append(dst, message.PropertySeparator)
}

// Run performs one run and returns its result. ctx cancels it early (the
// result then covers what ran).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, id: clientID()}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	hex.Encode(r.uniqPrefix[:], rnd[:])
	copy(r.uniqPrefix[:], strings.ToUpper(string(r.uniqPrefix[:])))

	ccfg := remoting.ClientConfig{Logger: quietLogger(), WriteTimeout: cfg.Timeout}
	if cfg.Mode == ModeTx {
		r.tx = newTxState()
		ccfg.Handlers = map[int32]remoting.Handler{remoting.ReqCheckTransactionState: r.handleCheck}
	}
	info := func(format string, a ...any) {
		if cfg.Out != nil {
			fmt.Fprintf(cfg.Out, format+"\n", a...)
		}
	}
	cl, err := discover(ctx, &r.cfg, ccfg, info)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	r.cl = cl
	if cfg.Mode == ModeTx {
		for _, t := range cl.write {
			t.b.onDial = func(ctx context.Context, c *remoting.Client) error {
				return producerHeartbeat(ctx, c, r.id, cfg.Group)
			}
		}
	}
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	cfg := &r.cfg
	// Consumers start at the queues' current ends (or beginnings) before
	// any load, so nothing produced by this run is missed.
	consuming := cfg.Mode == ModeConsumer || cfg.Mode == ModeTx || cfg.E2E
	var offsets []int64
	if consuming {
		var err error
		if offsets, err = r.startOffsets(ctx); err != nil {
			return nil, err
		}
	}
	// Dial the producer connections before the clock starts.
	if cfg.Mode != ModeConsumer {
		for i := range cfg.Conns {
			seen := map[*brokerConns]bool{}
			for _, t := range r.cl.write {
				if seen[t.b] {
					continue
				}
				seen[t.b] = true
				if _, err := t.b.get(ctx, i); err != nil {
					return nil, err
				}
			}
		}
	}

	var slots []*sendSlot
	if cfg.Mode != ModeConsumer {
		slots = r.newSenders()
	}

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var bgWG sync.WaitGroup
	goBG := func(fn func()) { bgWG.Add(1); go func() { defer bgWG.Done(); fn() }() }

	cpu0 := StartCPU()
	r.start = time.Now()
	r.startNs = r.start.UnixNano()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		loadCtx, cancel = context.WithTimeout(loadCtx, cfg.Warmup+cfg.Duration)
		defer cancel()
	}
	// The consumer outlives the load by the drain; it stops on consCtx.
	consCtx, stopCons := context.WithCancel(ctx)
	defer stopCons()

	rep := newReporter(r)
	goBG(func() { rep.loop(bg) })
	if cfg.Warmup > 0 {
		goBG(func() {
			select {
			case <-bg.Done():
			case <-loadCtx.Done():
			case <-time.After(cfg.Warmup):
				rep.endWarmup(time.Now())
			}
		})
	}
	goBG(func() { r.watchdog(bg) })
	if cfg.Mode == ModeTx {
		goBG(func() { r.heartbeatLoop(bg) })
	}

	var consWG sync.WaitGroup
	if consuming {
		cctx := consCtx
		if cfg.Mode == ModeConsumer {
			cctx = loadCtx
		}
		for i, t := range r.cl.read {
			consWG.Add(1)
			go func() { defer consWG.Done(); r.pullLoop(cctx, stopLoad, t, offsets[i]) }()
		}
	}

	var loadWG sync.WaitGroup
	switch cfg.Mode {
	case ModeProducer:
		r.produce(loadCtx, slots, &loadWG)
	case ModeTx:
		for i, s := range slots {
			loadWG.Add(1)
			go func() { defer loadWG.Done(); r.txWorker(loadCtx, s, i) }()
		}
	case ModeConsumer:
		consWG.Wait()
	}
	loadWG.Wait()
	loadEnd := time.Now()
	stopLoad()
	rep.markLoadEnd(loadEnd)

	// Drain: deliveries of what was acknowledged, check-backs of what was
	// left unknown.
	if consuming && cfg.Mode != ModeConsumer {
		deadline := time.Now().Add(cfg.DrainTimeout)
		for time.Now().Before(deadline) && ctx.Err() == nil && !r.drained() {
			time.Sleep(10 * time.Millisecond)
		}
		stopCons()
		consWG.Wait()
	}
	stopBG()
	bgWG.Wait()
	measStart, cpuMeas := rep.measured(r.start, cpu0)
	cpu, _ := cpuMeas.Since()
	cpu.InProcessBroker = cfg.InProcessBroker
	res := rep.result(loadEnd.Sub(measStart), cpu)
	rep.printSummary(res)
	return res, nil
}

// drained reports whether the consumer has seen everything it should.
func (r *runner) drained() bool {
	if r.tx != nil {
		return r.tx.settled() && r.tx.delivered.Load() >= r.tx.committedTotal()
	}
	return r.received.Load() >= r.acked.Load()
}

// startOffsets returns the offset each read queue's consumer starts at.
func (r *runner) startOffsets(ctx context.Context) ([]int64, error) {
	code := remoting.ReqGetMaxOffset
	if r.cfg.From == "earliest" {
		code = remoting.ReqGetMinOffset
	}
	out := make([]int64, len(r.cl.read))
	for i, t := range r.cl.read {
		c, err := t.b.get(ctx, 0)
		if err != nil {
			return nil, err
		}
		req := remoting.NewRequest(code, map[string]string{"topic": r.cfg.Topic, "queueId": t.qstr})
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.Invoke(cctx, req)
		cancel()
		if err != nil {
			return nil, err
		}
		if resp.Code != remoting.RespSuccess {
			return nil, fmt.Errorf("%s %s/%d: %s (code %d)", remoting.RequestCodeName(code), r.cfg.Topic, t.qid, resp.Remark, resp.Code)
		}
		if out[i], err = resp.ExtInt64("offset"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *runner) heartbeatLoop(ctx context.Context) {
	lifecycle.Every(ctx, 20*time.Second, func() {
		for _, b := range r.cl.brokers {
			if b.onDial == nil {
				continue
			}
			for _, c := range b.live() {
				if err := producerHeartbeat(ctx, c, r.id, r.cfg.Group); err != nil {
					r.noteErr("heartbeat: "+err.Error(), 0)
				}
			}
		}
	})
}

func sortedKinds(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
