// Package consumequeue implements RocketMQ consume queues: for every
// (topic, queueId) a dense array of fixed-size entries, one per message of the
// queue, that points into the commit log. The logical (queue) offset of a
// message is the index of its entry.
//
// # On-disk format
//
// A queue lives in <root>/<topic>/<queueId>/ as a sequence of files of
// EntriesPerFile entries each (RocketMQ's default 300,000, i.e. 6,000,000
// bytes). A file is named by the byte offset (entry index * EntrySize) of its
// first entry, zero-padded to 20 decimal digits, as RocketMQ names them;
// file i+1 starts where file i ends. An entry is 20 bytes, big-endian:
//
//	commitLogOffset int64 | size int32 | tagsCode int64
//
// Files are preallocated to their full size (fallocate, falling back to
// ftruncate) and mapped read-write shared, so Put is a 20-byte copy. An entry
// with size 0 is empty: the first empty entry after the first non-empty one
// marks the end of the queue. (The very first commit-log record sits at
// offset 0, so the commit-log offset cannot mark emptiness.) Leading empty
// entries of the first file are allowed; a queue that restarts at an offset
// (after retention removed everything) starts a file whose first entry is at
// exactly that offset.
//
// # Durability and recovery contract
//
// Consume queues are derived data: the store can rebuild any part of them
// from the commit log. Accordingly:
//
//   - Put writes to the page cache only; Sync (msync MS_SYNC of the files
//     written since the last Sync, fsync of changed directories) makes
//     entries durable. A process crash loses nothing written; a power loss
//     can lose entries written after the last Sync.
//   - OpenQueue validates the entries (see Caveats) and never fails on
//     content: the queue ends at the first empty entry, or at the first entry
//     that is invalid (size < 0, negative commit-log offset, commit-log
//     offset not above the previous entry's), with a warning; data after the end is zeroed and
//     files after it or out of sequence are removed. Only I/O errors fail.
//   - After opening, the recovery driver compares each queue's Last() with
//     the commit log: TruncateFrom(commitLogEnd) drops entries that point
//     past the recovered end of the commit log, and records after
//     Last().CommitLogOffset are re-dispatched. Put is idempotent: putting
//     again the entry already stored at an offset returns nil, so the driver
//     may re-dispatch from an earlier point (a checkpoint) safely. A
//     different entry at a stored offset is ErrConflict, an offset beyond
//     MaxOffset is ErrOffsetGap (except on a queue holding nothing, which
//     restarts there).
//   - MinOffset is not persisted inside a file: after opening, call
//     DeleteBefore with the commit log's minimum offset to move it past
//     entries whose records retention already removed.
//
// # Concurrency
//
// A Queue supports one writer (Put) and any number of concurrent readers
// (Read, Last, MinOffset, MaxOffset, SearchByTime); TruncateFrom,
// DeleteBefore, Sync, Trim, Close and Destroy may run from other
// goroutines. Trim (madvise MADV_DONTNEED of pages below the one Put
// writes, under mapMu read-locked) only shrinks the process's resident
// set: the shared mappings keep their data in the page cache.
//
//   - Queue.mu serializes the mutating operations; readers never take it.
//   - MinOffset and MaxOffset are atomics; Put stores the entry and then
//     publishes MaxOffset, so a reader that sees MaxOffset == n+1 sees the
//     entry n completely. Reads never return entries at or past MaxOffset.
//   - The file list is an immutable slice behind an atomic pointer, replaced
//     on every change (a new file is appended by Put without any lock
//     readers take).
//   - Queue.mapMu (RWMutex) protects the mappings: Read, Last and Sync hold
//     it for reading; a file is unmapped only after being dropped from the
//     list and mapMu being write-locked (DeleteBefore, restart, Close).
//     TruncateFrom holds it for writing throughout. So readers are blocked
//     only by rare operations, and Put only ever waits for mapMu when it
//     restarts an empty queue.
//
// A Set is a concurrency-safe map of queues keyed by (topic, queueId); Get
// does not allocate.
//
// # Caveats
//
//   - Files are mapped whole: with RocketMQ's default size every queue with
//     data maps at least 6 MB of address space (page cache is used only as
//     touched).
//   - Opening a queue validates its first file and its three newest files
//     entry by entry (and checks that the tail after the end is zero); the
//     files in between were full when they stopped being written and are
//     checked only at their first and last entries, so corruption inside
//     them is not detected. Consumers of entries must verify the record
//     they point at in any case (the commit log checks each record).
//   - SearchByTime assumes store times do not decrease along the queue; the
//     store assigns them in commit-log order, so they do not.
//   - EntriesPerFile must not change between runs over the same files.
package consumequeue
