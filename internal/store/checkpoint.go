package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/txmq/txmq/internal/fsutil"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readCheckpoint returns the durable offset in the checkpoint file, or
// ok=false when there is none (or it is damaged: then everything is
// rebuilt, which is slow but safe).
func readCheckpoint(dir string) (off int64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	be := binary.BigEndian
	if len(b) != checkpointSize || be.Uint32(b) != checkpointMagic || be.Uint32(b[4:]) != checkpointVersion ||
		be.Uint32(b[24:]) != crc32.Checksum(b[:24], castagnoli) {
		return 0, false, nil
	}
	off = int64(be.Uint64(b[8:]))
	return off, off >= 0, nil
}

// writeCheckpoint replaces the checkpoint atomically: temp file, fsync,
// rename, fsync of the directory.
func writeCheckpoint(dir string, off int64) error {
	var b [checkpointSize]byte
	be := binary.BigEndian
	be.PutUint32(b[0:], checkpointMagic)
	be.PutUint32(b[4:], checkpointVersion)
	be.PutUint64(b[8:], uint64(off))
	be.PutUint64(b[16:], uint64(time.Now().UnixMilli()))
	be.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	tmp := filepath.Join(dir, checkpointTmpName)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b[:]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointFileName)); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// checkpoint makes consume queues and index durable up to the visible end
// of the commit log, or the indexer's progress if that is behind, and
// records that point: the checkpoint never claims more than the index
// holds, so recovery re-indexes what the indexer had not reached. Order:
// commit log fsync (so the checkpoint never names data that is not
// durable), consume queues and index sync, then the checkpoint file.
func (s *Store) checkpoint() error {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	// Both loaded before the syncs below, which then cover them.
	cp := min(s.visible.Load(), s.indexed.Load())
	if cp == s.lastCP {
		return nil
	}
	if err := s.syncTo(cp); err != nil {
		return err
	}
	if err := s.cq.Sync(); err != nil {
		return fmt.Errorf("store: checkpoint: consume queues: %w", err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("store: checkpoint: index: %w", err)
	}
	if err := writeCheckpoint(s.dir, cp); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	s.lastCP = cp
	return nil
}

// checkpointLoop advances the checkpoint every CheckpointInterval.
func (s *Store) checkpointLoop() {
	s.every(s.cfg.CheckpointInterval, func() {
		if err := s.checkpoint(); err != nil {
			s.log.Warn("store: checkpoint failed", "err", err)
		}
	})
}
