//go:build !linux

package mmapfile

// DontNeed is a no-op on this platform (see the Linux version).
func DontNeed(b []byte) error { return nil }
