package remoting

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"
)

// DefaultMaxFrameSize is the largest frame accepted by default, length field
// included: 16 MiB, as Java's NettyDecoder (com.rocketmq.remoting.frameMaxLength).
const DefaultMaxFrameSize = 16 << 20

const (
	lengthFieldSize = 4         // the totalLen prefix
	metaFieldSize   = 4         // serialize type + 24-bit header length
	maxHeaderLen    = 1<<24 - 1 // largest header the 24-bit field can describe
)

// Frame layout (all integers big-endian):
//
//	| totalLen int32 | hdrMeta int32 | header (hdrLen bytes) | body |
//	totalLen = 4 + hdrLen + len(body)  (it does not count itself)
//	hdrMeta  = serializeType<<24 | hdrLen

// AppendFrame appends the wire encoding of cmd, length prefix included, to
// dst and returns the extended slice. The header is encoded in
// cmd.SerializeType. On error dst is returned unchanged. AppendFrame does not
// enforce a frame size limit beyond what the format can express; callers
// that have one check the result's length.
func AppendFrame(dst []byte, cmd *Command) ([]byte, error) {
	dst, err := appendFrameHead(dst, cmd)
	if err != nil {
		return dst, err
	}
	return append(dst, cmd.Body...), nil
}

// appendFrameHead appends everything of cmd's frame except the body: the
// length prefix (which counts the body), the header meta field and the
// header. The body can then be written separately without copying it.
func appendFrameHead(dst []byte, cmd *Command) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch cmd.SerializeType {
	case SerializeJSON:
		dst = appendJSONHeader(dst, cmd)
	case SerializeRocketMQ:
		dst, err = appendBinaryHeader(dst, cmd)
	default:
		err = fmt.Errorf("%w: unknown serialize type %d", ErrInvalidCommand, cmd.SerializeType)
	}
	if err != nil {
		return dst[:start], err
	}
	hdrLen := len(dst) - start - lengthFieldSize - metaFieldSize
	if hdrLen > maxHeaderLen {
		return dst[:start], fmt.Errorf("%w: header of %d bytes does not fit the 24-bit header length", ErrFrameTooLarge, hdrLen)
	}
	total := int64(metaFieldSize) + int64(hdrLen) + int64(len(cmd.Body))
	if total > math.MaxInt32-lengthFieldSize {
		return dst[:start], fmt.Errorf("%w: frame of %d bytes does not fit the int32 length", ErrFrameTooLarge, total)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+lengthFieldSize:], uint32(cmd.SerializeType)<<24|uint32(hdrLen))
	return dst, nil
}

// DecodeFrame decodes one whole frame, length prefix included. The length
// prefix must match len(frame). maxFrameSize <= 0 means DefaultMaxFrameSize.
// The returned command's Body aliases frame.
func DecodeFrame(frame []byte, maxFrameSize int) (*Command, error) {
	if len(frame) < lengthFieldSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the length field", ErrMalformedFrame, len(frame))
	}
	n := binary.BigEndian.Uint32(frame)
	if err := checkFrameLength(n, maxFrameSize); err != nil {
		return nil, err
	}
	if uint64(n) != uint64(len(frame)-lengthFieldSize) {
		return nil, fmt.Errorf("%w: length field says %d bytes but %d follow it", ErrMalformedFrame, n, len(frame)-lengthFieldSize)
	}
	return decodeFrameContent(frame[lengthFieldSize:])
}

// ReadFrame reads and decodes one frame from r. It checks the length prefix
// against maxFrameSize (<= 0 means DefaultMaxFrameSize) before it allocates
// anything, then reads the frame into a buffer that grows with the bytes
// received (see readFull); the returned command's Body aliases it. At a clean end of stream it returns io.EOF; a stream that
// ends inside a frame gives io.ErrUnexpectedEOF. Errors from r are returned
// as they are; decoding errors wrap ErrFrameTooLarge or ErrMalformedFrame.
func ReadFrame(r *bufio.Reader, maxFrameSize int) (*Command, error) {
	n, err := peekFrameLength(r, maxFrameSize)
	if err != nil {
		return nil, err
	}
	if _, err := r.Discard(lengthFieldSize); err != nil {
		return nil, err
	}
	buf, err := readFull(r, int(n))
	if err != nil {
		return nil, err
	}
	return decodeFrameContent(buf)
}

// peekFrameLength peeks at the next frame's length prefix and checks it
// against maxFrameSize, consuming nothing: io.EOF at a clean end of stream,
// io.ErrUnexpectedEOF inside a prefix.
func peekFrameLength(r *bufio.Reader, maxFrameSize int) (uint32, error) {
	p, err := r.Peek(lengthFieldSize)
	if err != nil {
		if len(p) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n := binary.BigEndian.Uint32(p)
	return n, checkFrameLength(n, maxFrameSize)
}

// readFramePooled is ReadFrame for a connection's read loop: a frame of up
// to maxPooledFrame bytes is read into a buffer from framePool. A frame
// without a body gives its buffer back at once (the decoded header is a
// copy); otherwise the command keeps it in cmd.frame, its Body aliases it,
// and Command.recycle returns it to the pool (see Command.MarkRecyclable).
// Larger frames are read as ReadFrame reads them.
func readFramePooled(r *bufio.Reader, maxFrameSize int) (*Command, error) {
	n, err := peekFrameLength(r, maxFrameSize)
	if err != nil {
		return nil, err
	}
	if n > maxPooledFrame {
		return ReadFrame(r, maxFrameSize)
	}
	if _, err := r.Discard(lengthFieldSize); err != nil {
		return nil, err
	}
	bp := getFrameBuf(int(n))
	if _, err := io.ReadFull(r, *bp); err != nil {
		putFrameBuf(bp)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	cmd, err := decodeFrameContent(*bp)
	if err != nil || len(cmd.Body) == 0 {
		putFrameBuf(bp)
		return cmd, err
	}
	cmd.frame = bp
	return cmd, nil
}

// Pooled frame buffers come in power-of-two size classes from
// minPooledFrame to maxPooledFrame bytes, one sync.Pool per class.
const (
	minPooledFrameShift = 9 // 512 bytes
	maxPooledFrameShift = 16
	maxPooledFrame      = 1 << maxPooledFrameShift // 64 KiB
)

var framePools [maxPooledFrameShift - minPooledFrameShift + 1]sync.Pool

// frameClass returns the pool index for a buffer of n bytes (n <=
// maxPooledFrame): the smallest class whose size is at least n.
func frameClass(n int) int {
	if n <= 1<<minPooledFrameShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledFrameShift
}

// getFrameBuf returns a pooled buffer of length n (n <= maxPooledFrame).
func getFrameBuf(n int) *[]byte {
	cl := frameClass(n)
	if v := framePools[cl].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<(cl+minPooledFrameShift))
	return &b
}

// putFrameBuf returns a buffer from getFrameBuf to its pool. Nothing may
// reference the buffer afterwards.
func putFrameBuf(bp *[]byte) {
	c := cap(*bp)
	cl := frameClass(c)
	if c > maxPooledFrame || 1<<(cl+minPooledFrameShift) != c {
		return
	}
	*bp = (*bp)[:0]
	framePools[cl].Put(bp)
}

// readChunk is the most ReadFrame allocates ahead of the bytes it has
// received.
const readChunk = 64 << 10

// readFull reads exactly n bytes. Up to readChunk it allocates n at once;
// beyond that the buffer grows (doubling) as data arrives, so a peer that
// announces a large frame and sends less makes us allocate in proportion to
// what it sent, not to what it announced. The total allocated stays under 2n.
func readFull(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, readChunk))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if got == n {
			return buf, nil
		}
		grown := make([]byte, min(n, 2*len(buf)))
		copy(grown, buf)
		buf = grown
	}
}

// checkFrameLength validates a length prefix before anything is allocated.
func checkFrameLength(n uint32, maxFrameSize int) error {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	if uint64(n)+lengthFieldSize > uint64(maxFrameSize) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, uint64(n)+lengthFieldSize, maxFrameSize)
	}
	if n < metaFieldSize {
		return fmt.Errorf("%w: length %d is shorter than the header length field", ErrMalformedFrame, n)
	}
	return nil
}

// decodeFrameContent decodes a frame without its length prefix. The body of
// the result aliases b.
func decodeFrameContent(b []byte) (*Command, error) {
	meta := binary.BigEndian.Uint32(b)
	st := SerializeType(meta >> 24)
	hdrLen := int(meta & maxHeaderLen)
	if hdrLen > len(b)-metaFieldSize {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d bytes after it", ErrMalformedFrame, hdrLen, len(b)-metaFieldSize)
	}
	cmd, err := DecodeHeader(st, b[metaFieldSize:metaFieldSize+hdrLen])
	if err != nil {
		return nil, err
	}
	if body := b[metaFieldSize+hdrLen:]; len(body) > 0 {
		cmd.Body = body[:len(body):len(body)]
	}
	return cmd, nil
}

// DecodeHeader decodes a header in the given serialization. It copies what it
// keeps, so header may be reused afterwards. Errors wrap ErrMalformedFrame.
func DecodeHeader(st SerializeType, header []byte) (*Command, error) {
	switch st {
	case SerializeJSON:
		return decodeJSONHeader(header)
	case SerializeRocketMQ:
		return decodeBinaryHeader(header)
	default:
		return nil, fmt.Errorf("%w: unknown serialize type %d", ErrMalformedFrame, st)
	}
}
