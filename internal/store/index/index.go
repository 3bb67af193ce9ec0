package index

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/store/mmapfile"
)

// Defaults. Entries per file are RocketMQ's; the slot table is a fifth of
// RocketMQ's 5,000,000 (4 MB instead of 20 MB), which keeps the slots the
// adds read at random within the CPU's caches and TLB reach
// (docs/performance.md, fourth round; docs/compat.md).
const (
	DefaultSlotsPerFile   = 1000000
	DefaultEntriesPerFile = 20000000
)

// Sentinel errors. They are returned wrapped with context; test with errors.Is.
var (
	// ErrClosed is returned by every operation on a closed Index.
	ErrClosed = errors.New("index: closed")
	// ErrInvalidKey is returned by Add for an empty key.
	ErrInvalidKey = errors.New("index: invalid key")
	// ErrInvalidOffset is returned by Add for a negative commit-log offset.
	ErrInvalidOffset = errors.New("index: invalid commit-log offset")
	// ErrInvalidOptions is returned by Open for SlotsPerFile or
	// EntriesPerFile out of range.
	ErrInvalidOptions = errors.New("index: invalid options")
)

// Options configures an Index. The zero value is usable.
type Options struct {
	// SlotsPerFile is the size of the hash-slot table of each new file
	// (0: DefaultSlotsPerFile). Existing files keep their own geometry.
	SlotsPerFile int
	// EntriesPerFile is the number of entries of each new file
	// (0: DefaultEntriesPerFile).
	EntriesPerFile int
	// Logger receives warnings about repaired or removed files. nil discards.
	Logger *slog.Logger
}

// Index is a key index over the commit log: key -> candidate commit-log
// offsets.
//
// Concurrency: one writer (Add) and any number of concurrent readers
// (Lookup, MaxCommitLogOffset). TruncateFrom, DeleteBefore, Sync and Close
// may be called from any goroutine. See the package documentation.
type Index struct {
	// maxOff is the highest commit-log offset added, -1 if none. Written
	// with mu held.
	maxOff atomic.Int64
	// files is an immutable snapshot of the mapped files, oldest first.
	files    atomic.Pointer[[]*indexFile]
	closed   atomic.Bool
	dirDirty atomic.Bool

	// mu serializes the mutating operations (Add, TruncateFrom,
	// DeleteBefore, Close).
	mu sync.Mutex
	// mapMu guards the mappings: Lookup and Sync hold it for reading while
	// they touch mapped memory; a file is unmapped only after it was dropped
	// from files and mapMu was write-locked. TruncateFrom and Close run
	// under the write lock.
	mapMu sync.RWMutex

	root     string
	slots    int
	capacity int
	log      *slog.Logger
}

// Open opens the index under root, creating the directory if needed, and
// loads its files. A file that was not closed cleanly is validated and
// repaired (entries cut at the first invalid one, slot table rebuilt if it
// disagrees with the entries); a file whose header is unreadable is removed.
// Both are logged at warn level. Only I/O errors are returned.
func Open(root string, opts Options) (*Index, error) {
	if opts.SlotsPerFile == 0 {
		opts.SlotsPerFile = DefaultSlotsPerFile
	}
	if opts.EntriesPerFile == 0 {
		opts.EntriesPerFile = DefaultEntriesPerFile
	}
	if opts.SlotsPerFile < 1 || opts.SlotsPerFile > maxGeometry || opts.EntriesPerFile < 1 || opts.EntriesPerFile > maxGeometry {
		return nil, fmt.Errorf("open index %s: slots %d entries %d (each must be in [1, %d]): %w",
			root, opts.SlotsPerFile, opts.EntriesPerFile, maxGeometry, ErrInvalidOptions)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	x := &Index{root: root, slots: opts.SlotsPerFile, capacity: opts.EntriesPerFile,
		log: opts.Logger.With("component", "index")}
	x.maxOff.Store(-1)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("open index %s: %w", root, err)
	}
	files, err := x.load()
	if err != nil {
		return nil, err
	}
	x.files.Store(&files)
	for _, f := range files {
		if f.count() > 0 {
			x.maxOff.Store(f.i64(hEndOff))
		}
	}
	return x, nil
}

func (x *Index) load() ([]*indexFile, error) {
	des, err := os.ReadDir(x.root)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", x.root, err)
	}
	var files []*indexFile
	fail := func(err error) ([]*indexFile, error) {
		for _, f := range files {
			_ = mmapfile.Unmap(f.data)
		}
		return nil, err
	}
	for _, de := range des {
		n := de.Name()
		p := filepath.Join(x.root, n)
		name, perr := strconv.ParseInt(n, 10, 64)
		if len(n) != fileNameLen || perr != nil || name < 0 || !de.Type().IsRegular() {
			x.log.Warn("ignoring unexpected file in index directory", "path", p)
			continue
		}
		f, err := x.loadFile(p, name)
		if err != nil {
			return fail(err)
		}
		if f != nil {
			files = append(files, f)
		}
	}
	slices.SortFunc(files, func(a, b *indexFile) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	// Files must cover increasing commit-log ranges; only the last may be
	// empty.
	kept := files[:0]
	prevEnd := int64(-1)
	for i, f := range files {
		n := f.count()
		bad := ""
		switch {
		case n == 0 && i < len(files)-1:
			bad = "removing empty index file"
		case n > 0 && f.i64(hBeginOff) < prevEnd:
			bad = "removing index file out of commit-log order"
		}
		if bad != "" {
			x.log.Warn(bad, "path", f.path)
			_ = mmapfile.Unmap(f.data)
			x.removeFile(f.path)
			continue
		}
		if n > 0 {
			prevEnd = f.i64(hEndOff)
		}
		kept = append(kept, f)
	}
	return kept, nil
}

// loadFile maps and checks one file. It returns nil, nil for a file it had
// to remove.
func (x *Index) loadFile(path string, name int64) (*indexFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open index file %s: %w", path, err)
	}
	size := st.Size()
	if size < headerSize || size > fileSize(maxGeometry, maxGeometry) {
		x.log.Warn("removing index file with bad size", "path", path, "size", size)
		x.removeFile(path)
		return nil, nil
	}
	data, _, err := mmapfile.Map(path, int(size), false)
	if err != nil {
		return nil, fmt.Errorf("open index file: %w", err)
	}
	f := &indexFile{name: name, path: path, data: data}
	slots, capacity := int64(f.u32(hSlots)), int64(f.u32(hCapacity))
	if f.u32(hMagic) != magic || be.Uint16(data[hVersion:]) != version ||
		slots < 1 || slots > maxGeometry || capacity < 1 || capacity > maxGeometry ||
		fileSize(int(slots), int(capacity)) != size {
		x.log.Warn("removing index file with bad header", "path", path)
		_ = mmapfile.Unmap(data)
		x.removeFile(path)
		return nil, nil
	}
	f.slots, f.capacity = slots, capacity
	clean := be.Uint16(data[hFlags:])&flagClean != 0 && int64(f.u32(hCount)) <= capacity
	if clean {
		f.clean.Store(true)
		return f, nil
	}
	if f.repair() {
		x.log.Warn("repaired index file", "path", path, "entries", f.count())
		f.dirty.Store(true)
	}
	return f, nil
}

func (x *Index) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		x.log.Warn("cannot remove index file", "path", path, "err", err)
	}
	x.dirDirty.Store(true)
}

// hash is 32-bit FNV-1a.
func hash(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

// Add indexes key (already qualified by the caller, e.g. topic+"#"+key) for
// the record at commitLogOffset stored at storeTimestamp (ms).
//
// Offsets must be added in commit-log order. An offset below
// MaxCommitLogOffset is taken as already indexed and ignored (nil), so the
// recovery driver may re-dispatch from any earlier point; an offset equal to
// it is added (a record has several keys), which can leave duplicate entries
// that Lookup removes. It does not allocate except when it starts a file.
func (x *Index) Add(key string, commitLogOffset int64, storeTimestamp int64) error {
	_, err := x.AddBatch([]Entry{{Key: key, CommitLogOffset: commitLogOffset, StoreTimestamp: storeTimestamp}})
	return err
}

// Entry is one key of AddBatch.
type Entry struct {
	Key             string
	CommitLogOffset int64
	StoreTimestamp  int64
}

// AddBatch is Add for each of es in order, under one acquisition of the
// index lock: the indexer adds the keys of a run of records at once. It
// stops at the first error and returns how many entries it handled.
func (x *Index) AddBatch(es []Entry) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return 0, fmt.Errorf("index add: %w", ErrClosed)
	}
	var hs [prefetchRun]uint32
	for i := range es {
		e := &es[i]
		if i%prefetchRun == 0 {
			x.prefetchSlots(es[i:min(i+prefetchRun, len(es))], hs[:])
		}
		if e.Key == "" {
			return i, fmt.Errorf("index add at %d: %w", e.CommitLogOffset, ErrInvalidKey)
		}
		if e.CommitLogOffset < 0 {
			return i, fmt.Errorf("index add at %d: %w", e.CommitLogOffset, ErrInvalidOffset)
		}
		if err := x.addLocked(hs[i%prefetchRun], e.CommitLogOffset, e.StoreTimestamp); err != nil {
			return i, err
		}
	}
	return len(es), nil
}

// prefetchRun is how many keys AddBatch hashes and prefetches at a time.
const prefetchRun = 32

// prefetchSink keeps prefetchSlots' loads from being optimised away.
var prefetchSink atomic.Uint32

// prefetchSlots hashes the keys of es into hs and reads each one's hash
// slot in the newest file before any of them is added. The slot table
// (4 MB by default, 20 MB with RocketMQ's 5M slots) is read at random, so
// adds often miss the caches; independent loads issued back to back
// overlap their misses, where each add would otherwise wait for its own.
// x.mu is held.
func (x *Index) prefetchSlots(es []Entry, hs []uint32) {
	var f *indexFile
	if files := *x.files.Load(); len(files) > 0 {
		f = files[len(files)-1]
	}
	for j := range es {
		hs[j] = hash(es[j].Key)
	}
	if f == nil {
		return
	}
	var sum uint32
	f.rw.RLock()
	for j := range es {
		sum += f.u32(f.slotOff(int64(hs[j] % uint32(f.slots))))
	}
	f.rw.RUnlock()
	prefetchSink.Add(sum)
}

// addLocked adds one entry; x.mu is held and the index is open.
func (x *Index) addLocked(h uint32, commitLogOffset, storeTimestamp int64) error {
	if commitLogOffset < x.maxOff.Load() {
		return nil
	}
	files := *x.files.Load()
	var f *indexFile
	if len(files) > 0 {
		f = files[len(files)-1]
	}
	if f == nil || f.count() >= f.capacity || f.count() > 0 && !fitsTimeDiff(storeTimestamp, f.i64(hBeginTs)) {
		name := commitLogOffset
		if f != nil && name <= f.name {
			name = f.name + 1
		}
		nf, err := x.newFileLocked(name)
		if err != nil {
			return err
		}
		ns := make([]*indexFile, len(files)+1)
		copy(ns, files)
		ns[len(files)] = nf
		x.files.Store(&ns)
		f = nf
	}
	if f.clean.Load() {
		if err := markUnclean(f); err != nil {
			return err
		}
	}
	f.rw.Lock()
	f.add(h, commitLogOffset, storeTimestamp)
	f.rw.Unlock()
	f.res.Touch()
	if !f.dirty.Load() {
		f.dirty.Store(true)
	}
	x.maxOff.Store(commitLogOffset)
	return nil
}

// markUnclean clears the clean flag of f on disk before it is modified.
func markUnclean(f *indexFile) error {
	f.setCleanFlag(false)
	if err := mmapfile.Msync(f.data[:min(len(f.data), os.Getpagesize())]); err != nil {
		return fmt.Errorf("sync index header %s: %w", f.path, err)
	}
	f.clean.Store(false)
	return nil
}

func (x *Index) newFileLocked(name int64) (*indexFile, error) {
	path := filepath.Join(x.root, fmt.Sprintf("%020d", name))
	size := fileSize(x.slots, x.capacity)
	data, _, err := mmapfile.Map(path, int(size), true)
	if errors.Is(err, os.ErrExist) {
		_ = os.Remove(path)
		data, _, err = mmapfile.Map(path, int(size), true)
	}
	if err != nil {
		return nil, fmt.Errorf("create index file: %w", err)
	}
	f := &indexFile{name: name, path: path, data: data, slots: int64(x.slots), capacity: int64(x.capacity)}
	f.initHeader()
	f.dirty.Store(true)
	x.dirDirty.Store(true)
	return f, nil
}

// Lookup returns up to maxNum distinct candidate commit-log offsets for key,
// newest first, of entries whose store time lies in [beginTs, endTs] (ms,
// inclusive). Different keys can share a hash: the caller must read each
// record and check its keys. Nothing added after the call started is guaranteed
// to be seen.
func (x *Index) Lookup(key string, beginTs, endTs int64, maxNum int) ([]int64, error) {
	if maxNum <= 0 || beginTs > endTs {
		return nil, nil
	}
	h := hash(key)
	x.mapMu.RLock()
	defer x.mapMu.RUnlock()
	if x.closed.Load() {
		return nil, fmt.Errorf("index lookup: %w", ErrClosed)
	}
	files := *x.files.Load()
	var res []int64
	for i := len(files) - 1; i >= 0 && len(res) < maxNum; i-- {
		res = files[i].lookup(h, beginTs, endTs, maxNum, res)
	}
	return res, nil
}

// lookup appends matching offsets of f to res.
func (f *indexFile) lookup(h uint32, beginTs, endTs int64, maxNum int, res []int64) []int64 {
	f.rw.RLock()
	defer f.rw.RUnlock()
	f.res.Touch()
	n := f.count()
	if n == 0 || f.i64(hEndTs) < beginTs || f.i64(hMinTs) > endTs {
		return res
	}
	base := f.i64(hBeginTs)
	idx := int64(f.u32(f.slotOff(int64(h % uint32(f.slots)))))
	for steps := int64(0); idx > 0 && idx <= n && steps < n; steps++ {
		e := f.entry(idx - 1)
		if e.hash == h {
			t := base + int64(e.timeDiff)
			if t >= beginTs && t <= endTs && (len(res) == 0 || !slices.Contains(res[max(0, len(res)-8):], e.offset)) {
				res = append(res, e.offset)
				if len(res) >= maxNum {
					break
				}
			}
		}
		if int64(e.prev) >= idx {
			break // corrupt link: never walk forward
		}
		idx = int64(e.prev)
	}
	return res
}

// MaxCommitLogOffset returns the highest commit-log offset added (and not
// truncated), or -1 if the index is empty. The recovery driver re-dispatches
// keys of records from here on (Add ignores lower offsets).
func (x *Index) MaxCommitLogOffset() int64 { return x.maxOff.Load() }

// TruncateFrom removes every entry with a commit-log offset >= the argument
// (recovery after the commit log was cut back): whole files are removed and
// the entries of the file where the cut falls are unlinked from their slot
// chains, newest first, and zeroed, which restores the file exactly to its
// state before they were added. Lookups are blocked while it runs.
func (x *Index) TruncateFrom(commitLogOffset int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return fmt.Errorf("index truncate: %w", ErrClosed)
	}
	x.mapMu.Lock()
	defer x.mapMu.Unlock()
	files := *x.files.Load()
	keep := len(files)
	for keep > 0 {
		f := files[keep-1]
		if f.count() > 0 && f.i64(hBeginOff) < commitLogOffset {
			break
		}
		keep--
	}
	maxOff := int64(-1)
	if keep > 0 {
		f := files[keep-1]
		n := f.count()
		if f.i64(hEndOff) >= commitLogOffset {
			k := int64(sort.Search(int(n), func(i int) bool { return f.entry(int64(i)).offset >= commitLogOffset }))
			if f.clean.Load() {
				if err := markUnclean(f); err != nil {
					return err
				}
			}
			f.rw.Lock()
			f.truncate(k)
			f.rw.Unlock()
			f.dirty.Store(true)
		}
		if f.count() > 0 {
			maxOff = f.i64(hEndOff)
		}
	}
	ns := slices.Clone(files[:keep])
	x.files.Store(&ns)
	x.maxOff.Store(maxOff)
	for _, f := range files[keep:] {
		_ = mmapfile.Unmap(f.data)
		x.removeFile(f.path)
	}
	return nil
}

// DeleteBefore removes whole files whose last entry's commit-log offset is
// below minCommitLogOffset, oldest first, never the last (current) file. It
// returns how many it removed.
func (x *Index) DeleteBefore(minCommitLogOffset int64) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return 0, fmt.Errorf("index delete before: %w", ErrClosed)
	}
	files := *x.files.Load()
	n := 0
	for n < len(files)-1 && (files[n].count() == 0 || files[n].i64(hEndOff) < minCommitLogOffset) {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	ns := slices.Clone(files[n:])
	x.mapMu.Lock()
	x.files.Store(&ns)
	x.mapMu.Unlock()
	// No reader can hold the removed files any more.
	for _, f := range files[:n] {
		_ = mmapfile.Unmap(f.data)
		x.removeFile(f.path)
	}
	return n, nil
}

// Sync makes every entry added so far durable (msync of the files written
// since the last Sync) and marks files that are no longer written as clean,
// so that the next Open does not need to validate them. It does not block
// Add.
func (x *Index) Sync() error {
	x.mapMu.RLock()
	defer x.mapMu.RUnlock()
	if x.closed.Load() {
		return fmt.Errorf("index sync: %w", ErrClosed)
	}
	return x.syncFiles(*x.files.Load(), false)
}

// syncFiles msyncs dirty files and marks the sealed ones (all but the last,
// or all if closing) clean. mapMu must be held.
func (x *Index) syncFiles(files []*indexFile, closing bool) error {
	for i, f := range files {
		if f.dirty.Swap(false) {
			if err := mmapfile.Msync(f.data); err != nil {
				f.dirty.Store(true)
				return fmt.Errorf("sync index file %s: %w", f.path, err)
			}
		}
		if (closing || i < len(files)-1) && !f.clean.Load() {
			f.setCleanFlag(true)
			if err := mmapfile.Msync(f.data[:min(len(f.data), os.Getpagesize())]); err != nil {
				f.setCleanFlag(false)
				return fmt.Errorf("sync index header %s: %w", f.path, err)
			}
			f.clean.Store(true)
		}
	}
	if x.dirDirty.Swap(false) {
		if err := fsutil.SyncDir(x.root); err != nil {
			x.dirDirty.Store(true)
			return err
		}
	}
	return nil
}

// Trim releases resident pages of the index mappings: sealed files whole,
// and in the current file the entries below the one Add writes next, when
// Add or Lookup used them since the last Trim. The current file's header
// and slot table (written at random by Add) stay mapped. It uses
// madvise(MADV_DONTNEED) on the shared mappings: nothing is lost (dirty
// pages stay dirty in the page cache) and a later access maps the pages
// again. It keeps the process's resident set from growing with the index;
// it does not block Add.
func (x *Index) Trim() error {
	x.mapMu.RLock()
	defer x.mapMu.RUnlock()
	if x.closed.Load() {
		return nil
	}
	files := *x.files.Load()
	for i, f := range files {
		lo, hi := int64(0), int64(len(f.data)) // sealed: release it whole
		if i == len(files)-1 {
			// Entries below count are not written again (TruncateFrom
			// needs mapMu exclusively).
			f.rw.RLock()
			n := f.count()
			f.rw.RUnlock()
			lo, hi = f.entryOff(0), f.entryOff(n)
		}
		if err := f.res.Release(f.data, lo, hi); err != nil {
			return fmt.Errorf("trim index file %s: %w", f.path, err)
		}
	}
	return nil
}

// Close syncs the index, marks every file clean and unmaps them. Later calls
// return nil; other methods return ErrClosed.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed.Load() {
		return nil
	}
	x.mapMu.Lock()
	defer x.mapMu.Unlock()
	files := *x.files.Load()
	err := x.syncFiles(files, true)
	x.closed.Store(true)
	for _, f := range files {
		_ = mmapfile.Unmap(f.data)
		f.data = nil
	}
	empty := []*indexFile{}
	x.files.Store(&empty)
	return err
}
