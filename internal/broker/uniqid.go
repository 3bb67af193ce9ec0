package broker

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// uniqIDGen makes UNIQ_KEY values for messages that arrive without one: 32
// upper-case hex characters like Java's MessageClientIDSetter, laid out as
// store IPv4 (4 bytes) | pid (2) | random (4) | counter (6). The counter
// starts from the clock, and the random part differs per process, so ids do
// not repeat across restarts.
type uniqIDGen struct {
	once   sync.Once
	prefix [20]byte // hex of the first 10 bytes
	n      atomic.Uint64
}

func (g *uniqIDGen) init(host netip.AddrPort) {
	var raw [10]byte
	if a := host.Addr(); a.Is4() {
		ip := a.As4()
		copy(raw[:4], ip[:])
	}
	binary.BigEndian.PutUint16(raw[4:], uint16(os.Getpid()))
	_, _ = rand.Read(raw[6:10])
	hexUpper(g.prefix[:], raw[:])
	g.n.Store(uint64(time.Now().UnixMilli()) << 8)
}

// next returns a new id.
func (g *uniqIDGen) next(host netip.AddrPort) string {
	g.once.Do(func() { g.init(host) })
	var out [32]byte
	copy(out[:20], g.prefix[:])
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], g.n.Add(1))
	hexUpper(out[20:], c[2:])
	return string(out[:])
}

func hexUpper(dst, src []byte) {
	const digits = "0123456789ABCDEF"
	for i, c := range src {
		dst[2*i] = digits[c>>4]
		dst[2*i+1] = digits[c&0xf]
	}
}
