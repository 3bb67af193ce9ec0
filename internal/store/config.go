package store

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// FlushMode says when an append is acknowledged.
type FlushMode int

const (
	// AsyncFlush acknowledges after the write reached the page cache; a
	// flusher fsyncs every FlushInterval (RocketMQ ASYNC_FLUSH).
	AsyncFlush FlushMode = iota
	// SyncFlush acknowledges only after the record is on disk; concurrent
	// appends share one fdatasync (RocketMQ SYNC_FLUSH).
	SyncFlush
)

func (m FlushMode) String() string {
	switch m {
	case AsyncFlush:
		return "ASYNC_FLUSH"
	case SyncFlush:
		return "SYNC_FLUSH"
	}
	return "FlushMode(" + strconv.Itoa(int(m)) + ")"
}

// Config configures a Store. Start from DefaultConfig.
type Config struct {
	Dir            string        // store root (created if missing)
	SegmentSize    int64         // commit-log segment size (mappedFileSizeCommitLog)
	FlushMode      FlushMode     // flushDiskType
	FlushInterval  time.Duration // flushIntervalCommitLog (AsyncFlush)
	MaxMessageSize int           // largest body accepted (maxMessageSize)

	CQEntriesPerFile int // consume-queue entries per file
	IndexSlots       int // hash slots per index file
	IndexEntries     int // entries per index file

	FileReservedTime      time.Duration // fileReservedTime (hours in broker.conf)
	DeleteWhen            string        // deleteWhen: hours of the day, "04" or "03;04"
	DiskMaxUsedSpaceRatio int           // diskMaxUsedSpaceRatio, percent

	// CheckpointInterval is how often consume queues and index are synced
	// and the checkpoint advanced. CleanInterval is how often retention runs.
	CheckpointInterval time.Duration
	CleanInterval      time.Duration

	Logger *slog.Logger

	// OnDispatch, if set, is called from the dispatch goroutine after a
	// message became visible in its consume queue, with the queue's new max
	// offset. It must not block (the broker wakes long-polling pulls).
	OnDispatch func(topic string, queueID int32, nextOffset int64)
	// OnRecord, if set, is called for every record appended after Open,
	// in commit-log order, from the dispatch goroutine, once the record is
	// visible (under SyncFlush: durable) and before its append completes.
	// v aliases a buffer that is reused: copy what must outlive the call.
	// It must be quick and must not call back into the store. Records that
	// were in the log at Open are read with Scan. (The transaction service
	// follows the commit log through it.)
	OnRecord func(off int64, v message.View)

	// UnindexedTopic, if set, names a topic whose records the key index
	// skips: QueryByKey finds none of them. The broker sets it to
	// RMQ_SYS_TRANS_HALF_TOPIC: pending halves are found through the
	// transaction service, and every half would otherwise cost an index
	// entry that no reader uses.
	UnindexedTopic string

	// Now is the broker clock (store timestamps, retention). Default time.Now.
	Now func() time.Time
	// DiskUsage reports the used percentage (0..100) of the filesystem
	// holding dir. Default: statfs(2).
	DiskUsage func(dir string) (float64, error)

	// wrapFile, if set, wraps every segment file the store opens; tests
	// use it to inject write and fsync faults.
	wrapFile func(segmentFile) segmentFile
	// beforeIndex, if set, is called by the indexer before each round;
	// tests block in it to hold the index behind the log.
	beforeIndex func()
	// trimInterval overrides trimEvery; negative disables trimming (tests).
	trimInterval time.Duration
	// trimReadBurst overrides the constant trimReadBurst when positive
	// (tests); fill sets it otherwise.
	trimReadBurst int64
}

// DefaultConfig returns Apache RocketMQ's defaults for a store in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:                   dir,
		SegmentSize:           DefaultSegmentSize,
		FlushMode:             AsyncFlush,
		FlushInterval:         DefaultFlushInterval,
		MaxMessageSize:        DefaultMaxMessageSize,
		FileReservedTime:      DefaultFileReservedTime,
		DeleteWhen:            DefaultDeleteWhen,
		DiskMaxUsedSpaceRatio: DefaultDiskMaxUsedSpaceRatio,
		CheckpointInterval:    DefaultCheckpointInterval,
		CleanInterval:         DefaultCleanInterval,
	}
}

// maxRecordLen is the longest record an accepted message can encode to.
func (c *Config) maxRecordLen() int64 {
	return int64(c.MaxMessageSize) + message.MinRecordLen + 2*12 /* IPv6 hosts */ + message.MaxTopicLen + message.MaxPropertiesLen
}

// fill sets defaults for zero fields and validates.
func (c *Config) fill() error {
	d := DefaultConfig(c.Dir)
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.FileReservedTime == 0 {
		c.FileReservedTime = d.FileReservedTime
	}
	if c.DeleteWhen == "" {
		c.DeleteWhen = d.DeleteWhen
	}
	if c.DiskMaxUsedSpaceRatio == 0 {
		c.DiskMaxUsedSpaceRatio = d.DiskMaxUsedSpaceRatio
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = d.CheckpointInterval
	}
	if c.CleanInterval == 0 {
		c.CleanInterval = d.CleanInterval
	}
	if c.IndexSlots == 0 {
		c.IndexSlots = DefaultIndexSlots
	}
	if c.trimReadBurst <= 0 {
		c.trimReadBurst = trimReadBurst
	}
	if c.IndexEntries == 0 {
		c.IndexEntries = DefaultIndexEntries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DiskUsage == nil {
		c.DiskUsage = statfsUsage
	}
	bad := func(key string, v any, allowed string) error {
		return fmt.Errorf("%w: %s = %v; %s", ErrInvalidConfig, key, v, allowed)
	}
	switch {
	case c.Dir == "":
		return bad("Dir", `""`, "a directory is required")
	case c.FlushMode != AsyncFlush && c.FlushMode != SyncFlush:
		return bad("FlushMode", c.FlushMode, "AsyncFlush or SyncFlush")
	case c.MaxMessageSize < 0:
		return bad("MaxMessageSize", c.MaxMessageSize, "must be positive")
	case c.SegmentSize < 4096 || c.SegmentSize < c.maxRecordLen()+blankMinLen:
		return bad("SegmentSize", c.SegmentSize, fmt.Sprintf("must be at least 4096 and hold the largest record (%d bytes for MaxMessageSize %d)", c.maxRecordLen()+blankMinLen, c.MaxMessageSize))
	case c.FlushInterval < 0 || c.CheckpointInterval < 0 || c.CleanInterval < 0 || c.FileReservedTime < 0:
		return bad("interval", "negative", "durations must be positive")
	case c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95:
		return bad("DiskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio, "10..95 (percent)")
	}
	if _, err := parseDeleteWhen(c.DeleteWhen); err != nil {
		return bad("DeleteWhen", c.DeleteWhen, err.Error())
	}
	return nil
}

// parseDeleteWhen parses RocketMQ's deleteWhen: hours of the day separated
// by ';' (",", " " accepted too), each 0..23.
func parseDeleteWhen(s string) (hours [24]bool, err error) {
	n := 0
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		h, err := strconv.Atoi(f)
		if err != nil || h < 0 || h > 23 {
			return hours, fmt.Errorf("hours of the day 00..23 separated by ';', got %q", f)
		}
		hours[h] = true
		n++
	}
	if n == 0 {
		return hours, fmt.Errorf("at least one hour of the day (00..23)")
	}
	return hours, nil
}

// statfsUsage is the default Config.DiskUsage.
func statfsUsage(dir string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	total := float64(st.Blocks) * float64(st.Bsize)
	if total <= 0 {
		return 0, nil
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	return 100 * (total - free) / total, nil
}
