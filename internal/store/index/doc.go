// Package index implements a RocketMQ-style key index: it maps a key (the
// caller passes it already qualified as topic+"#"+key, for KEYS and UNIQ_KEY)
// to candidate commit-log offsets, to serve QUERY_MESSAGE.
//
// # On-disk format
//
// Files live directly under the root directory, named by a 20-digit decimal
// number that orders them: the commit-log offset of the first entry added to
// the file (or the previous file's name + 1, if that is not larger). Each
// file is preallocated, mapped whole, and holds
//
//	header   64 bytes  magic "TXIX", version, flags (clean), slot count,
//	                   capacity, begin/end/min store timestamp, begin/end
//	                   commit-log offset, used slot count, entry count
//	slots    slotCount x 4 bytes: 1 + index of the newest entry whose key
//	                   hashes to the slot (0 = empty)
//	entries  capacity x 20 bytes: keyHash uint32 | commitLogOffset int64 |
//	                   timeDiff int32 (store time minus the file's begin
//	                   timestamp, ms) | prev uint32 (1 + index of the
//	                   previous entry of the same slot, 0 = none)
//
// all big-endian (see file.go for offsets). Keys are hashed with 32-bit
// FNV-1a; the slot is hash % slotCount. Entries are appended in commit-log
// order; a new file is started when the current one is full, or when a store
// time is more than about 24.8 days (int32 milliseconds) away from the file's
// begin timestamp. The geometry
// (SlotsPerFile, EntriesPerFile; defaults 1,000,000 and 20,000,000, about
// 404 MB per file; RocketMQ's are 5,000,000 and 20,000,000) applies to new
// files; existing files carry their own in the header.
//
// # Lookups
//
// Lookup walks the slot chain of the key's hash in each file, newest file
// first, and returns commit-log offsets whose entry has the same hash and a
// store time in the requested range (exact, milliseconds),
// newest first, without duplicates, at most maxNum. They are candidates:
// different keys can share a hash, so the caller reads each record and
// checks its keys.
//
// # Durability and recovery contract
//
// The index is derived data; the store can rebuild it from the commit log.
//
//   - Add writes to the page cache; Sync msyncs the files written since the
//     last Sync. A file that is no longer written is marked clean in its
//     header once it has been synced, and Close marks every file clean. The
//     first change to a clean file clears the flag durably first.
//   - Open trusts clean files (lookups still bounds-check every index and
//     never follow a link forward, so corrupt content cannot panic or loop).
//     Any other file is validated: entries are cut at the first invalid one
//     (commit-log offset going down, a link pointing forward or into another
//     slot) and the slot table is rebuilt from the entries if it disagrees
//     with them. A file with an unreadable header or the wrong size is
//     removed. All of this is logged at warn level; only I/O errors fail.
//   - MaxCommitLogOffset is the highest offset indexed. Add ignores offsets
//     below it, so the recovery driver may re-dispatch from any earlier point
//     (a checkpoint) without creating duplicates, except for the keys of the
//     record at exactly MaxCommitLogOffset, which Lookup de-duplicates.
//   - TruncateFrom(off) really removes the entries at or after off: whole
//     files are deleted, and in the file where the cut falls the removed
//     entries are unlinked newest first (each slot gets back the entry's
//     prev link) and zeroed. This restores the slot table exactly, with no
//     watermark to persist; the change is durable after the next Sync.
//
// # Concurrency
//
// One writer (Add) and any number of concurrent readers (Lookup,
// MaxCommitLogOffset); TruncateFrom, DeleteBefore, Sync, Trim and Close may
// run from other goroutines. Trim (madvise MADV_DONTNEED of pages that are
// no longer written, under mapMu read-locked) only shrinks the process's
// resident set: the shared mappings keep their data in the page cache.
// Index.mu serializes the mutating operations. Each file has an RWMutex
// that Add holds for the few writes of one entry and Lookup holds while it
// walks that file's chain, so lookups delay Add only while they scan the
// current file. Index.mapMu guards the mappings as in
// package consumequeue: Lookup and Sync hold it for reading; files are
// unmapped only after being dropped from the file list and mapMu being
// write-locked; TruncateFrom and Close hold it for writing.
//
// # Caveats
//
//   - A file spans at most about 24.8 days of store time, so a broker with
//     little traffic starts a (preallocated) file at least that often;
//     retention removes old ones.
//   - Opening an index that was not closed cleanly scans its current file
//     (up to about 404 MB at the default geometry).
//   - Preallocating a default-size file reserves about 404 MB of disk.
package index
