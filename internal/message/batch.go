package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadBatch means a batch body is malformed.
var ErrBadBatch = errors.New("message: malformed batch body")

// BatchItem is one message of a batch send body.
type BatchItem struct {
	Flag       int32
	Body       []byte // aliases the batch body
	Properties string
}

// batchItemHeader: totalSize, magic, bodyCRC, flag, bodyLen.
const batchItemHeader = 4 * 5

// DecodeBatch splits a SEND_BATCH_MESSAGE body into its items. Each item is
// totalSize int32 | magic int32 | bodyCRC int32 | flag int32 | bodyLen int32 |
// body | propsLen int16 | props. maxItems bounds the work done on hostile
// input.
func DecodeBatch(b []byte, maxItems int) ([]BatchItem, error) {
	var items []BatchItem
	be := binary.BigEndian
	for off := 0; off < len(b); {
		if len(items) >= maxItems {
			return nil, fmt.Errorf("%w: more than %d messages", ErrBadBatch, maxItems)
		}
		rest := b[off:]
		if len(rest) < batchItemHeader+2 {
			return nil, fmt.Errorf("%w: item %d: %d trailing bytes", ErrBadBatch, len(items), len(rest))
		}
		total := int64(int32(be.Uint32(rest)))
		flag := int32(be.Uint32(rest[12:]))
		bodyLen := int64(int32(be.Uint32(rest[16:])))
		if bodyLen < 0 || batchItemHeader+bodyLen+2 > int64(len(rest)) {
			return nil, fmt.Errorf("%w: item %d: body length %d", ErrBadBatch, len(items), bodyLen)
		}
		p := batchItemHeader + int(bodyLen)
		body := rest[batchItemHeader:p]
		propsLen := int(be.Uint16(rest[p:]))
		p += 2
		if propsLen > MaxPropertiesLen || p+propsLen > len(rest) {
			return nil, fmt.Errorf("%w: item %d: properties length %d", ErrBadBatch, len(items), propsLen)
		}
		props := string(rest[p : p+propsLen])
		p += propsLen
		if total != int64(p) {
			return nil, fmt.Errorf("%w: item %d: total size %d, fields add up to %d", ErrBadBatch, len(items), total, p)
		}
		items = append(items, BatchItem{Flag: flag, Body: body, Properties: props})
		off += p
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrBadBatch)
	}
	return items, nil
}

// AppendBatchItem appends one item in the batch body encoding (as the
// official clients write it) to dst.
func AppendBatchItem(dst []byte, it BatchItem) []byte {
	n := batchItemHeader + len(it.Body) + 2 + len(it.Properties)
	start := len(dst)
	dst = grow(dst, n)
	b := dst[start:]
	be := binary.BigEndian
	be.PutUint32(b, uint32(n))
	be.PutUint32(b[4:], 0)
	be.PutUint32(b[8:], 0)
	be.PutUint32(b[12:], uint32(it.Flag))
	be.PutUint32(b[16:], uint32(len(it.Body)))
	p := batchItemHeader + copy(b[batchItemHeader:], it.Body)
	be.PutUint16(b[p:], uint16(len(it.Properties)))
	copy(b[p+2:], it.Properties)
	return dst
}
