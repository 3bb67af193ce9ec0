package mmapfile

import (
	"errors"
	"os"
	"syscall"
)

// Preallocate extends f from cur to size bytes with real blocks
// (fallocate), so that later writes cannot fail for lack of space; where
// the file system does not support it, it falls back to a sparse truncate.
func Preallocate(f *os.File, cur, size int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, cur, size-cur)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
			return f.Truncate(size)
		default:
			return err
		}
	}
}
