// Package store is txmq's message store: a RocketMQ-style commit log with
// group commit, consume queues (package consumequeue) and a key index
// (package index) derived from it, crash recovery, flushing and retention.
// It has no network code; the broker drives it through about a dozen
// methods: Open, Append, AppendAsync, AppendBatch, GetMessages, ReadAt,
// MinOffset, MaxOffset, OffsetByTime, EarliestStoreTime, QueryByKey,
// Flush, DeleteTopic, Stats, Close.
//
// # On-disk layout
//
// Every name and size is in the const block of layout.go. The commit log is
// a sequence of preallocated segments named by their start offset (20
// digits). A record is one MessageExt in the RocketMQ wire encoding (magic
// V1; see package message): the bytes on disk are the bytes a pull response
// carries, and GetResult.Body is a ready pull body. A record's
// PHYSICALOFFSET is its position in the log. A record that would leave less
// than 8 bytes in its segment goes to the next one, and the segment ends with
// a blank marker (TOTALSIZE = bytes left, MAGICCODE = message.MagicBlank).
//
// # Write path
//
// Appenders validate and normalise their message (topic, size, properties)
// in their own goroutine and send a pooled request on a channel. One
// writer goroutine owns the append path: it assigns commit-log offsets,
// queue offsets (consecutive per queue, continuing from the consume queue)
// and the store timestamp (broker clock, kept monotonic), and encodes the
// records straight into a reusable batch buffer. It hands the batch to the
// committer as soon as the committer is free and keeps filling the next one
// meanwhile, so every append that arrives while batch N is being written and
// fsynced joins batch N+1 (group commit without a timer). The committer
// writes a batch with one pwrite per segment touched; under SyncFlush it
// then fdatasyncs once for the whole batch. In both flush modes the
// committer then finishes the batch itself (finish): it dispatches the
// records (consume-queue entry, Config.OnDispatch, Config.OnRecord, record
// by record; the key index is left to the indexer), publishes the new
// visible end and completes the requests, while the writer fills the next
// batch. So an acknowledged message is visible, and under SyncFlush
// durable. Under AsyncFlush a flusher fdatasyncs every FlushInterval.
// Append and AppendBatch wait for their request to complete; AppendAsync
// returns once the request is queued and its callback runs on the
// committer when the request completes (it must not block). The hot path
// allocates nothing: requests, their done channels, batch buffers and
// pull results are reused.
//
// # Key index
//
// The key index is not on the append path (Apache RocketMQ builds it
// asynchronously too): a page fault on its mapping can take milliseconds,
// and every append would wait for it. The indexer goroutine follows the
// commit log from its own progress offset (Stats.IndexedOffset) up to the
// visible end, reads each record's KEYS and UNIQ_KEY and adds them under
// topic#key; finish wakes it through a channel of capacity 1, never
// blocking. Each round reads up to 256 records under one hold of segMu,
// taking only the store timestamp, topic, KEYS and UNIQ_KEY, and adds
// their keys with one index.AddBatch. QueryByKey first waits (at most 5 s,
// then ErrIndexBehind) until the indexer reached the visible end seen at
// the call, so a query sees every append that completed before it; Flush
// and DeleteTopic wait for it too. The checkpoint never passes the
// indexer (see Recovery). An index write error is sticky like any dispatch
// error (*WriteError, op "index"): the indexer stops, appends and queries
// fail; reopening rebuilds the index from the checkpoint.
//
// A failed write, fdatasync or segment creation is sticky (*WriteError):
// the batch's appends and every later append fail with it; nothing is
// acknowledged that was not written (and synced, under SyncFlush). Reads
// keep working; reopening the store recovers every acknowledged record.
//
// # Read path
//
// Segments are read through a read-only shared mmap of the whole file
// (pwrite and mmap share the page cache on Linux). A pull reads its
// consume-queue entries, sizes its buffer once from the entries' sizes,
// then copies the records, after a cheap check of each (magic, TOTALSIZE =
// entry size, PHYSICALOFFSET = position), into it: no syscall per record,
// and the copy is taken under segMu so retention cannot unmap a segment
// under a reader. Results are reused through a small free list that
// survives garbage collections (then a sync.Pool).
//
// Mapped pages stay in the process's resident set once touched; every
// second, and as soon as pulls and the indexer have read 64 MiB through
// the mappings since its last round, the trimmer (trim.go) releases those
// behind the writer with madvise(MADV_DONTNEED): commit-log pages more
// than 1 MiB behind the indexer and the visible end (only ranges read or
// passed since the last round), consume-queue pages below the entry being
// written, index entry pages below the one being written and sealed index
// files (consume queues and index track theirs with mmapfile.Resident). All
// of these are MAP_SHARED file mappings: the pages stay in the page cache
// (dirty ones stay dirty) and a later read maps them again with a minor
// fault, so the resident set stays small while the page cache does the
// caching.
//
// ReadAt trusts nothing of its offset: the record there must pass every
// recovery check. Reads never look past the written (GetMessages) or
// visible (ReadAt, QueryByKey) position.
//
// # Recovery
//
// The checkpoint file holds the commit-log offset up to which consume
// queues and index are durable: min(visible end, indexer progress), so it
// never claims keys the index lacks. It is advanced every
// CheckpointInterval and at Close (after the indexer caught up), always
// after the commit log itself was fsynced that far. Open:
//
//  1. opens the segments (names, sizes and contiguity checked; another
//     SegmentSize is refused with ErrCorrupt), consume queues and index,
//     and moves their minimums past what retention removed;
//  2. picks the scan start: the checkpoint, or the start of the log when
//     there is no valid checkpoint or the consumequeue or index directory
//     is gone (a full rebuild);
//  3. truncates consume queues and index from there (TruncateFrom);
//  4. walks the records from there, checking each: magic V1, lengths
//     (TOTALSIZE, at least 8 bytes left in the segment, every field inside
//     the record), PHYSICALOFFSET = its position, body CRC, properties
//     well-formed, topic valid, and queue offset = the next offset of its
//     consume queue; a blank marker must fill its segment exactly. Each
//     good record is dispatched again (consume-queue Put is idempotent)
//     and its keys indexed, synchronously: the index is complete up to
//     the recovered end when Open returns;
//  5. the first record that fails ends the log: the rest of its segment is
//     zeroed (fallocate ZERO_RANGE, PUNCH_HOLE, or written zeros) and
//     later segments are deleted, so a torn tail can never come back after
//     the next crash;
//  6. fsyncs the recovered range and writes the checkpoint at the end.
//
// After Close the checkpoint is at the end of the log: nothing is scanned.
// After a crash only what was appended since the last checkpoint (about
// one CheckpointInterval) is scanned. A corrupt or partial record is never
// returned.
//
// # Retention
//
// Every CleanInterval (and in tests, clean(now) directly): at a DeleteWhen
// hour, or at once when the filesystem is more than DiskMaxUsedSpaceRatio
// full, segments whose last record is older than FileReservedTime are
// removed oldest first (at most 10 a round); above 85% they are removed
// even unexpired. Never the active segment nor one not yet fsynced. Then
// consume queues and index drop entries below the new minimum, reads below
// it answer OffsetTooSmall / ErrOffsetMoved. Clock and disk usage are
// injectable (Config.Now, Config.DiskUsage).
//
// # Concurrency and lock order
//
// Goroutines (all started by goFunc, all waited for by Close): writer,
// committer, flusher (AsyncFlush), indexer, checkpointer, cleaner,
// trimmer. Writer-owned state (writerState) needs no lock; indexer-owned
// scratch (ixKeys, ixEnts, ixBatch) neither. Close: refuse new appends,
// close the request channel (the writer drains it, then the committer
// finishes the last batch, ends and closes dispatchDone, and the indexer
// indexes what is visible and ends), cancel the background loops, wait,
// write the final checkpoint, close files, release the directory lock.
//
// Locks, each acquired only in this order (a lock may be skipped):
//
//	closeMu -> sendMu                         Close only
//	cleanMu -> segMu                          retention (segMu released before the next step)
//	cleanMu -> consumequeue/index locks
//	cpMu -> flushMu -> segMu                  checkpoint, syncTo
//	cpMu -> consumequeue/index locks          checkpoint syncs them
//	consumequeue locks -> segMu (shared)      SearchByTime's store-time callback
//	idxWaitMu                                 leaf (waitIndexed, notifyIndexed)
//
// The indexer holds segMu (shared) only to copy the keys of a run of
// records out, and calls the index after releasing it. The trimmer holds
// segMu, a queue's mapMu or the index's mapMu (shared), one at a time.
//
// segMu is otherwise a leaf: no consume-queue or index call is made while
// holding it, and no lock is held across a channel operation except sendMu
// (shared) by a sender waiting for room in the request queue.
//
// # Caveats
//
//   - SIGKILL cannot tear a write (the page cache survives the process);
//     torn and corrupt tails come from power loss or disk faults, and are
//     covered by the recovery table test and FuzzRecoverTail.
//   - In a full rebuild a topic that was deleted and re-created has two
//     runs of queue offsets; the later records that break the sequence
//     stay in the log but are not dispatched (logged). Normal recovery is
//     not affected: DeleteTopic advances the checkpoint first.
//   - Append's ctx bounds only the wait to be queued; a queued append is
//     carried out.
//   - The tags code of delay and timer messages is the tags hash, not the
//     delivery time (RocketMQ's schedule topic uses the latter).
//   - Writes are not refused when the disk is nearly full (RocketMQ stops
//     at 90%); the first ENOSPC makes the store read-only (sticky error).
//   - Segments are mapped whole: 64-bit only in practice.
package store
