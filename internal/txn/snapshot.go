package txn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"time"

	"github.com/txmq/txmq/internal/fsutil"
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
	t := time.NewTicker(s.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.takeSnapshot(); err != nil {
				s.log.Warn("txn: snapshot failed", "err", err)
			}
		}
	}
}

// takeSnapshot encodes the pending set under mu, flushes the store (so the
// log is durable up to the snapshot's offset) and replaces the file.
func (s *Service) takeSnapshot() error {
	if s.cfg.SnapshotDir == "" {
		return nil
	}
	s.mu.Lock()
	if !s.live || s.closed {
		s.mu.Unlock()
		return nil
	}
	buf := s.encodeSnapshotLocked()
	s.compactParkedLocked()
	s.mu.Unlock()
	if err := s.store.Flush(); err != nil {
		return fmt.Errorf("txn: snapshot: flush store: %w", err)
	}
	if err := fsutil.WriteFileAtomic(snapshotPath(s.cfg.SnapshotDir), buf, 0o644); err != nil {
		return fmt.Errorf("txn: snapshot: %w", err)
	}
	s.c.snapshots.Add(1)
	return nil
}

func (s *Service) encodeSnapshotLocked() []byte {
	n := snapHeaderLen + 4 + 4 + len(s.pending)*snapEntryLen + 4
	for _, g := range s.groups {
		n += 2 + len(g)
	}
	b := make([]byte, 0, n)
	be := binary.BigEndian
	b = append(b, snapMagic...)
	off := s.applied
	if s.live {
		off = max(off, s.seen.Load())
	}
	b = be.AppendUint64(b, uint64(off))
	b = be.AppendUint32(b, uint32(len(s.groups)))
	for _, g := range s.groups {
		b = be.AppendUint16(b, uint16(len(g)))
		b = append(b, g...)
	}
	b = be.AppendUint32(b, uint32(len(s.pending)))
	for _, e := range s.pending {
		b = be.AppendUint64(b, uint64(e.off))
		b = be.AppendUint64(b, uint64(e.stored))
		b = be.AppendUint64(b, uint64(e.next))
		b = be.AppendUint64(b, e.uniq)
		b = be.AppendUint32(b, e.group)
		b = be.AppendUint16(b, e.checks)
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// compactParkedLocked drops resolved entries from the parked lists.
func (s *Service) compactParkedLocked() {
	for g, list := range s.parked {
		out := list[:0]
		for _, e := range list {
			if e.flags&fParked != 0 && s.pending[e.off] == e {
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
