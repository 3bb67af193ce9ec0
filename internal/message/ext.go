package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Magic codes of a commit-log record.
const (
	// MagicV1 marks a record whose topic length is one byte. Every record
	// txmq writes uses it.
	MagicV1 int32 = -626843481 // 0xDAA320A7
	// MagicV2 marks a record whose topic length is two bytes. Accepted by
	// Parse, never written.
	MagicV2 int32 = -626843477 // 0xDAA320AB
	// MagicBlank marks the filler that ends a commit-log segment when the
	// next record does not fit in it.
	MagicBlank int32 = -875286124 // 0xCBD43194
)

// System flag bits (RocketMQ MessageSysFlag).
const (
	FlagCompressed      int32 = 0x1
	FlagMultiTags       int32 = 0x2
	FlagTransactionMask int32 = 0xC
	FlagTransNone       int32 = 0x0
	FlagTransPrepared   int32 = 0x4
	FlagTransCommit     int32 = 0x8
	FlagTransRollback   int32 = 0xC
	FlagBornHostV6      int32 = 0x10
	FlagStoreHostV6     int32 = 0x20
	FlagNeedUnwrap      int32 = 0x40
	FlagInnerBatch      int32 = 0x80
)

// Limits of the encoding.
const (
	// MaxTopicLen is the longest topic a V1 record can carry so that
	// clients reading the length as a signed byte still work.
	MaxTopicLen = 127
	// MaxPropertiesLen is the longest encoded properties string.
	MaxPropertiesLen = 32767
	// fixedLen is the size of every field but the two hosts and the three
	// variable-length payloads.
	fixedLen = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 4 + 8 + 4 + 1 + 2
	// MinRecordLen is the smallest possible record (IPv4 hosts, empty
	// body, one-byte topic, no properties).
	MinRecordLen = fixedLen + 8 + 8 + 1
)

// Byte positions of the fixed fields, for code that patches a record in place.
const (
	PosTotalSize      = 0
	PosMagic          = 4
	PosBodyCRC        = 8
	PosQueueID        = 12
	PosFlag           = 16
	PosQueueOffset    = 20
	PosPhysicalOffset = 28
	PosSysFlag        = 36
	PosBornTimestamp  = 40
	PosBornHost       = 48
)

// Errors returned by Parse and Encode. Each is wrapped with detail.
var (
	// ErrShortRecord means the buffer ends before the record does.
	ErrShortRecord = errors.New("message: record truncated")
	// ErrBadMagic means the magic code is not a known record magic.
	ErrBadMagic = errors.New("message: bad magic code")
	// ErrBadLength means the declared lengths are inconsistent.
	ErrBadLength = errors.New("message: inconsistent record lengths")
	// ErrBodyCRC means the body does not match its stored CRC.
	ErrBodyCRC = errors.New("message: body CRC mismatch")
	// ErrBadProperties means the properties are not in key\x01value\x02 form.
	ErrBadProperties = errors.New("message: malformed properties")
	// ErrTooLarge means a field is longer than the encoding allows.
	ErrTooLarge = errors.New("message: field too long for the encoding")
)

// Ext is a stored message: RocketMQ's MessageExt.
type Ext struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	CommitLogOffset           int64 // PHYSICALOFFSET: the record's position in the commit log
	SysFlag                   int32 // host IPv6 bits are derived from the hosts on encode
	BornTimestamp             int64 // ms since the epoch, the producer's clock
	BornHost                  netip.AddrPort
	StoreTimestamp            int64 // ms since the epoch, the broker's clock
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	BodyCRC                   int32 // set by AppendTo; read by Parse
	Body                      []byte
	Properties                string // encoded, see EncodeProperties
}

func hostLen(a netip.AddrPort) int {
	if isV6(a) {
		return 20
	}
	return 8
}

func isV6(a netip.AddrPort) bool {
	ad := a.Addr()
	return ad.IsValid() && ad.Is6() && !ad.Is4In6()
}

// EncodedLen is the number of bytes AppendTo writes for m.
func (m *Ext) EncodedLen() int {
	return fixedLen + hostLen(m.BornHost) + hostLen(m.StoreHost) + len(m.Body) + len(m.Topic) + len(m.Properties)
}

// Validate reports whether m can be encoded.
func (m *Ext) Validate() error {
	if len(m.Topic) == 0 || len(m.Topic) > MaxTopicLen {
		return fmt.Errorf("%w: topic length %d (1..%d)", ErrTooLarge, len(m.Topic), MaxTopicLen)
	}
	if len(m.Properties) > MaxPropertiesLen {
		return fmt.Errorf("%w: properties length %d (max %d)", ErrTooLarge, len(m.Properties), MaxPropertiesLen)
	}
	if int64(m.EncodedLen()) > 1<<31-1 {
		return fmt.Errorf("%w: record of %d bytes", ErrTooLarge, m.EncodedLen())
	}
	return nil
}

// BodyCRC32 is RocketMQ's body checksum: CRC-32 (IEEE) with the sign bit cleared.
func BodyCRC32(body []byte) int32 {
	return int32(crc32.ChecksumIEEE(body) & 0x7fffffff)
}

// AppendTo appends the V1 encoding of m to dst and returns the extended
// slice. It computes the body CRC and sets the host IPv6 flags. It does not
// validate: call Validate first for untrusted input.
func (m *Ext) AppendTo(dst []byte) []byte {
	n := m.EncodedLen()
	start := len(dst)
	dst = grow(dst, n)
	b := dst[start : start+n]
	sys := m.SysFlag &^ (FlagBornHostV6 | FlagStoreHostV6)
	if isV6(m.BornHost) {
		sys |= FlagBornHostV6
	}
	if isV6(m.StoreHost) {
		sys |= FlagStoreHostV6
	}
	m.BodyCRC = BodyCRC32(m.Body)
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(n))
	mv1 := MagicV1
	be.PutUint32(b[4:], uint32(mv1))
	be.PutUint32(b[8:], uint32(m.BodyCRC))
	be.PutUint32(b[12:], uint32(m.QueueID))
	be.PutUint32(b[16:], uint32(m.Flag))
	be.PutUint64(b[20:], uint64(m.QueueOffset))
	be.PutUint64(b[28:], uint64(m.CommitLogOffset))
	be.PutUint32(b[36:], uint32(sys))
	be.PutUint64(b[40:], uint64(m.BornTimestamp))
	p := 48 + putHost(b[48:], m.BornHost)
	be.PutUint64(b[p:], uint64(m.StoreTimestamp))
	p += 8
	p += putHost(b[p:], m.StoreHost)
	be.PutUint32(b[p:], uint32(m.ReconsumeTimes))
	p += 4
	be.PutUint64(b[p:], uint64(m.PreparedTransactionOffset))
	p += 8
	be.PutUint32(b[p:], uint32(len(m.Body)))
	p += 4
	p += copy(b[p:], m.Body)
	b[p] = byte(len(m.Topic))
	p++
	p += copy(b[p:], m.Topic)
	be.PutUint16(b[p:], uint16(len(m.Properties)))
	p += 2
	copy(b[p:], m.Properties)
	return dst
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func putHost(b []byte, a netip.AddrPort) int {
	if isV6(a) {
		ip := a.Addr().As16()
		copy(b, ip[:])
		binary.BigEndian.PutUint32(b[16:], uint32(a.Port()))
		return 20
	}
	var ip [4]byte
	if a.Addr().IsValid() {
		ip = a.Addr().Unmap().As4()
	}
	copy(b, ip[:])
	binary.BigEndian.PutUint32(b[4:], uint32(a.Port()))
	return 8
}

func readHost(b []byte, v6 bool) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), uint16(binary.BigEndian.Uint32(b[16:])))
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(binary.BigEndian.Uint32(b[4:])))
}

// View is a validated, zero-copy view of one encoded record. Its methods
// read fields straight from the buffer; byte-slice results alias it.
type View struct {
	b          []byte // exactly the record
	storeTSPos int
	reconsPos  int
	bodyPos    int // first body byte
	bodyLen    int
	topicPos   int
	topicLen   int
	propsPos   int
	propsLen   int
}

// Parse validates the record at the start of b and returns a view of it.
// b may hold more bytes after the record; Len reports the record's size.
// Parse checks the magic, that every length is in bounds and that they add
// up to TOTALSIZE exactly. It does not check the body CRC (see VerifyCRC)
// nor the properties' form (see ValidateProperties).
func Parse(b []byte) (View, error) {
	var v View
	if len(b) < 8 {
		return v, fmt.Errorf("%w: %d bytes, need at least 8", ErrShortRecord, len(b))
	}
	be := binary.BigEndian
	total := int64(int32(be.Uint32(b)))
	magic := int32(be.Uint32(b[4:]))
	topicLenSize := 1
	switch magic {
	case MagicV1:
	case MagicV2:
		topicLenSize = 2
	default:
		return v, fmt.Errorf("%w: %#x", ErrBadMagic, uint32(magic))
	}
	if total < MinRecordLen || total > 1<<31-1 {
		return v, fmt.Errorf("%w: total size %d", ErrBadLength, total)
	}
	if total > int64(len(b)) {
		return v, fmt.Errorf("%w: total size %d, %d bytes available", ErrShortRecord, total, len(b))
	}
	r := b[:total]
	n := int(total)
	sys := int32(be.Uint32(r[PosSysFlag:]))
	p := PosBornHost + 8
	if sys&FlagBornHostV6 != 0 {
		p = PosBornHost + 20
	}
	v.storeTSPos = p
	p += 8
	if sys&FlagStoreHostV6 != 0 {
		p += 20
	} else {
		p += 8
	}
	v.reconsPos = p
	p += 4 + 8 // reconsume times, prepared tx offset
	if p+4 > n {
		return v, fmt.Errorf("%w: header runs past total size %d", ErrBadLength, n)
	}
	bodyLen := int64(int32(be.Uint32(r[p:])))
	p += 4
	if bodyLen < 0 || int64(p)+bodyLen > int64(n) {
		return v, fmt.Errorf("%w: body length %d in record of %d", ErrBadLength, bodyLen, n)
	}
	v.bodyPos, v.bodyLen = p, int(bodyLen)
	p += int(bodyLen)
	if p+topicLenSize > n {
		return v, fmt.Errorf("%w: topic length runs past total size", ErrBadLength)
	}
	var topicLen int
	if topicLenSize == 1 {
		topicLen = int(r[p])
	} else {
		topicLen = int(be.Uint16(r[p:]))
	}
	p += topicLenSize
	if topicLen == 0 || p+topicLen > n {
		return v, fmt.Errorf("%w: topic length %d", ErrBadLength, topicLen)
	}
	v.topicPos, v.topicLen = p, topicLen
	p += topicLen
	if p+2 > n {
		return v, fmt.Errorf("%w: properties length runs past total size", ErrBadLength)
	}
	propsLen := int(be.Uint16(r[p:]))
	p += 2
	if propsLen > MaxPropertiesLen || p+propsLen != n {
		return v, fmt.Errorf("%w: properties length %d leaves %d bytes", ErrBadLength, propsLen, n-p-propsLen)
	}
	v.propsPos, v.propsLen = p, propsLen
	v.b = r
	return v, nil
}

// Bytes returns the whole record.
func (v View) Bytes() []byte { return v.b }

// Len is the record's size in bytes (TOTALSIZE).
func (v View) Len() int { return len(v.b) }

// QueueID returns QUEUEID.
func (v View) QueueID() int32 { return int32(binary.BigEndian.Uint32(v.b[PosQueueID:])) }

// QueueOffset returns QUEUEOFFSET.
func (v View) QueueOffset() int64 { return int64(binary.BigEndian.Uint64(v.b[PosQueueOffset:])) }

// CommitLogOffset returns PHYSICALOFFSET.
func (v View) CommitLogOffset() int64 {
	return int64(binary.BigEndian.Uint64(v.b[PosPhysicalOffset:]))
}

// SysFlag returns SYSFLAG.
func (v View) SysFlag() int32 { return int32(binary.BigEndian.Uint32(v.b[PosSysFlag:])) }

// BornTimestamp returns BORNTIMESTAMP.
func (v View) BornTimestamp() int64 { return int64(binary.BigEndian.Uint64(v.b[PosBornTimestamp:])) }

// StoreTimestamp returns STORETIMESTAMP.
func (v View) StoreTimestamp() int64 { return int64(binary.BigEndian.Uint64(v.b[v.storeTSPos:])) }

// StoreTimestampPos is the byte position of STORETIMESTAMP in the record.
func (v View) StoreTimestampPos() int { return v.storeTSPos }

// ReconsumeTimes returns RECONSUMETIMES.
func (v View) ReconsumeTimes() int32 { return int32(binary.BigEndian.Uint32(v.b[v.reconsPos:])) }

// PreparedTransactionOffset returns PREPAREDTXOFFSET.
func (v View) PreparedTransactionOffset() int64 {
	return int64(binary.BigEndian.Uint64(v.b[v.reconsPos+4:]))
}

// Body returns the body as stored (compressed when FlagCompressed is set).
func (v View) Body() []byte { return v.b[v.bodyPos : v.bodyPos+v.bodyLen] }

// Topic returns the topic bytes.
func (v View) Topic() []byte { return v.b[v.topicPos : v.topicPos+v.topicLen] }

// Properties returns the encoded properties.
func (v View) Properties() []byte { return v.b[v.propsPos : v.propsPos+v.propsLen] }

// StoredBodyCRC returns BODYCRC.
func (v View) StoredBodyCRC() int32 { return int32(binary.BigEndian.Uint32(v.b[PosBodyCRC:])) }

// VerifyCRC checks the body against BODYCRC.
func (v View) VerifyCRC() error {
	if got, want := BodyCRC32(v.Body()), v.StoredBodyCRC(); got != want {
		return fmt.Errorf("%w: stored %#x, computed %#x", ErrBodyCRC, uint32(want), uint32(got))
	}
	return nil
}

// Ext decodes the view into a new Ext. Body is copied; strings are new.
func (v View) Ext() *Ext {
	be := binary.BigEndian
	sys := v.SysFlag()
	return &Ext{
		Topic:                     string(v.Topic()),
		QueueID:                   v.QueueID(),
		Flag:                      int32(be.Uint32(v.b[PosFlag:])),
		QueueOffset:               v.QueueOffset(),
		CommitLogOffset:           v.CommitLogOffset(),
		SysFlag:                   sys,
		BornTimestamp:             v.BornTimestamp(),
		BornHost:                  readHost(v.b[PosBornHost:], sys&FlagBornHostV6 != 0),
		StoreTimestamp:            v.StoreTimestamp(),
		StoreHost:                 readHost(v.b[v.storeTSPos+8:], sys&FlagStoreHostV6 != 0),
		ReconsumeTimes:            v.ReconsumeTimes(),
		PreparedTransactionOffset: v.PreparedTransactionOffset(),
		BodyCRC:                   v.StoredBodyCRC(),
		Body:                      append([]byte(nil), v.Body()...),
		Properties:                string(v.Properties()),
	}
}

// Flag returns FLAG.
func (v View) Flag() int32 { return int32(binary.BigEndian.Uint32(v.b[PosFlag:])) }

// BornHost returns BORNHOST.
func (v View) BornHost() netip.AddrPort {
	return readHost(v.b[PosBornHost:], v.SysFlag()&FlagBornHostV6 != 0)
}

// StoreHost returns STOREHOST.
func (v View) StoreHost() netip.AddrPort {
	return readHost(v.b[v.storeTSPos+8:], v.SysFlag()&FlagStoreHostV6 != 0)
}

// Decode parses and copies the record at the start of b. It returns the
// message and the number of bytes it occupied.
func Decode(b []byte) (*Ext, int, error) {
	v, err := Parse(b)
	if err != nil {
		return nil, 0, err
	}
	return v.Ext(), v.Len(), nil
}

// DecodeAll decodes a concatenation of records, as a pull response body
// carries them.
func DecodeAll(b []byte) ([]*Ext, error) {
	var out []*Ext
	for len(b) > 0 {
		m, n, err := Decode(b)
		if err != nil {
			return out, fmt.Errorf("record %d: %w", len(out), err)
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// SetQueueOffset patches QUEUEOFFSET of an encoded record in place.
func SetQueueOffset(rec []byte, off int64) {
	binary.BigEndian.PutUint64(rec[PosQueueOffset:], uint64(off))
}

// SetCommitLogOffset patches PHYSICALOFFSET of an encoded record in place.
func SetCommitLogOffset(rec []byte, off int64) {
	binary.BigEndian.PutUint64(rec[PosPhysicalOffset:], uint64(off))
}

// StoreTimestampPos returns the position of STORETIMESTAMP in an encoded
// record, which depends on the born host's address family.
func StoreTimestampPos(rec []byte) int {
	if int32(binary.BigEndian.Uint32(rec[PosSysFlag:]))&FlagBornHostV6 != 0 {
		return PosBornHost + 20
	}
	return PosBornHost + 8
}

// SetStoreTimestamp patches STORETIMESTAMP of an encoded record in place.
func SetStoreTimestamp(rec []byte, ms int64) {
	binary.BigEndian.PutUint64(rec[StoreTimestampPos(rec):], uint64(ms))
}
