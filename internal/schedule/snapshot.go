package schedule

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/lifecycle"
)

// Snapshot file layout (big-endian):
//
//	magic "TXMQSCH1" | stateAt int64 | replayFrom int64 | count uint64 |
//	count × (offset int64, due int64) | CRC-32C of all before uint32
//
// stateAt: every scheduled record before it is in the entries (or was
// delivered before it). replayFrom ≤ stateAt: replay scans from here for
// delivered copies (a batch being delivered when the snapshot was taken
// is in the entries, and its copies, if they were written, come after
// replayFrom). The file is written only after the store flushed
// everything up to stateAt, and replaced atomically.
const (
	snapMagic     = "TXMQSCH1"
	snapHeaderLen = 8 + 8 + 8 + 8
	snapEntryLen  = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadSnapshot = errors.New("schedule: corrupt snapshot")

type snapshot struct {
	stateAt, replayFrom int64
	entries             []entry
}

func (s *Service) snapshotPath() string { return filepath.Join(s.cfg.SnapshotDir, snapshotFileName) }

// snapshotLoop takes a snapshot every SnapshotInterval.
func (s *Service) snapshotLoop(ctx context.Context) {
	lifecycle.Every(ctx, s.cfg.SnapshotInterval, func() {
		if err := s.takeSnapshot(); err != nil {
			s.log.Warn("schedule: snapshot failed", "err", err)
		}
	})
}

// takeSnapshot encodes the wheel and the in-flight batch under mu, flushes
// the store (so the log is durable up to stateAt) and replaces the file.
// Nothing is written when nothing changed since the last snapshot.
func (s *Service) takeSnapshot() error {
	if s.cfg.SnapshotDir == "" {
		return nil
	}
	s.mu.Lock()
	if !s.live.Load() || s.closed || (s.changes == s.snapChanges && s.snapTaken) {
		s.mu.Unlock()
		return nil
	}
	changes := s.changes
	stateAt := max(s.applied, s.seen.Load())
	from := stateAt
	if len(s.inflight) > 0 {
		from = min(from, s.floor)
	}
	n := s.w.len() + len(s.inflight)
	buf := make([]byte, 0, snapHeaderLen+n*snapEntryLen+4)
	be := binary.BigEndian
	buf = append(buf, snapMagic...)
	buf = be.AppendUint64(buf, uint64(stateAt))
	buf = be.AppendUint64(buf, uint64(from))
	buf = be.AppendUint64(buf, uint64(n))
	put := func(e entry) {
		buf = be.AppendUint64(buf, uint64(e.off))
		buf = be.AppendUint64(buf, uint64(e.due))
	}
	s.w.each(put)
	for _, e := range s.inflight {
		put(e)
	}
	s.mu.Unlock()
	buf = be.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	if err := s.store.Flush(); err != nil {
		return fmt.Errorf("schedule: snapshot: flush store: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.snapshotPath(), buf, 0o644); err != nil {
		return fmt.Errorf("schedule: snapshot: %w", err)
	}
	s.mu.Lock()
	s.snapChanges, s.snapTaken = changes, true
	s.mu.Unlock()
	s.c.snapshots.Add(1)
	return nil
}

// loadSnapshot reads the snapshot; nil, nil when there is none.
func (s *Service) loadSnapshot() (*snapshot, error) {
	if s.cfg.SnapshotDir == "" {
		return nil, nil
	}
	f, err := os.Open(s.snapshotPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schedule: read snapshot: %w", err)
	}
	defer f.Close()
	return decodeSnapshot(bufio.NewReaderSize(f, 1<<20))
}

func decodeSnapshot(r io.Reader) (*snapshot, error) {
	be := binary.BigEndian
	crc := crc32.New(castagnoli)
	tr := io.TeeReader(r, crc)
	var hdr [snapHeaderLen]byte
	if _, err := io.ReadFull(tr, hdr[:]); err != nil || string(hdr[:8]) != snapMagic {
		return nil, fmt.Errorf("%w: bad magic or too short", errBadSnapshot)
	}
	sn := &snapshot{stateAt: int64(be.Uint64(hdr[8:])), replayFrom: int64(be.Uint64(hdr[16:]))}
	n := be.Uint64(hdr[24:])
	if sn.stateAt < 0 || sn.replayFrom < 0 || sn.replayFrom > sn.stateAt || n > 1<<34 {
		return nil, fmt.Errorf("%w: header %d/%d/%d", errBadSnapshot, sn.stateAt, sn.replayFrom, n)
	}
	sn.entries = make([]entry, 0, min(n, 1<<20))
	var rec [snapEntryLen]byte
	for i := uint64(0); i < n; i++ {
		if _, err := io.ReadFull(tr, rec[:]); err != nil {
			return nil, fmt.Errorf("%w: entry %d of %d: %v", errBadSnapshot, i, n, err)
		}
		sn.entries = append(sn.entries, entry{off: int64(be.Uint64(rec[:])), due: int64(be.Uint64(rec[8:]))})
	}
	sum := crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil || be.Uint32(tail[:]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	if _, err := r.Read(tail[:1]); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing bytes", errBadSnapshot)
	}
	return sn, nil
}
