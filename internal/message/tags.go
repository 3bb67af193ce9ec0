package message

import "unicode/utf16"

// TagsHashCode is Java's String.hashCode of tag, the tag code RocketMQ
// keeps in consume-queue entries and that consumers send in codeSet. It is
// computed over UTF-16 code units, as Java does; for ASCII tags it equals
// the official Go client's byte-wise hash.
func TagsHashCode(tag string) int64 {
	var h int32
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if c >= 0x80 {
			return hashUTF16(tag)
		}
		h = 31*h + int32(c)
	}
	return int64(h)
}

func hashUTF16(s string) int64 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return int64(h)
}
