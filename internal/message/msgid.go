package message

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
)

// ErrBadMessageID means a string is not an offset message id.
var ErrBadMessageID = errors.New("message: not an offset message id")

// OffsetMessageID is RocketMQ's offset message id: store host address and
// port followed by the commit-log offset, as upper-case hex (32 characters
// for IPv4, 56 for IPv6).
func OffsetMessageID(storeHost netip.AddrPort, commitLogOffset int64) string {
	var buf [28]byte
	n := putHost(buf[:], storeHost)
	binary.BigEndian.PutUint64(buf[n:], uint64(commitLogOffset))
	n += 8
	var out [56]byte
	hexUpper(out[:2*n], buf[:n])
	return string(out[:2*n])
}

func hexUpper(dst, src []byte) {
	const digits = "0123456789ABCDEF"
	for i, c := range src {
		dst[2*i] = digits[c>>4]
		dst[2*i+1] = digits[c&0xf]
	}
}

// ParseOffsetMessageID decodes an offset message id.
func ParseOffsetMessageID(id string) (netip.AddrPort, int64, error) {
	var raw [28]byte
	switch len(id) {
	case 32, 56:
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q has length %d, want 32 or 56", ErrBadMessageID, id, len(id))
	}
	n, err := hex.Decode(raw[:], []byte(id))
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("%w: %q: %v", ErrBadMessageID, id, err)
	}
	host := readHost(raw[:], n == 28)
	hl := 8
	if n == 28 {
		hl = 20
	}
	return host, int64(binary.BigEndian.Uint64(raw[hl:])), nil
}
