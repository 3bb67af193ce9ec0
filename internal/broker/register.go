package broker

// Behavior: REGISTER_BROKER to every name server in namesrvAddr at Start,
// every registerNameServerPeriod, and promptly (debounced by
// registerDebounce) after a topic change, which waits for that round so
// that a topic is routable once the request that created it is answered;
// UNREGISTER_BROKER at Shutdown.
// One goroutine sends all registrations, so they reach a name server in
// order. Failures are logged and retried at the next period.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/txmq/txmq/internal/namesrv"
)

const (
	registerDebounce   = 5 * time.Millisecond
	registerTimeout    = 3 * time.Second
	unregisterTimeout  = time.Second
	registrationExpiry = 120 * time.Second // heartbeatTimeoutMillis sent to the name server
)

type registrar struct {
	b     *Broker
	addrs []string
	kickC chan struct{}   // capacity 1: a registration is wanted
	ctx   context.Context // cancelled by stop: ends the loop and its calls
	stopF context.CancelFunc
	done  chan struct{} // closed when loop returns

	mu      sync.Mutex // guards the fields below
	running bool
	want    uint64        // registration rounds asked for (kickWait)
	doneGen uint64        // the highest want a finished round covered
	doneCh  chan struct{} // closed and replaced when a round finishes
}

func newRegistrar(b *Broker, addrs []string) *registrar {
	r := &registrar{b: b, addrs: addrs, kickC: make(chan struct{}, 1), done: make(chan struct{}), doneCh: make(chan struct{})}
	r.ctx, r.stopF = context.WithCancel(context.Background())
	return r
}

// kick asks for a prompt registration; it never blocks.
func (r *registrar) kick() {
	select {
	case r.kickC <- struct{}{}:
	default:
	}
}

// kickWait asks for a prompt registration and waits until one that
// started after the call has finished, at most timeout. Like Java's
// registerBrokerAll after a topic is created, this makes a new topic
// routable before the request that created it is answered.
func (r *registrar) kickWait(timeout time.Duration) {
	if len(r.addrs) == 0 {
		return
	}
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return
	}
	r.want++
	gen := r.want
	r.mu.Unlock()
	r.kick()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		if r.doneGen >= gen {
			r.mu.Unlock()
			return
		}
		ch := r.doneCh
		r.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return
		case <-r.ctx.Done():
			return
		case <-r.done:
			return
		}
	}
}

// round registers once and releases the kickWait callers it covers.
func (r *registrar) round() {
	r.mu.Lock()
	gen := r.want
	r.mu.Unlock()
	r.registerAll()
	r.mu.Lock()
	r.doneGen = max(r.doneGen, gen)
	close(r.doneCh)
	r.doneCh = make(chan struct{})
	r.mu.Unlock()
}

func (r *registrar) loop() {
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
	defer close(r.done)
	period := time.Duration(r.b.cfg.RegisterNameServerPeriod) * time.Millisecond
	t := time.NewTicker(period)
	defer t.Stop()
	r.round()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.kickC:
			d := time.NewTimer(registerDebounce)
			select {
			case <-r.ctx.Done():
				d.Stop()
				return
			case <-d.C:
			}
			select { // changes during the debounce are covered by this round
			case <-r.kickC:
			default:
			}
		}
		r.round()
	}
}

// stop ends the loop and waits for it (if it ever ran).
func (r *registrar) stop() {
	r.stopF()
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running {
		<-r.done
	}
}

func (r *registrar) registration() namesrv.Registration {
	cfg := r.b.cfg
	return namesrv.Registration{
		Cluster: cfg.BrokerClusterName, BrokerName: cfg.BrokerName, BrokerAddr: r.b.AdvertisedAddr(),
		BrokerID: cfg.BrokerID, Timeout: registrationExpiry,
	}
}

func (r *registrar) registerAll() {
	if len(r.addrs) == 0 {
		return
	}
	topics, version := r.b.topics.snapshot()
	reg := r.registration()
	reg.Topics = topics
	for _, addr := range r.addrs {
		actx, acancel := context.WithTimeout(r.ctx, registerTimeout)
		err := namesrv.RegisterBroker(actx, r.b.pool, addr, reg, version)
		acancel()
		if err != nil {
			r.b.log.Warn("registering with the name server failed; retrying next period",
				slog.String("namesrv", addr), slog.Any("err", err))
		}
	}
}

// unregisterAll sends UNREGISTER_BROKER to every name server, best effort.
func (r *registrar) unregisterAll(ctx context.Context) {
	reg := r.registration()
	for _, addr := range r.addrs {
		actx, cancel := context.WithTimeout(ctx, unregisterTimeout)
		if err := namesrv.UnregisterBroker(actx, r.b.pool, addr, reg); err != nil {
			r.b.log.Warn("unregistering from the name server failed", slog.String("namesrv", addr), slog.Any("err", err))
		}
		cancel()
	}
}
