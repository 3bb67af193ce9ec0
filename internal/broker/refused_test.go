package broker

import (
	"errors"
	"testing"

	"github.com/txmq/txmq/internal/remoting"
)

// TestRefusedPassesThrough: refused turns a CodeError into its response
// and passes every other result through unchanged, without an allocation
// for the ErrDeferred every inline send returns.
func TestRefusedPassesThrough(t *testing.T) {
	b := &Broker{}
	req := remoting.NewRequest(remoting.ReqSendMessageV2, nil)
	if resp, err := b.refused(nil, req, nil, remoting.ErrDeferred); resp != nil || !errors.Is(err, remoting.ErrDeferred) {
		t.Fatalf("ErrDeferred: %v, %v", resp, err)
	}
	ok := remoting.NewResponse(remoting.RespSuccess, "")
	if resp, err := b.refused(nil, req, ok, nil); resp != ok || err != nil {
		t.Fatalf("success: %v, %v", resp, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = b.refused(nil, req, nil, remoting.ErrDeferred) }); n != 0 {
		t.Errorf("refused(ErrDeferred): %v allocations", n)
	}
}
