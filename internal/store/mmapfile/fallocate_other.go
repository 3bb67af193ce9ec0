//go:build !linux

package mmapfile

import "os"

// Preallocate extends f to size bytes (sparse on this platform).
func Preallocate(f *os.File, _, size int64) error { return f.Truncate(size) }
