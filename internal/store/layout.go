package store

import (
	"time"

	"github.com/txmq/txmq/internal/store/index"
)

// On-disk layout of a store directory. Everything the store writes is named
// here; the record encoding itself lives in internal/message.
//
//	<Dir>/lock                       flock(2)ed while a Store has the directory open
//	<Dir>/checkpoint                 checkpointSize bytes, replaced atomically (see checkpoint.go)
//	<Dir>/commitlog/<20-digit start>  commit-log segments, SegmentSize bytes each, preallocated
//	<Dir>/consumequeue/...           consume queues (package consumequeue), derived data
//	<Dir>/index/...                  key index (package index), derived data
//
// A segment holds records back to back from its first byte. Each record is
// one MessageExt in the RocketMQ wire encoding (magic V1) whose
// PHYSICALOFFSET equals its position in the log. A record is written into
// a segment only if it leaves at least blankMinLen bytes after it; when the
// next record does not fit, an end-of-segment marker (TOTALSIZE = the bytes
// left in the segment, MAGICCODE = message.MagicBlank; only those 8 bytes
// are written) ends the segment and the record goes to the next one. The
// bytes after the last record are zeros: segments are preallocated and a
// recovered torn tail is zeroed.
const (
	lockFileName       = "lock"
	checkpointFileName = "checkpoint"
	checkpointTmpName  = "checkpoint.tmp"
	commitLogDirName   = "commitlog"
	consumeQueueDir    = "consumequeue"
	indexDirName       = "index"
	segmentNameDigits  = 20 // segment file name: start offset, zero-padded decimal

	blankMinLen = 8 // TOTALSIZE + MAGICCODE of the end-of-segment marker

	// Checkpoint file: magic u32 | version u32 | durable commit-log offset i64 |
	// wall-clock ms i64 | CRC-32C of the preceding 24 bytes u32, big-endian.
	checkpointMagic   uint32 = 0x54584350 // "TXCP"
	checkpointVersion uint32 = 1
	checkpointSize           = 4 + 4 + 8 + 8 + 4

	// indexKeySep joins topic and key in an index key, as RocketMQ does.
	indexKeySep = "#"
)

// Defaults (Apache RocketMQ's where it has one).
const (
	DefaultSegmentSize           int64 = 1 << 30
	DefaultFlushInterval               = 500 * time.Millisecond
	DefaultMaxMessageSize              = 4 << 20
	DefaultFileReservedTime            = 72 * time.Hour
	DefaultDeleteWhen                  = "04"
	DefaultDiskMaxUsedSpaceRatio       = 75
	DefaultCheckpointInterval          = time.Second
	DefaultCleanInterval               = 10 * time.Second
	DefaultIndexSlots                  = index.DefaultSlotsPerFile // a fifth of RocketMQ's; see package index
	DefaultIndexEntries                = index.DefaultEntriesPerFile

	// forceCleanRatio is the disk use (percent) above which segments are
	// deleted oldest first even before they expire (RocketMQ's
	// diskSpaceCleanForciblyRatio).
	forceCleanRatio = 85
	// deleteFilesPerRound bounds how many segments one clean round removes
	// (RocketMQ deleteFileBatchMax).
	deleteFilesPerRound = 10
	// maxBatchBytes and maxBatchReqs bound one group-commit batch. A single
	// AppendBatch request larger than that still goes whole.
	maxBatchBytes = 4 << 20
	maxBatchReqs  = 1024
	// numBatchBufs: one batch being filled by the writer, one being
	// written (and fsynced) and dispatched by the committer.
	numBatchBufs = 2
	// reqQueueLen is the capacity of the append request channel.
	reqQueueLen = 1024
)
