package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// target is one queue of the topic on one broker, with the connections
// used for it (producers and consumers have connections of their own).
type target struct {
	b    *brokerConns
	qid  int32
	qstr string // qid as text, for the header
}

// brokerConns is a fixed number of connections to one broker, redialled
// when they close.
type brokerConns struct {
	name    string
	addr    string
	cfg     remoting.ClientConfig
	onDial  func(ctx context.Context, c *remoting.Client) error // e.g. the producer heartbeat
	slots   []atomic.Pointer[remoting.Client]
	mu      sync.Mutex // serialises dials
	retired []*remoting.Client
}

func newBrokerConns(name, addr string, n int, cfg remoting.ClientConfig) *brokerConns {
	return &brokerConns{name: name, addr: addr, cfg: cfg, slots: make([]atomic.Pointer[remoting.Client], n)}
}

// get returns the live connection i (mod the count), dialling it if it has
// none or its connection closed.
func (b *brokerConns) get(ctx context.Context, i int) (*remoting.Client, error) {
	s := &b.slots[i%len(b.slots)]
	if c := s.Load(); c != nil {
		select {
		case <-c.Closed():
		default:
			return c, nil
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := s.Load(); c != nil {
		select {
		case <-c.Closed():
			b.retired = append(b.retired, c)
		default:
			return c, nil
		}
	}
	c, err := remoting.Dial(ctx, b.addr, b.cfg)
	if err != nil {
		return nil, err
	}
	if b.onDial != nil {
		if err := b.onDial(ctx, c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	s.Store(c)
	return c, nil
}

// live returns the connections currently open.
func (b *brokerConns) live() []*remoting.Client {
	var out []*remoting.Client
	for i := range b.slots {
		if c := b.slots[i].Load(); c != nil {
			select {
			case <-c.Closed():
			default:
				out = append(out, c)
			}
		}
	}
	return out
}

func (b *brokerConns) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.slots {
		if c := b.slots[i].Swap(nil); c != nil {
			_ = c.Close()
		}
	}
	for _, c := range b.retired {
		_ = c.Close()
	}
	b.retired = nil
}

// cluster is what a run knows about the brokers serving its topic.
type cluster struct {
	brokers []*brokerConns // producer and consumer connections alike
	write   []target       // writable queues, brokers interleaved
	read    []target       // readable queues
}

func (cl *cluster) close() {
	for _, b := range cl.brokers {
		b.close()
	}
}

// nsCall sends one request to the name server or a broker on a short-lived
// pool and requires SUCCESS.
func call(ctx context.Context, pool *remoting.Pool, addr string, req *remoting.Command) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := pool.Invoke(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.RespSuccess {
		return resp, fmt.Errorf("%s to %s: %s (code %d)", remoting.RequestCodeName(req.Code), addr, resp.Remark, resp.Code)
	}
	return resp, nil
}

// discover finds the topic's route, creating the topic on every master
// when the name server does not know it, and opens no connection yet.
func discover(ctx context.Context, cfg *Config, ccfg remoting.ClientConfig, log func(string, ...any)) (*cluster, error) {
	pool := remoting.NewPool(remoting.ClientConfig{Logger: ccfg.Logger})
	defer pool.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	rd, err := namesrv.GetRoute(rctx, pool, cfg.Namesrv, cfg.Topic)
	cancel()
	if errors.Is(err, namesrv.ErrTopicNotExist) {
		if cfg.Mode == ModeConsumer {
			return nil, fmt.Errorf("topic %s does not exist (run the producer first)", cfg.Topic)
		}
		if err := createTopic(ctx, pool, cfg); err != nil {
			return nil, err
		}
		log("created topic %s with %d queues on every master", cfg.Topic, cfg.Queues)
		deadline := time.Now().Add(10 * time.Second)
		for {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			rd, err = namesrv.GetRoute(rctx, pool, cfg.Namesrv, cfg.Topic)
			cancel()
			if err == nil || !errors.Is(err, namesrv.ErrTopicNotExist) || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if err != nil {
		return nil, err
	}
	addrs := map[string]string{}
	for _, bd := range rd.BrokerDatas {
		if a, ok := bd.BrokerAddrs[0]; ok {
			addrs[bd.BrokerName] = a
		}
	}
	qds := append([]namesrv.QueueData(nil), rd.QueueDatas...)
	sort.Slice(qds, func(i, j int) bool { return qds[i].BrokerName < qds[j].BrokerName })
	cl := &cluster{}
	var wq, rq [][]target
	for _, qd := range qds {
		addr, ok := addrs[qd.BrokerName]
		if !ok {
			continue
		}
		bp := newBrokerConns(qd.BrokerName, addr, cfg.Conns, ccfg)
		bc := newBrokerConns(qd.BrokerName, addr, 1, ccfg)
		cl.brokers = append(cl.brokers, bp, bc)
		var w, r []target
		if qd.Perm&namesrv.PermWrite != 0 {
			for q := range qd.WriteQueueNums {
				w = append(w, target{b: bp, qid: int32(q), qstr: strconv.Itoa(q)})
			}
		}
		if qd.Perm&namesrv.PermRead != 0 {
			for q := range qd.ReadQueueNums {
				r = append(r, target{b: bc, qid: int32(q), qstr: strconv.Itoa(q)})
			}
		}
		wq, rq = append(wq, w), append(rq, r)
	}
	cl.write, cl.read = interleave(wq), interleave(rq)
	if len(cl.brokers) == 0 {
		return nil, fmt.Errorf("topic %s: the name server lists no master broker", cfg.Topic)
	}
	if cfg.Mode != ModeConsumer && len(cl.write) == 0 {
		return nil, fmt.Errorf("topic %s has no writable queue", cfg.Topic)
	}
	if (cfg.Mode != ModeProducer || cfg.E2E) && len(cl.read) == 0 {
		return nil, fmt.Errorf("topic %s has no readable queue", cfg.Topic)
	}
	return cl, nil
}

// interleave takes one queue of each broker in turn.
func interleave(per [][]target) []target {
	var out []target
	for i := 0; ; i++ {
		added := false
		for _, ts := range per {
			if i < len(ts) {
				out = append(out, ts[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

func createTopic(ctx context.Context, pool *remoting.Pool, cfg *Config) error {
	resp, err := call(ctx, pool, cfg.Namesrv, remoting.NewRequest(remoting.ReqGetBrokerClusterInfo, nil))
	if err != nil {
		return err
	}
	var ci namesrv.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil {
		return fmt.Errorf("cluster info: %w", err)
	}
	n := 0
	for _, bd := range ci.BrokerAddrTable {
		addr, ok := bd.BrokerAddrs[0]
		if !ok {
			continue
		}
		q := strconv.Itoa(cfg.Queues)
		req := remoting.NewRequest(remoting.ReqUpdateAndCreateTopic, map[string]string{
			"topic": cfg.Topic, "defaultTopic": message.DefaultTopic, "readQueueNums": q, "writeQueueNums": q,
			"perm": strconv.Itoa(namesrv.PermRead | namesrv.PermWrite), "topicFilterType": "SINGLE_TAG",
			"topicSysFlag": "0", "order": "false",
		})
		if _, err := call(ctx, pool, addr, req); err != nil {
			return fmt.Errorf("create topic %s: %w", cfg.Topic, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("create topic %s: the name server %s knows no master broker", cfg.Topic, cfg.Namesrv)
	}
	return nil
}

// clientID names this process in heartbeats.
func clientID() string {
	h, _ := os.Hostname()
	return h + "@txmq-bench-" + strconv.Itoa(os.Getpid())
}

// producerHeartbeat registers the process as a producer of group on c, so
// the broker sends it CHECK_TRANSACTION_STATE.
func producerHeartbeat(ctx context.Context, c *remoting.Client, id, group string) error {
	body, err := json.Marshal(map[string]any{
		"clientID":        id,
		"producerDataSet": []map[string]string{{"groupName": group}},
		"consumerDataSet": []any{},
	})
	if err != nil {
		return err
	}
	req := remoting.NewRequest(remoting.ReqHeartBeat, nil)
	req.Body = body
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("heartbeat: %s (code %d)", resp.Remark, resp.Code)
	}
	return nil
}

// quietLogger drops the remoting client's debug chatter.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
