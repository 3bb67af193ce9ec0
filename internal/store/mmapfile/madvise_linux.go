package mmapfile

import "syscall"

// DontNeed drops the process's page-table entries of b, a page-aligned part
// of a MAP_SHARED file mapping made by Map (or a read-only shared mapping
// of a file), with madvise(MADV_DONTNEED). The data is not lost: the pages
// stay in the page cache (dirty ones stay dirty and are written back as
// usual) and the next access maps them again with a minor fault. It only
// stops them from counting in the process's resident set. Never use it on
// a private or anonymous mapping: there it discards the contents.
func DontNeed(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}
