package remoting

import (
	"context"
	"fmt"
	"sync"
)

// Pool keeps one Client per address and dials again when the connection of
// a cached client has closed. It does not retry calls: a call that fails
// because its connection died returns the error, and the next call redials.
// All methods are safe for concurrent use.
type Pool struct {
	cfg ClientConfig

	mu      sync.Mutex // guards clients and closed
	clients map[string]*poolEntry
	closed  bool
}

type poolEntry struct {
	mu sync.Mutex // held while dialling, so one dial per address at a time
	c  *Client
}

// NewPool returns a pool whose clients use cfg (including cfg.Handlers).
func NewPool(cfg ClientConfig) *Pool {
	return &Pool{cfg: cfg, clients: make(map[string]*poolEntry)}
}

// Get returns the live client for addr, dialling it if there is none.
func (p *Pool) Get(ctx context.Context, addr string) (*Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	e := p.clients[addr]
	if e == nil {
		e = &poolEntry{}
		p.clients[addr] = e
	}
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		select {
		case <-e.c.Closed():
			_ = e.c.Close() // reap its goroutines
			e.c = nil
		default:
			return e.c, nil
		}
	}
	c, err := Dial(ctx, addr, p.cfg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, ErrPoolClosed
	}
	e.c = c
	return c, nil
}

// Invoke sends req to addr and waits for the response.
func (p *Pool) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("remoting: %s to %s: %w", RequestCodeName(req.Code), addr, err)
	}
	return c.Invoke(ctx, req)
}

// InvokeOneway sends req to addr with the oneway flag.
func (p *Pool) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return fmt.Errorf("remoting: %s to %s: %w", RequestCodeName(req.Code), addr, err)
	}
	return c.InvokeOneway(req)
}

// Close closes every client and makes later calls fail with ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.clients
	p.clients = make(map[string]*poolEntry)
	p.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		if e.c != nil {
			_ = e.c.Close()
			e.c = nil
		}
		e.mu.Unlock()
	}
	return nil
}
