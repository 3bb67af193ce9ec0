package message

import (
	"fmt"
	"strings"
)

// ValidatePropertiesString is ValidateProperties for a string, without
// converting it (the store checks every appended message with it, so it
// must not allocate). It accepts exactly what ValidateProperties accepts.
func ValidatePropertiesString(s string) error {
	if len(s) == 0 {
		return nil
	}
	if s[len(s)-1] != PropertySeparator {
		return fmt.Errorf("%w: does not end with the separator", ErrBadProperties)
	}
	for len(s) > 0 {
		i := strings.IndexByte(s, PropertySeparator)
		item := s[:i]
		s = s[i+1:]
		j := strings.IndexByte(item, NameValueSeparator)
		if j <= 0 || strings.IndexByte(item[j+1:], NameValueSeparator) >= 0 {
			return fmt.Errorf("%w: entry %q", ErrBadProperties, item)
		}
	}
	return nil
}
