package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/txmq/txmq/internal/store/mmapfile"
)

// segmentFile is the part of a segment's file the commit log writes
// through. The default is *osSegmentFile; Config.wrapFile lets tests wrap
// it to inject ENOSPC or EIO on write and on fsync.
type segmentFile interface {
	WriteAt(p []byte, off int64) (int, error)
	// Datasync makes written data durable (fdatasync(2)).
	Datasync() error
	Close() error
}

type osSegmentFile struct {
	f  *os.File
	fd int
}

func (o *osSegmentFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osSegmentFile) Close() error                             { return o.f.Close() }
func (o *osSegmentFile) Datasync() error {
	for {
		err := syscall.Fdatasync(o.fd)
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
			}
			return nil
		}
	}
}

// segment is one commit-log file. Reads go through data, a read-only
// shared mapping of the whole preallocated file; writes go through f
// (pwrite). Linux keeps both views coherent (one page cache).
type segment struct {
	start int64 // commit-log offset of its first byte (= file name)
	path  string
	f     segmentFile
	data  []byte // mmap(PROT_READ, MAP_SHARED), len = segment size

	// Resident-page trimming (trim.go): lowTouch is the lowest position
	// (relative) read through data since the last trim round, or the
	// segment size for none; trimmed is where the last round's trimming
	// ended (only the trimmer writes it).
	lowTouch atomic.Int64
	trimmed  atomic.Int64
}

// touch notes a read of data at rel. Reads mostly go forward, so this is
// usually one atomic load.
func (s *segment) touch(rel int64) {
	for {
		cur := s.lowTouch.Load()
		if rel >= cur || s.lowTouch.CompareAndSwap(cur, rel) {
			return
		}
	}
}

func segmentName(start int64) string {
	return fmt.Sprintf("%0*d", segmentNameDigits, start)
}

// parseSegmentName returns the start offset a segment file name encodes.
func parseSegmentName(name string) (int64, bool) {
	if len(name) != segmentNameDigits {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name, 10, 64)
	return v, err == nil
}

// openSegment opens (create: creates and preallocates) the segment
// starting at start. An existing empty file (a crash while it was being
// created) is preallocated; one of another size is ErrCorrupt.
func openSegment(dir string, start, size int64, create bool, wrap func(segmentFile) segmentFile) (*segment, error) {
	path := filepath.Join(dir, segmentName(start))
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		if create {
			os.Remove(path)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	// A new segment is created empty and preallocated in one step, so a
	// crash can leave it empty but not partly sized.
	if st.Size() != size && st.Size() != 0 {
		return fail(fmt.Errorf("%w: segment %s is %d bytes, SegmentSize is %d (was the segment size changed?)", ErrCorrupt, path, st.Size(), size))
	}
	if st.Size() < size {
		if err := mmapfile.Preallocate(f, st.Size(), size); err != nil {
			return fail(fmt.Errorf("preallocate %s: %w", path, err))
		}
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fail(&os.PathError{Op: "mmap", Path: path, Err: err})
	}
	var sf segmentFile = &osSegmentFile{f: f, fd: int(f.Fd())}
	if wrap != nil {
		sf = wrap(sf)
	}
	seg := &segment{start: start, path: path, f: sf, data: data}
	seg.lowTouch.Store(size)
	return seg, nil
}

// Linux fallocate(2) modes.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

// zeroFrom makes bytes [off, size) of the segment file zero and durable:
// a recovered torn tail must not come back after the next crash.
func (s *segment) zeroFrom(off, size int64) error {
	if off >= size {
		return nil
	}
	osf, ok := unwrapOS(s.f)
	if !ok {
		return errors.New("zero tail: not an OS file")
	}
	fd := osf.fd
	var err error
	for _, mode := range []uint32{fallocZeroRange | fallocKeepSize, fallocPunchHole | fallocKeepSize} {
		for {
			err = syscall.Fallocate(fd, mode, off, size-off)
			if err != syscall.EINTR {
				break
			}
		}
		if err == nil {
			break
		}
	}
	if err != nil { // no fallocate modes: write zeros
		zero := make([]byte, 1<<20)
		for p := off; p < size; {
			n := int64(len(zero))
			if size-p < n {
				n = size - p
			}
			if _, err := osf.f.WriteAt(zero[:n], p); err != nil {
				return err
			}
			p += n
		}
	}
	return osf.f.Sync()
}

// unwrappable is implemented by test wrappers so that zeroFrom can reach
// the OS file.
type unwrappable interface{ Unwrap() segmentFile }

func unwrapOS(f segmentFile) (*osSegmentFile, bool) {
	for {
		switch v := f.(type) {
		case *osSegmentFile:
			return v, true
		case unwrappable:
			f = v.Unwrap()
		default:
			return nil, false
		}
	}
}

// close unmaps and closes the segment.
func (s *segment) close() error {
	var err error
	if s.data != nil {
		err = syscall.Munmap(s.data)
		s.data = nil
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}
