package remoting

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// The ROCKETMQ binary header (Java RocketMQSerializable), big-endian:
//
//	code int16 | language byte | version int16 | opaque int32 | flag int32 |
//	remarkLen int32 | remark | extLen int32 | ext
//
// ext is a sequence of keyLen int16 | key | valLen int32 | val.
const binaryFixedLen = 2 + 1 + 2 + 4 + 4 + 4 + 4

// languageNames maps Java's LanguageCode bytes to their names.
var languageNames = [...]string{
	0: "JAVA", 1: "CPP", 2: "DOTNET", 3: "PYTHON", 4: "DELPHI", 5: "ERLANG", 6: "RUBY",
	7: "OTHER", 8: "HTTP", 9: "GO", 10: "PHP", 11: "OMS", 12: "RUST", 13: "NODE_JS",
}

const languageGo = 9

// languageName returns the name of a language byte; an unknown byte is
// named by its decimal value so that it survives a re-encode.
func languageName(b byte) string {
	if int(b) < len(languageNames) {
		return languageNames[b]
	}
	return strconv.Itoa(int(b))
}

// languageByte is the inverse of languageName. The empty name is GO, our
// default; a name it does not know is OTHER.
func languageByte(name string) byte {
	switch name {
	case "", "GO":
		return languageGo
	case "JAVA":
		return 0
	}
	for i, n := range languageNames {
		if n == name {
			return byte(i)
		}
	}
	if n, err := strconv.ParseUint(name, 10, 8); err == nil {
		return byte(n)
	}
	return 7 // OTHER
}

func appendBinaryHeader(dst []byte, c *Command) ([]byte, error) {
	if c.Code < math.MinInt16 || c.Code > math.MaxInt16 {
		return dst, fmt.Errorf("%w: code %d does not fit the int16 of the binary header", ErrInvalidCommand, c.Code)
	}
	if c.Version < math.MinInt16 || c.Version > math.MaxInt16 {
		return dst, fmt.Errorf("%w: version %d does not fit the int16 of the binary header", ErrInvalidCommand, c.Version)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Code)))
	dst = append(dst, languageByte(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Version)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	if len(c.Remark) > maxHeaderLen {
		return dst, fmt.Errorf("%w: remark of %d bytes", ErrFrameTooLarge, len(c.Remark))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	extPos := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, f := range c.ExtFields {
		k, v := f.Key, f.Value
		if len(k) > math.MaxInt16 {
			return dst, fmt.Errorf("%w: ext key of %d bytes does not fit the int16 key length", ErrInvalidCommand, len(k))
		}
		if len(v) > maxHeaderLen {
			return dst, fmt.Errorf("%w: ext field %q of %d bytes", ErrFrameTooLarge, k, len(v))
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	extLen := len(dst) - extPos - 4
	if extLen > maxHeaderLen {
		return dst, fmt.Errorf("%w: ext fields of %d bytes", ErrFrameTooLarge, extLen)
	}
	binary.BigEndian.PutUint32(dst[extPos:], uint32(extLen))
	return dst, nil
}

// decodeBinaryHeader decodes a ROCKETMQ binary header. Like Java, it treats a
// remark or ext length <= 0 as empty and ignores bytes after the ext fields;
// a negative key or value length, or any length running past the header, is
// malformed. Every length is checked against the header before it is used.
func decodeBinaryHeader(h []byte) (*Command, error) {
	if len(h) < binaryFixedLen {
		return nil, binaryErr("header of %d bytes is shorter than the %d fixed bytes", len(h), binaryFixedLen)
	}
	c := newDecoded()
	c.SerializeType = SerializeRocketMQ
	c.Code = int32(int16(binary.BigEndian.Uint16(h[0:])))
	c.Language = languageName(h[2])
	c.Version = int32(int16(binary.BigEndian.Uint16(h[3:])))
	c.Opaque = int32(binary.BigEndian.Uint32(h[5:]))
	c.Flag = int32(binary.BigEndian.Uint32(h[9:]))
	// One copy of the header; remark, keys and values are substrings of it.
	s := string(h)
	p := 13
	remarkLen := int(int32(binary.BigEndian.Uint32(h[p:])))
	p += 4
	if remarkLen > 0 {
		if remarkLen > len(h)-p {
			return nil, binaryErr("remark length %d exceeds the %d header bytes left", remarkLen, len(h)-p)
		}
		c.Remark = s[p : p+remarkLen]
		p += remarkLen
	}
	if len(h)-p < 4 {
		return nil, binaryErr("header ends before the ext length")
	}
	extLen := int(int32(binary.BigEndian.Uint32(h[p:])))
	p += 4
	if extLen <= 0 {
		return c, nil
	}
	if extLen > len(h)-p {
		return nil, binaryErr("ext length %d exceeds the %d header bytes left", extLen, len(h)-p)
	}
	end := p + extLen
	for p < end {
		if end-p < 2 {
			return nil, binaryErr("ext entry at %d: truncated key length", p)
		}
		kl := int(int16(binary.BigEndian.Uint16(h[p:])))
		p += 2
		if kl < 0 || kl > end-p {
			return nil, binaryErr("ext entry at %d: key length %d out of range", p-2, kl)
		}
		key := s[p : p+kl]
		p += kl
		if end-p < 4 {
			return nil, binaryErr("ext key %q: truncated value length", key)
		}
		vl := int(int32(binary.BigEndian.Uint32(h[p:])))
		p += 4
		if vl < 0 || vl > end-p {
			return nil, binaryErr("ext key %q: value length %d out of range", key, vl)
		}
		c.addDecoded(key, s[p:p+vl])
		p += vl
	}
	c.ExtFields = c.ExtFields.dedupe()
	return c, nil
}

func binaryErr(format string, args ...any) error {
	return fmt.Errorf("%w: binary header: %s", ErrMalformedFrame, fmt.Sprintf(format, args...))
}
