package txn

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// A producer that stops reading must not hold up the checks of other
// groups: the scheduler serves every group from one goroutine, so it
// does not wait for room on a backed-up connection; those checks are
// deferred and retried, and counted.
func TestCheckBackedUpProducerDoesNotStallOthers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CheckWindow = -1 })
	// More checks than the connection's outbound queue holds, after the
	// kernel's socket buffers (a few MB on loopback) have taken theirs.
	const frozenN, bodySize = 2500, 8 << 10
	body := strings.Repeat("x", bodySize)
	for i := range frozenN {
		msg := halfMsg("TopicA", 1, uniqID(i), body)
		if _, err := h.svc.Prepare(context.Background(), msg, "FROZEN"); err != nil {
			t.Fatal(err)
		}
	}
	h.prepare("PG", "healthy") // due last

	nc, err := net.Dial("tcp", h.prods.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	hb := remoting.NewRequest(remoting.ReqHeartBeat, map[string]string{"group": "FROZEN"})
	frame, err := remoting.AppendFrame(nil, hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.prods.PickProducer("FROZEN") == nil { // registered; it never reads from here on
		if time.Now().After(deadline) {
			t.Fatal("the frozen producer did not register")
		}
		time.Sleep(time.Millisecond)
	}
	p := h.connectProducer("PG", nil)

	h.clk.Add(6 * time.Second)
	done := make(chan struct{})
	go func() { defer close(done); h.tick() }()
	p.waitChecks(t, 1)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler's round did not end: it waits for the backed-up connection")
	}
	p.mu.Lock()
	first := p.checks[0]
	p.mu.Unlock()
	if id, _ := message.Property(first.msg.Properties, message.PropUniqClientMessageID); id != "healthy" {
		t.Fatalf("PG was checked for %q", id)
	}
	st := h.svc.Stats()
	if st.ChecksDeferred == 0 || st.ChecksSent+st.ChecksDeferred < frozenN+1 {
		t.Fatalf("stats %+v: want every FROZEN check sent or deferred", st)
	}
	// Deferred checks are not spent: they stay due a second later.
	var spent int
	for _, pi := range h.svc.List(frozenN+1, ListFilter{}) {
		spent += pi.ChecksSent
	}
	if uint64(spent) != st.ChecksSent {
		t.Fatalf("%d checks counted on the transactions, %d sent", spent, st.ChecksSent)
	}
	t.Logf("sent %d, deferred %d", st.ChecksSent, st.ChecksDeferred)
}
