package bench

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// sendSlot is one in-flight send: a request whose header fields, body and
// property buffers are reused once its response arrived.
type sendSlot struct {
	r     *runner
	st    *slotState
	req   *remoting.Command
	body  []byte // single message body (stamped per send)
	batch []byte // batch body
	props []byte
	n     int   // messages in the request
	t0    int64 // latency origin, Unix ns
	free  chan *sendSlot
	cb    func(*remoting.Command, error) // bound once: no closure per send
}

func (r *runner) newSendSlot() *sendSlot {
	cfg := &r.cfg
	s := &sendSlot{r: r, st: r.newSlot(), body: make([]byte, cfg.Size)}
	for i := stampLen; i < len(s.body); i++ {
		s.body[i] = 'a' + byte(i%26)
	}
	code := remoting.ReqSendMessageV2
	if cfg.Batch > 1 {
		code = remoting.ReqSendBatchMessage
	}
	// SendMessageRequestHeaderV2, as the official clients fill it.
	ext := map[string]string{
		"a": cfg.Group, "b": cfg.Topic, "c": message.DefaultTopic, "d": "4", "e": "0", "f": "0",
		"g": "0", "h": "0", "i": "", "j": "0", "k": "false", "m": strconv.FormatBool(cfg.Batch > 1),
	}
	s.req = remoting.NewRequest(code, ext)
	if cfg.Binary {
		s.req.SerializeType = remoting.SerializeRocketMQ
	}
	s.cb = s.done
	return s
}

// build fills the request for messages seq..seq+n-1 to queue t.
func (s *sendSlot) build(t target, seq int64, n int, t0 int64) {
	r := s.r
	s.n, s.t0 = n, t0
	s.req.Opaque, s.req.Flag = 0, 0
	s.req.SetExt("e", t.qstr)
	s.req.SetExt("n", t.b.name)
	now := time.Now()
	s.req.SetExt("g", strconv.FormatInt(now.UnixMilli(), 10))
	stampNs := now.UnixNano()
	if r.cfg.Rate > 0 {
		stampNs = t0 // end-to-end latency from the scheduled time too
	}
	if n == 1 && r.cfg.Batch == 1 {
		putStamp(s.body, uint64(seq), stampNs)
		s.props = r.appendUniq(appendPropKey(s.props[:0], message.PropUniqClientMessageID))
		s.props = append(s.props, message.PropertySeparator)
		s.props = appendProp(s.props, message.PropWaitStoreMsgOK, "true")
		s.req.SetExt("i", string(s.props))
		s.req.Body = s.body
		return
	}
	s.batch = s.batch[:0]
	for i := range n {
		putStamp(s.body, uint64(seq)+uint64(i), stampNs)
		s.props = r.appendUniq(appendPropKey(s.props[:0], message.PropUniqClientMessageID))
		s.props = append(s.props, message.PropertySeparator)
		s.props = appendProp(s.props, message.PropWaitStoreMsgOK, "true")
		s.batch = message.AppendBatchItem(s.batch, message.BatchItem{Body: s.body, Properties: string(s.props)})
	}
	s.req.SetExt("i", message.PropWaitStoreMsgOK+string(message.NameValueSeparator)+"true")
	s.req.Body = s.batch
}

func appendPropKey(dst []byte, k string) []byte {
	dst = append(dst, k...)
	return append(dst, message.NameValueSeparator)
}

// done is the InvokeAsync callback.
func (s *sendSlot) done(resp *remoting.Command, err error) {
	s.st.end()
	s.r.complete(s.n, resp, err, s.t0)
	s.free <- s
}

// complete accounts for one send request of n messages, and releases resp.
func (r *runner) complete(n int, resp *remoting.Command, err error, t0 int64) {
	if err == nil && resp.Code == remoting.RespSuccess {
		r.acked.Add(int64(n))
		r.lat.Record(time.Duration(time.Now().UnixNano() - t0))
	} else {
		r.errs.Add(int64(n))
		r.noteErr(classify(resp, err), int64(n))
	}
	if resp != nil {
		resp.Release()
	}
}

// newSenders creates the producer's slots (before the watchdog starts).
func (r *runner) newSenders() []*sendSlot {
	slots := make([]*sendSlot, r.cfg.Inflight)
	for i := range slots {
		slots[i] = r.newSendSlot()
	}
	return slots
}

// produce starts the senders and registers them with wg.
func (r *runner) produce(ctx context.Context, slots []*sendSlot, wg *sync.WaitGroup) {
	cfg := &r.cfg
	if !cfg.Async {
		for i, s := range slots {
			wg.Add(1)
			go func() { defer wg.Done(); r.syncSender(ctx, s, i) }()
		}
		return
	}
	free := make(chan *sendSlot, len(slots))
	for _, s := range slots {
		s.free = free
		free <- s
	}
	var subWG sync.WaitGroup
	for j := range cfg.Conns {
		subWG.Add(1)
		go func() { defer subWG.Done(); r.asyncSubmitter(ctx, free, j) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		subWG.Wait()
		// Wait for every slot to come back: each call ends with its
		// response or, through the watchdog, with an error.
		for range slots {
			<-free
		}
	}()
}

// pick returns the queue for the request starting at seq.
func (r *runner) pick(seq int64) target {
	w := r.cl.write
	return w[int((seq/int64(r.cfg.Batch))%int64(len(w)))]
}

func (r *runner) syncSender(ctx context.Context, s *sendSlot, i int) {
	// A synchronous sender finds its next tick already due only when all
	// the senders were waiting for responses (it claims the next unclaimed
	// tick, and idle senders claim ahead): held.
	var p pacer
	for {
		seq, n, t0, ok := r.claim(ctx, &p, true, r.cfg.Batch)
		if !ok {
			return
		}
		r.sent.Add(int64(n))
		t := r.pick(seq)
		c, err := t.b.get(ctx, i)
		if err != nil {
			r.complete(n, nil, err, t0)
			pause(ctx)
			continue
		}
		s.build(t, seq, n, t0)
		s.st.begin(c)
		resp, err := c.Invoke(context.Background(), s.req)
		s.st.end()
		r.complete(n, resp, err, t0)
	}
}

func (r *runner) asyncSubmitter(ctx context.Context, free chan *sendSlot, j int) {
	var p pacer
	for {
		var s *sendSlot
		held := false
		select {
		case s = <-free:
		default:
			held = true // the window is full: wait for a response
			select {
			case s = <-free:
			case <-ctx.Done():
				return
			}
		}
		seq, n, t0, ok := r.claim(ctx, &p, held, r.cfg.Batch)
		if !ok {
			free <- s
			return
		}
		r.sent.Add(int64(n))
		t := r.pick(seq)
		c, err := t.b.get(ctx, j)
		if err != nil {
			r.complete(n, nil, err, t0)
			free <- s
			pause(ctx)
			continue
		}
		s.build(t, seq, n, t0)
		// A fresh Command per asynchronous call: Conn.begin reads
		// req.Opaque after queueing the frame, when the response (and
		// with it this slot's next build) may already have happened.
		// Header map and body are read only before the frame is queued,
		// so they are still reused.
		req := *s.req
		s.st.begin(c)
		if err := c.InvokeAsync(context.Background(), &req, s.cb); err != nil {
			s.st.end()
			r.complete(n, nil, err, t0)
			free <- s
		}
	}
}

// pause waits a little after a failed dial so a dead broker is not spun on.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
	}
}
