package consumequeue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/store/mmapfile"
)

// On-disk format constants.
const (
	// EntrySize is the size in bytes of one entry: commitLogOffset int64 |
	// size int32 | tagsCode int64, big-endian.
	EntrySize = 20
	// DefaultEntriesPerFile is RocketMQ's default number of entries per file
	// (6,000,000 bytes per file).
	DefaultEntriesPerFile = 300000
	// fileNameLen is the length of a file name: the zero-padded decimal byte
	// offset (entry index * EntrySize) of the file's first entry.
	fileNameLen = 20
	// fullScanFiles is how many of the newest files OpenQueue validates
	// entry by entry (besides the first file); older files are checked at
	// their first and last entries, as RocketMQ checks only recent files.
	fullScanFiles = 3
)

// Sentinel errors. They are returned wrapped with context; test with errors.Is.
var (
	// ErrOffsetGap is returned by Put when the queue offset is beyond
	// MaxOffset of a queue that holds entries.
	ErrOffsetGap = errors.New("consumequeue: queue offset beyond max offset")
	// ErrConflict is returned by Put when an entry already stored at the queue
	// offset differs from the one given.
	ErrConflict = errors.New("consumequeue: entry conflicts with the stored entry")
	// ErrOffsetTooSmall is returned by Read for a queue offset below MinOffset.
	ErrOffsetTooSmall = errors.New("consumequeue: queue offset below min offset")
	// ErrInvalidEntry is returned by Put for an entry with Size <= 0, a
	// negative commit-log offset or a negative queue offset, or one whose
	// commit-log offset is not greater than that of the entry before it.
	ErrInvalidEntry = errors.New("consumequeue: invalid entry")
	// ErrInvalidTopic is returned for a topic that cannot be a directory name
	// (empty, ".", "..", or containing '/', '\\' or NUL).
	ErrInvalidTopic = errors.New("consumequeue: invalid topic name")
	// ErrClosed is returned by every operation on a closed Queue or Set.
	ErrClosed = errors.New("consumequeue: closed")
)

// Entry is one consume-queue entry: where a message of the queue sits in the
// commit log, how long its record is and the hash of its tag.
type Entry struct {
	CommitLogOffset int64
	Size            int32
	TagsCode        int64
}

func putEntry(b []byte, e Entry) {
	_ = b[EntrySize-1]
	binary.BigEndian.PutUint64(b[0:], uint64(e.CommitLogOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(e.Size))
	binary.BigEndian.PutUint64(b[12:], uint64(e.TagsCode))
}

func getEntry(b []byte) Entry {
	_ = b[EntrySize-1]
	return Entry{
		CommitLogOffset: int64(binary.BigEndian.Uint64(b[0:])),
		Size:            int32(binary.BigEndian.Uint32(b[8:])),
		TagsCode:        int64(binary.BigEndian.Uint64(b[12:])),
	}
}

// Options configures queues. The zero value is usable.
type Options struct {
	// EntriesPerFile is the number of entries in each file; files are
	// EntriesPerFile*EntrySize bytes. 0 means DefaultEntriesPerFile. It must
	// not change between runs over the same files: files of another size are
	// resized on open, which loses or misplaces entries (they are derived data
	// and the store rebuilds them).
	EntriesPerFile int
	// Logger receives warnings about repaired files. nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.EntriesPerFile <= 0 {
		o.EntriesPerFile = DefaultEntriesPerFile
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// mappedFile is one file of a queue, mapped in full.
type mappedFile struct {
	base  int64  // logical offset of the file's first entry
	path  string // full path
	data  []byte // the mapping; len == entriesPerFile*EntrySize
	dirty atomic.Bool
	res   mmapfile.Resident // Put and Read touch it, Trim releases
}

func (f *mappedFile) entry(i int64) Entry { return getEntry(f.data[i*EntrySize:]) }

// Queue is the consume queue of one (topic, queueId).
//
// Concurrency: one writer (Put) and any number of concurrent readers (Read,
// Last, MinOffset, MaxOffset, SearchByTime). TruncateFrom, DeleteBefore, Sync,
// Close and Destroy may be called from other goroutines. See the package
// documentation for the locking scheme.
type Queue struct {
	// min and max are the first held and the next to be written logical
	// offsets. They are written only with mu held and read lock-free.
	min atomic.Int64
	max atomic.Int64
	// files is an immutable snapshot of the mapped files, contiguous and in
	// order (files[i].base == files[0].base + i*epf). A new slice is stored on
	// every change; load max before files.
	files  atomic.Pointer[[]*mappedFile]
	closed atomic.Bool
	// dirDirty is set when a file was created or removed in dir, parentsDirty
	// when dir itself (or its topic directory) was created; Sync fsyncs them.
	dirDirty     atomic.Bool
	parentsDirty atomic.Bool

	// mu serializes every mutating operation (Put, TruncateFrom,
	// DeleteBefore, Close, Destroy). Readers never take it.
	mu sync.Mutex
	// mapMu guards the mappings: holders of a read lock (Read, Last, Sync) may
	// touch the mapped memory of any file in the snapshot they loaded; a file
	// is unmapped only after it has been dropped from files and mapMu has been
	// write-locked once. TruncateFrom and a queue restart run wholly under
	// the write lock.
	mapMu sync.RWMutex
	// lastClo is the commit-log offset of the entry physically before max, or
	// -1; guarded by mu.
	lastClo int64

	topic    string
	id       int32
	root     string
	dir      string
	epf      int64
	fileSize int
	log      *slog.Logger
}

// validTopic reports whether topic can be used as a directory name.
func validTopic(topic string) bool {
	return topic != "" && topic != "." && topic != ".." && !strings.ContainsAny(topic, "/\\\x00")
}

// OpenQueue opens the consume queue of (topic, queueID) under root, loading
// its existing files from <root>/<topic>/<queueID>/. Nothing is created on
// disk until the first Put.
//
// Loading validates the entries (the first file and the newest
// fullScanFiles files entirely, files in between at their ends): the queue
// ends at the first entry with
// Size == 0 (Size < 0, a negative commit-log offset or a commit-log offset
// not greater than the previous one also end it, with a warning). Anything
// after the end (the rest of that file, later files, files out of sequence)
// is zeroed or removed, with a warning. Leading empty entries of the first
// file are skipped: MinOffset is the first non-empty one. Only I/O errors are
// returned; corrupt content is repaired, never reported as an error.
//
// After opening, MinOffset may point at entries whose commit-log records
// retention already removed (MinOffset is not persisted within a file); call
// DeleteBefore with the commit log's minimum offset to correct it.
func OpenQueue(root, topic string, queueID int32, opts Options) (*Queue, error) {
	if !validTopic(topic) {
		return nil, fmt.Errorf("open consume queue %q/%d: %w", topic, queueID, ErrInvalidTopic)
	}
	opts = opts.withDefaults()
	q := &Queue{
		topic:    topic,
		id:       queueID,
		root:     root,
		dir:      filepath.Join(root, topic, strconv.FormatInt(int64(queueID), 10)),
		epf:      int64(opts.EntriesPerFile),
		fileSize: opts.EntriesPerFile * EntrySize,
		lastClo:  -1,
	}
	q.log = opts.Logger.With("component", "consumequeue", "topic", topic, "queueId", queueID)
	empty := []*mappedFile{}
	q.files.Store(&empty)
	if err := q.load(); err != nil {
		q.unmapAll(*q.files.Load())
		return nil, err
	}
	return q, nil
}

// load maps the existing files and finds min and max.
func (q *Queue) load() error {
	des, err := os.ReadDir(q.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open consume queue %s: %w", q.dir, err)
	}
	type named struct {
		base int64
		path string
	}
	var names []named
	for _, de := range des {
		n := de.Name()
		p := filepath.Join(q.dir, n)
		if len(n) != fileNameLen || !de.Type().IsRegular() {
			q.log.Warn("ignoring unexpected file in consume queue directory", "path", p)
			continue
		}
		off, err := strconv.ParseInt(n, 10, 64)
		if err != nil || off < 0 || off%EntrySize != 0 {
			q.log.Warn("ignoring unexpected file in consume queue directory", "path", p)
			continue
		}
		names = append(names, named{off / EntrySize, p})
	}
	slices.SortFunc(names, func(a, b named) int { return compareInt64(a.base, b.base) })

	var files []*mappedFile
	for i, nm := range names {
		if i > 0 && nm.base != names[i-1].base+q.epf {
			for _, r := range names[i:] {
				q.log.Warn("removing consume queue file out of sequence", "path", r.path)
				q.removeFile(r.path)
			}
			break
		}
		data, resized, err := mmapfile.Map(nm.path, q.fileSize, false)
		if err != nil {
			q.unmapAll(files)
			return fmt.Errorf("open consume queue %s: %w", q.dir, err)
		}
		if resized {
			q.log.Warn("consume queue file had the wrong size; resized", "path", nm.path, "size", q.fileSize)
		}
		files = append(files, &mappedFile{base: nm.base, path: nm.path, data: data})
	}
	if len(files) == 0 {
		return nil
	}

	// Scan for the end.
	minOff, end := int64(-1), int64(-1)
	prev := int64(-1)
	endFile := len(files) - 1
scan:
	for fi, f := range files {
		if fi > 0 && fi < len(files)-fullScanFiles {
			// An older file was full and long synced: check its ends only.
			first, last := f.entry(0), f.entry(q.epf-1)
			if first.Size > 0 && last.Size > 0 && first.CommitLogOffset > prev &&
				last.CommitLogOffset >= first.CommitLogOffset+int64(q.epf-1) {
				prev = last.CommitLogOffset
				continue
			}
		}
		for i := int64(0); i < q.epf; i++ {
			e := f.entry(i)
			if e.Size == 0 && minOff < 0 && fi == 0 {
				continue // leading empty entries of the first file
			}
			if e.Size <= 0 || e.CommitLogOffset < 0 || e.CommitLogOffset <= prev {
				if e.Size != 0 {
					q.log.Warn("invalid consume queue entry ends the queue", "path", f.path,
						"offset", f.base+i, "commitLogOffset", e.CommitLogOffset, "size", e.Size)
				}
				end, endFile = f.base+i, fi
				break scan
			}
			if minOff < 0 {
				minOff = f.base + i
			}
			prev = e.CommitLogOffset
		}
		if minOff < 0 {
			// The first file holds nothing: the queue is empty.
			end, endFile = f.base+q.epf, 0
			break
		}
	}
	if end < 0 {
		end = files[len(files)-1].base + q.epf
	}
	if minOff < 0 {
		minOff, end = files[0].base, files[0].base
	}
	// Zero whatever follows the end in its file; remove later files.
	ef := files[endFile]
	if tail := ef.data[(end-ef.base)*EntrySize:]; !allZero(tail) {
		q.log.Warn("zeroing consume queue data past the end", "path", ef.path, "offset", end)
		clear(tail)
		ef.dirty.Store(true)
	}
	for _, f := range files[endFile+1:] {
		q.log.Warn("removing consume queue file past the end", "path", f.path)
		_ = mmapfile.Unmap(f.data)
		q.removeFile(f.path)
	}
	files = files[:endFile+1]
	q.files.Store(&files)
	q.min.Store(minOff)
	q.max.Store(end)
	if end > minOff {
		q.lastClo = prev
	}
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (q *Queue) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("cannot remove consume queue file", "path", path, "err", err)
	}
	q.dirDirty.Store(true)
}

func (q *Queue) unmapAll(files []*mappedFile) {
	for _, f := range files {
		_ = mmapfile.Unmap(f.data)
		f.data = nil
	}
}

// Topic returns the queue's topic.
func (q *Queue) Topic() string { return q.topic }

// QueueID returns the queue's id.
func (q *Queue) QueueID() int32 { return q.id }

// MinOffset returns the first logical offset still held.
func (q *Queue) MinOffset() int64 { return q.min.Load() }

// MaxOffset returns the next logical offset to be written. The queue holds
// the entries [MinOffset, MaxOffset).
func (q *Queue) MaxOffset() int64 { return q.max.Load() }

// Put stores e at queueOffset.
//
//   - queueOffset == MaxOffset: the entry is appended.
//   - queueOffset < MaxOffset: if the stored entry equals e, Put returns nil
//     (idempotent re-dispatch); otherwise ErrConflict. Below MinOffset the
//     entry is no longer held and Put returns nil.
//   - queueOffset > MaxOffset: ErrOffsetGap, unless the queue holds no
//     entries (MinOffset == MaxOffset), in which case every old file is
//     removed and the queue restarts at queueOffset (MinOffset = queueOffset).
//
// e must have Size > 0 and a commit-log offset greater than that of the
// entry before it, else ErrInvalidEntry. The append is a 20-byte copy into
// the mapping: no syscall, no allocation, except when a new file is started.
func (q *Queue) Put(queueOffset int64, e Entry) error {
	if e.Size <= 0 || e.CommitLogOffset < 0 || queueOffset < 0 {
		return fmt.Errorf("put %s offset %d (commitLogOffset %d size %d): %w",
			q.dir, queueOffset, e.CommitLogOffset, e.Size, ErrInvalidEntry)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("put %s: %w", q.dir, ErrClosed)
	}
	maxOff := q.max.Load()
	switch {
	case queueOffset == maxOff:
	case queueOffset < maxOff:
		return q.checkStoredLocked(queueOffset, e)
	case q.min.Load() == maxOff:
		q.restartLocked(queueOffset)
	default:
		return fmt.Errorf("put %s offset %d: max offset is %d: %w", q.dir, queueOffset, maxOff, ErrOffsetGap)
	}
	if e.CommitLogOffset <= q.lastClo {
		return fmt.Errorf("put %s offset %d: commit-log offset %d not above previous %d: %w",
			q.dir, queueOffset, e.CommitLogOffset, q.lastClo, ErrInvalidEntry)
	}
	files := *q.files.Load()
	var f *mappedFile
	if len(files) > 0 {
		f = files[len(files)-1]
	}
	if f == nil || queueOffset-f.base >= q.epf {
		base := queueOffset
		if f != nil {
			base = f.base + q.epf
		}
		nf, err := q.newFileLocked(base)
		if err != nil {
			return err
		}
		ns := make([]*mappedFile, len(files)+1)
		copy(ns, files)
		ns[len(files)] = nf
		q.files.Store(&ns)
		f = nf
	}
	putEntry(f.data[(queueOffset-f.base)*EntrySize:], e)
	f.res.Touch()
	if !f.dirty.Load() {
		f.dirty.Store(true)
	}
	q.lastClo = e.CommitLogOffset
	q.max.Store(queueOffset + 1)
	return nil
}

// checkStoredLocked handles a Put below MaxOffset.
func (q *Queue) checkStoredLocked(queueOffset int64, e Entry) error {
	if queueOffset < q.min.Load() {
		return nil
	}
	f := q.fileFor(*q.files.Load(), queueOffset)
	if f == nil {
		return nil
	}
	got := f.entry(queueOffset - f.base)
	if got != e {
		return fmt.Errorf("put %s offset %d: stored %+v, new %+v: %w", q.dir, queueOffset, got, e, ErrConflict)
	}
	return nil
}

// restartLocked drops every file of an entry-less queue and restarts it at
// off. q.mu must be held.
func (q *Queue) restartLocked(off int64) {
	q.mapMu.Lock()
	old := *q.files.Load()
	empty := []*mappedFile{}
	q.files.Store(&empty)
	q.min.Store(off)
	q.max.Store(off)
	q.lastClo = -1
	q.mapMu.Unlock()
	for _, f := range old {
		_ = mmapfile.Unmap(f.data)
		q.removeFile(f.path)
	}
}

// newFileLocked creates, preallocates and maps the file whose first entry is
// at logical offset base.
func (q *Queue) newFileLocked(base int64) (*mappedFile, error) {
	if _, err := os.Stat(q.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(q.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create consume queue dir %s: %w", q.dir, err)
		}
		q.parentsDirty.Store(true)
	}
	path := filepath.Join(q.dir, fmt.Sprintf("%020d", base*EntrySize))
	data, _, err := mmapfile.Map(path, q.fileSize, true)
	if errors.Is(err, os.ErrExist) {
		// A stale file (e.g. left by a failed removal): replace it.
		_ = os.Remove(path)
		data, _, err = mmapfile.Map(path, q.fileSize, true)
	}
	if err != nil {
		return nil, fmt.Errorf("create consume queue file: %w", err)
	}
	q.dirDirty.Store(true)
	return &mappedFile{base: base, path: path, data: data}, nil
}

// fileFor returns the file of files holding logical offset off, or nil.
func (q *Queue) fileFor(files []*mappedFile, off int64) *mappedFile {
	if len(files) == 0 || off < files[0].base {
		return nil
	}
	i := (off - files[0].base) / q.epf
	if i >= int64(len(files)) {
		return nil
	}
	return files[i]
}

// Read copies up to len(dst) entries starting at queueOffset into dst and
// returns how many it copied: 0 at or after MaxOffset, ErrOffsetTooSmall
// below MinOffset. It never returns an entry at or beyond MaxOffset and does
// not allocate on success.
func (q *Queue) Read(queueOffset int64, dst []Entry) (int, error) {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed.Load() {
		return 0, ErrClosed
	}
	maxOff := q.max.Load() // before files: see Queue.files
	files := *q.files.Load()
	if queueOffset < q.min.Load() || len(files) > 0 && queueOffset < files[0].base {
		return 0, fmt.Errorf("read %s offset %d: min offset is %d: %w", q.dir, queueOffset, q.min.Load(), ErrOffsetTooSmall)
	}
	n := 0
	for off := queueOffset; n < len(dst) && off < maxOff; {
		f := q.fileFor(files, off)
		if f == nil {
			break
		}
		i := off - f.base
		f.res.Touch()
		for ; i < q.epf && n < len(dst) && off < maxOff; i, off, n = i+1, off+1, n+1 {
			dst[n] = f.entry(i)
		}
	}
	return n, nil
}

// Last returns the entry at MaxOffset-1, if the queue holds any entry.
func (q *Queue) Last() (Entry, bool) {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed.Load() {
		return Entry{}, false
	}
	maxOff := q.max.Load()
	files := *q.files.Load()
	if maxOff <= q.min.Load() {
		return Entry{}, false
	}
	f := q.fileFor(files, maxOff-1)
	if f == nil {
		return Entry{}, false
	}
	f.res.Touch()
	return f.entry(maxOff - 1 - f.base), true
}

// TruncateFrom removes every entry whose CommitLogOffset >= commitLogOffset
// (recovery after the commit log was cut back). The removed entries are
// zeroed and MaxOffset moves back; files left without entries are removed.
// Readers are blocked for its duration.
func (q *Queue) TruncateFrom(commitLogOffset int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed.Load() {
		return fmt.Errorf("truncate %s: %w", q.dir, ErrClosed)
	}
	q.mapMu.Lock()
	defer q.mapMu.Unlock()
	files := *q.files.Load()
	minOff, maxOff := q.min.Load(), q.max.Load()
	// Entries in [minOff, maxOff) are strictly increasing in commit-log offset.
	k := minOff + int64(sort.Search(int(maxOff-minOff), func(i int) bool {
		f := q.fileFor(files, minOff+int64(i))
		return f == nil || f.entry(minOff+int64(i)-f.base).CommitLogOffset >= commitLogOffset
	}))
	if k >= maxOff {
		return nil
	}
	keep := len(files)
	for i, f := range files {
		if i > 0 && f.base >= k {
			keep = i
			break
		}
	}
	for i, f := range files[:keep] {
		from := max(k, f.base) - f.base
		to := min(maxOff, f.base+q.epf) - f.base
		if from < to {
			clear(f.data[from*EntrySize : to*EntrySize])
			files[i].dirty.Store(true)
		}
	}
	removed := files[keep:]
	ns := slices.Clone(files[:keep])
	q.files.Store(&ns)
	q.max.Store(k)
	q.lastClo = -1
	if f := q.fileFor(ns, k-1); f != nil {
		if e := f.entry(k - 1 - f.base); e.Size > 0 {
			q.lastClo = e.CommitLogOffset
		}
	}
	// mapMu is write-locked: no reader can be using the removed files.
	for _, f := range removed {
		_ = mmapfile.Unmap(f.data)
		q.removeFile(f.path)
	}
	return nil
}

// DeleteBefore removes whole files all of whose entries point below
// minCommitLogOffset (never the last file, the one being written) and moves
// MinOffset to the first entry with CommitLogOffset >= minCommitLogOffset
// (MaxOffset if there is none). It returns the number of files removed.
func (q *Queue) DeleteBefore(minCommitLogOffset int64) (removedFiles int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed.Load() {
		return 0, fmt.Errorf("delete before in %s: %w", q.dir, ErrClosed)
	}
	files := *q.files.Load()
	minOff, maxOff := q.min.Load(), q.max.Load()
	n := 0
	for n < len(files)-1 && files[n].entry(q.epf-1).CommitLogOffset < minCommitLogOffset {
		n++
	}
	newMin := minOff
	if len(files) > 0 {
		f := files[n]
		lo := max(minOff, f.base)
		hi := min(maxOff, f.base+q.epf)
		if lo < hi {
			newMin = lo + int64(sort.Search(int(hi-lo), func(i int) bool {
				return f.entry(lo+int64(i)-f.base).CommitLogOffset >= minCommitLogOffset
			}))
		} else {
			newMin = max(minOff, hi)
		}
	}
	if n == 0 {
		if newMin > minOff {
			q.min.Store(newMin)
		}
		return 0, nil
	}
	ns := slices.Clone(files[n:])
	q.mapMu.Lock()
	q.files.Store(&ns)
	q.min.Store(max(newMin, minOff))
	q.mapMu.Unlock()
	// Every reader that could see the old files has released mapMu.
	for _, f := range files[:n] {
		_ = mmapfile.Unmap(f.data)
		q.removeFile(f.path)
	}
	return n, nil
}

// SearchByTime returns the first logical offset whose store time (obtained
// through storeTime from the commit log) is >= ts: MinOffset if ts is at or
// before the first entry's, MaxOffset if it is after the last one's. It does
// a binary search, assuming store times do not decrease along the queue.
func (q *Queue) SearchByTime(ts int64, storeTime func(Entry) (int64, error)) (int64, error) {
	lo, hi := q.MinOffset(), q.MaxOffset()
	var buf [1]Entry
	for lo < hi {
		mid := lo + (hi-lo)/2
		n, err := q.Read(mid, buf[:])
		if errors.Is(err, ErrOffsetTooSmall) {
			// Retention moved MinOffset past mid meanwhile.
			lo = q.MinOffset()
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 { // truncated meanwhile
			hi = mid
			continue
		}
		t, err := storeTime(buf[0])
		if err != nil {
			return 0, fmt.Errorf("search %s by time: store time of offset %d: %w", q.dir, mid, err)
		}
		if t < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// Trim releases the resident pages of the queue's mappings that Put or Read
// used since the last Trim, except the page Put writes next (and those
// after it): madvise(MADV_DONTNEED) on the shared mapping, so nothing is
// lost (dirty pages stay dirty in the page cache) and a later Read maps
// them again with a minor fault. It keeps the process's resident set from
// growing with the queue; the page cache is the kernel's to manage. It
// takes no lock Put takes.
func (q *Queue) Trim() error {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed.Load() {
		return nil
	}
	maxOff := q.max.Load() // before files: see Queue.files
	for _, f := range *q.files.Load() {
		// Bytes below the page holding entry maxOff are never written again
		// (TruncateFrom holds mapMu exclusively, so it cannot run now).
		if err := f.res.Release(f.data, 0, (maxOff-f.base)*EntrySize); err != nil {
			return fmt.Errorf("trim %s: %w", f.path, err)
		}
	}
	return nil
}

// Sync makes every entry written so far durable: it msyncs the files written
// since the last Sync and fsyncs directories with created or removed files.
// It does not block Put (except a Put that must restart an empty queue).
func (q *Queue) Sync() error {
	q.mapMu.RLock()
	defer q.mapMu.RUnlock()
	if q.closed.Load() {
		return fmt.Errorf("sync %s: %w", q.dir, ErrClosed)
	}
	return q.syncLocked()
}

// syncLocked needs mapMu (read or write).
func (q *Queue) syncLocked() error {
	for _, f := range *q.files.Load() {
		if f.dirty.Swap(false) {
			if err := mmapfile.Msync(f.data); err != nil {
				f.dirty.Store(true)
				return fmt.Errorf("sync %s: %w", f.path, err)
			}
		}
	}
	if q.dirDirty.Swap(false) {
		if err := fsutil.SyncDir(q.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			q.dirDirty.Store(true)
			return err
		}
	}
	if q.parentsDirty.Swap(false) {
		for _, d := range []string{filepath.Dir(q.dir), q.root} {
			if err := fsutil.SyncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				q.parentsDirty.Store(true)
				return err
			}
		}
	}
	return nil
}

// Close syncs and unmaps the queue's files. Later calls return nil; every
// other method returns ErrClosed (Last returns false, the offsets stay).
func (q *Queue) Close() error { return q.close(true) }

func (q *Queue) close(sync bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed.Load() {
		return nil
	}
	q.mapMu.Lock()
	defer q.mapMu.Unlock()
	var err error
	if sync {
		err = q.syncLocked()
	}
	q.closed.Store(true)
	q.unmapAll(*q.files.Load())
	empty := []*mappedFile{}
	q.files.Store(&empty)
	return err
}

// Destroy closes the queue and removes its directory with all its files
// (topic deletion). The topic directory is removed too if it is left empty.
func (q *Queue) Destroy() error {
	if err := q.close(false); err != nil {
		return err
	}
	if err := os.RemoveAll(q.dir); err != nil {
		return fmt.Errorf("destroy consume queue %s: %w", q.dir, err)
	}
	_ = os.Remove(filepath.Dir(q.dir)) // fails unless empty
	if err := fsutil.SyncDir(filepath.Dir(q.dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
