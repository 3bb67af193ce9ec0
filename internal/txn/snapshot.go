package txn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/lifecycle"
)

// Snapshot file layout (big-endian):
//
//	magic "TXMQTXS1" | offset int64 | groups uint32 | groups × (len uint16, bytes) |
//	entries uint32 | entries × (halfOffset int64, stored int64, next int64,
//	uniqHash uint64, group uint32, checks uint16) | CRC-32C of all before uint32
//
// offset is the commit-log offset the state reflects: every transactional
// record before it is in the state. The file is written only after the
// store flushed everything up to offset, and replaced atomically.
const (
	snapMagic     = "TXMQTXS1"
	snapEntryLen  = 8 + 8 + 8 + 8 + 4 + 2
	snapHeaderLen = 8 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadSnapshot: the snapshot file is corrupt.
var errBadSnapshot = errors.New("txn: corrupt snapshot")

type snapEntry struct {
	off, stored, next int64
	uniq              uint64
	group             uint32
	checks            uint16
}

type snapshot struct {
	offset  int64
	groups  []string
	entries []snapEntry
}

// snapshotLoop takes a snapshot every SnapshotInterval.
func (s *Service) snapshotLoop(ctx context.Context) {
	lifecycle.Every(ctx, s.cfg.SnapshotInterval, func() {
		if err := s.takeSnapshot(); err != nil {
			s.log.Warn("txn: snapshot failed", "err", err)
		}
	})
}

// takeSnapshot copies the pending set under mu, encodes it outside the
// lock, flushes the store (so the log is durable up to the snapshot's
// offset) and replaces the file.
func (s *Service) takeSnapshot() error {
	if s.cfg.SnapshotDir == "" {
		return nil
	}
	// Allocate (and fault in) the copy before taking the lock: with a
	// million pending that is 40 MB.
	buf := make([]snapEntry, 0, max(0, s.c.pendingNow.Load())*9/8+64)
	s.mu.Lock()
	if !s.live || s.closed {
		s.mu.Unlock()
		return nil
	}
	sn := s.captureLocked(buf)
	s.compactParkedLocked()
	s.mu.Unlock()
	b := encodeSnapshot(sn)
	if err := s.store.Flush(); err != nil {
		return fmt.Errorf("txn: snapshot: flush store: %w", err)
	}
	if err := fsutil.WriteFileAtomic(snapshotPath(s.cfg.SnapshotDir), b, 0o644); err != nil {
		return fmt.Errorf("txn: snapshot: %w", err)
	}
	s.c.snapshots.Add(1)
	return nil
}

// captureLocked copies what a snapshot records into entries (appended)
// and returns it. mu held. It is the only part of a snapshot that holds
// the lock (which the store's dispatch goroutine takes in OnRecord), so
// it walks a slice, not the pending map: with 1,000,000 pending a map
// walk takes about 90 ms, the age heap's slice about 13 ms.
func (s *Service) captureLocked(entries []snapEntry) *snapshot {
	off := s.applied
	if s.live {
		off = max(off, s.seen.Load())
	}
	// groups is append-only and its strings immutable: the header is a
	// consistent copy.
	sn := &snapshot{offset: off, groups: s.groups[:len(s.groups):len(s.groups)], entries: entries}
	add := func(e *entry) {
		sn.entries = append(sn.entries, snapEntry{off: e.off, stored: e.stored, next: e.next, uniq: e.uniq,
			group: e.group, checks: e.checks})
	}
	// The age heap holds only pending entries, and every one of them but
	// while the scheduler works on a retention discard (it takes them out
	// of the heap): equal sizes mean equal sets.
	if s.ageQ.len() == len(s.pending) {
		for _, e := range s.ageQ.a {
			add(e)
		}
	} else {
		for _, e := range s.pending {
			add(e)
		}
	}
	return sn
}

// encodeSnapshot encodes a captured snapshot (layout above).
func encodeSnapshot(sn *snapshot) []byte {
	n := snapHeaderLen + 4 + 4 + len(sn.entries)*snapEntryLen + 4
	for _, g := range sn.groups {
		n += 2 + len(g)
	}
	b := make([]byte, 0, n)
	be := binary.BigEndian
	b = append(b, snapMagic...)
	b = be.AppendUint64(b, uint64(sn.offset))
	b = be.AppendUint32(b, uint32(len(sn.groups)))
	for _, g := range sn.groups {
		b = be.AppendUint16(b, uint16(len(g)))
		b = append(b, g...)
	}
	b = be.AppendUint32(b, uint32(len(sn.entries)))
	for _, e := range sn.entries {
		b = be.AppendUint64(b, uint64(e.off))
		b = be.AppendUint64(b, uint64(e.stored))
		b = be.AppendUint64(b, uint64(e.next))
		b = be.AppendUint64(b, e.uniq)
		b = be.AppendUint32(b, e.group)
		b = be.AppendUint16(b, e.checks)
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encodeSnapshotLocked captures and encodes the snapshot. mu held.
func (s *Service) encodeSnapshotLocked() []byte {
	return encodeSnapshot(s.captureLocked(nil))
}

// compactParkedLocked drops resolved entries from the parked lists. It
// looks an entry up in the pending map only when it is marked ending
// (resolve marks every entry it removes so).
func (s *Service) compactParkedLocked() {
	for g, list := range s.parked {
		out := list[:0]
		for _, e := range list {
			if e.flags&fParked != 0 && (e.flags&fEnding == 0 || s.pending[e.off] == e) {
				out = append(out, e)
			}
		}
		clear(list[len(out):])
		if len(out) == 0 {
			delete(s.parked, g)
		} else {
			s.parked[g] = out
		}
	}
}

// loadSnapshot reads the snapshot; nil, nil when there is none.
func (s *Service) loadSnapshot() (*snapshot, error) {
	if s.cfg.SnapshotDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(snapshotPath(s.cfg.SnapshotDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("txn: read snapshot: %w", err)
	}
	return decodeSnapshot(b)
}

func decodeSnapshot(b []byte) (*snapshot, error) {
	be := binary.BigEndian
	if len(b) < snapHeaderLen+4+4+4 || string(b[:8]) != snapMagic {
		return nil, fmt.Errorf("%w: bad magic or too short (%d bytes)", errBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	sn := &snapshot{offset: int64(be.Uint64(body[8:]))}
	p := body[16:]
	ng := int(be.Uint32(p))
	p = p[4:]
	if ng > len(p)/2 {
		return nil, fmt.Errorf("%w: %d groups", errBadSnapshot, ng)
	}
	for i := 0; i < ng; i++ {
		if len(p) < 2 || len(p) < 2+int(be.Uint16(p)) {
			return nil, fmt.Errorf("%w: group %d truncated", errBadSnapshot, i)
		}
		l := int(be.Uint16(p))
		sn.groups = append(sn.groups, string(p[2:2+l]))
		p = p[2+l:]
	}
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: entry count missing", errBadSnapshot)
	}
	ne := int(be.Uint32(p))
	p = p[4:]
	if len(p) != ne*snapEntryLen {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errBadSnapshot, ne, len(p))
	}
	sn.entries = make([]snapEntry, ne)
	for i := range sn.entries {
		q := p[i*snapEntryLen:]
		e := snapEntry{
			off:    int64(be.Uint64(q)),
			stored: int64(be.Uint64(q[8:])),
			next:   int64(be.Uint64(q[16:])),
			uniq:   be.Uint64(q[24:]),
			group:  be.Uint32(q[32:]),
			checks: be.Uint16(q[36:]),
		}
		if int(e.group) >= len(sn.groups) {
			return nil, fmt.Errorf("%w: entry %d names group %d of %d", errBadSnapshot, i, e.group, len(sn.groups))
		}
		sn.entries[i] = e
	}
	if sn.offset < 0 {
		return nil, fmt.Errorf("%w: offset %d", errBadSnapshot, sn.offset)
	}
	return sn, nil
}

// installSnapshot loads a decoded snapshot into the (empty) index.
func (s *Service) installSnapshot(sn *snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range sn.entries {
		s.insert(e.off, e.stored, e.next, e.uniq, sn.groups[e.group], e.checks)
	}
	s.applied = sn.offset
}
