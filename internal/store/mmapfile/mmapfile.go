// Package mmapfile holds the memory-mapped-file primitives the store's
// derived files (consume queues, index) are built on: map a preallocated
// file, msync a range, unmap, release mapped pages from the resident set
// (DontNeed, Resident); and the preallocation the commit log uses.
package mmapfile

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// Map opens (creating it if create is set) the file at path, makes it
// exactly size bytes long (preallocating blocks so that writes through the
// mapping cannot hit ENOSPC as SIGBUS) and maps it read-write and shared. The
// file descriptor is closed before returning: the mapping keeps the file
// alive. resized reports whether the on-disk size had to be changed.
func Map(path string, size int, create bool) (data []byte, resized bool, err error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size() != int64(size) {
		resized = true
		if st.Size() > int64(size) {
			if err := f.Truncate(int64(size)); err != nil {
				return nil, false, fmt.Errorf("truncate %s: %w", path, err)
			}
		} else if err := Preallocate(f, st.Size(), int64(size)); err != nil {
			return nil, false, fmt.Errorf("preallocate %s: %w", path, err)
		}
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, false, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, resized, nil
}

// Unmap releases a mapping made by Map.
func Unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return syscall.Munmap(b)
}

// Msync flushes the mapped range b (which must start on a page boundary) to
// stable storage.
func Msync(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, _, errno := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MS_SYNC)
	if errno != 0 {
		return errno
	}
	return nil
}
