package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/testutil/testkit"
)

// faultFile wraps a segment file and fails writes or fsyncs on demand.
type faultFile struct {
	segmentFile
	inj *faults
}

type faults struct {
	write, sync atomic.Pointer[error]
	syncDelay   atomic.Int64 // nanoseconds each fsync sleeps first
	writeDelay  atomic.Int64 // nanoseconds each write sleeps first
}

func (f *faultFile) Unwrap() segmentFile { return f.segmentFile }

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(time.Duration(f.inj.writeDelay.Load()))
	if e := f.inj.write.Load(); e != nil {
		// A failing write may still have written part of the data.
		n, _ := f.segmentFile.WriteAt(p[:len(p)/2], off)
		return n, *e
	}
	return f.segmentFile.WriteAt(p, off)
}

func (f *faultFile) Datasync() error {
	time.Sleep(time.Duration(f.inj.syncDelay.Load()))
	if e := f.inj.sync.Load(); e != nil {
		return *e
	}
	return f.segmentFile.Datasync()
}

func TestStoreStickyWriteError(t *testing.T) {
	tests := []struct {
		name   string
		mode   FlushMode
		inject func(*faults)
		want   error
	}{
		{"ENOSPC on write, async", AsyncFlush, func(f *faults) { e := error(syscall.ENOSPC); f.write.Store(&e) }, syscall.ENOSPC},
		{"ENOSPC on write, sync", SyncFlush, func(f *faults) { e := error(syscall.ENOSPC); f.write.Store(&e) }, syscall.ENOSPC},
		{"EIO on fsync, sync", SyncFlush, func(f *faults) { e := error(syscall.EIO); f.sync.Store(&e) }, syscall.EIO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inj := &faults{}
			cfg := testConfig(t, t.TempDir())
			cfg.FlushMode = tc.mode
			cfg.wrapFile = func(f segmentFile) segmentFile { return &faultFile{segmentFile: f, inj: inj} }
			s := openStore(t, cfg)
			var acked []*message.Ext
			for i := 0; i < 20; i++ {
				m := newMsg("F", int32(i%2), body(i, 200))
				mustAppend(t, s, m)
				acked = append(acked, m)
			}
			tc.inject(inj)
			// Several concurrent appenders: every one fails, none is acknowledged.
			var wg sync.WaitGroup
			var okAfter atomic.Int32
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 5; i++ {
						_, err := s.Append(context.Background(), newMsg("F", 0, "doomed"))
						if err == nil {
							okAfter.Add(1)
						} else if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, tc.want) {
							t.Errorf("err = %v, want a *WriteError wrapping %v", err, tc.want)
						}
					}
				}()
			}
			wg.Wait()
			if okAfter.Load() != 0 {
				t.Fatalf("%d appends acknowledged after the fault", okAfter.Load())
			}
			// Sticky: still failing after the fault is gone.
			inj.write.Store(nil)
			inj.sync.Store(nil)
			_, err := s.AppendBatch(context.Background(), []*message.Ext{newMsg("F", 0, "x"), newMsg("G", 0, "y")})
			var we *WriteError
			if !errors.As(err, &we) {
				t.Fatalf("AppendBatch after the fault: %v", err)
			}
			st := s.Stats()
			if st.WriteErr == nil || st.WriteErrors == 0 {
				t.Fatalf("stats do not show the error: %+v", st)
			}
			// Reads still work.
			verifyAcked(t, s, acked)
			s.Close()
			// Reopened (disk fixed): everything acknowledged is there, and
			// appends work again.
			s2 := openStore(t, cfg)
			verifyAcked(t, s2, acked)
			// Records written but not acknowledged (their fsync failed) may
			// be recovered too: acknowledged ones must be.
			if s2.MaxOffset("F", 0) < 10 || s2.MaxOffset("F", 1) != 10 {
				t.Fatalf("queues after reopen: %d %d", s2.MaxOffset("F", 0), s2.MaxOffset("F", 1))
			}
			mustAppend(t, s2, newMsg("F", 0, "works again"))
		})
	}
}

func verifyAcked(t *testing.T, s *Store, acked []*message.Ext) {
	t.Helper()
	for _, m := range acked {
		rec, err := s.ReadAt(m.CommitLogOffset)
		if err != nil {
			t.Fatalf("acked record at %d: %v", m.CommitLogOffset, err)
		}
		checkRecordIs(t, rec, m)
	}
}

func TestStoreAsyncFsyncErrorIsSticky(t *testing.T) {
	inj := &faults{}
	cfg := testConfig(t, t.TempDir())
	cfg.wrapFile = func(f segmentFile) segmentFile { return &faultFile{segmentFile: f, inj: inj} }
	s := openStore(t, cfg)
	mustAppend(t, s, newMsg("F", 0, "x"))
	e := error(syscall.EIO)
	inj.sync.Store(&e)
	if err := s.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush: %v", err)
	}
	inj.sync.Store(nil)
	if _, err := s.Append(context.Background(), newMsg("F", 0, "y")); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("Append after a failed fsync: %v", err)
	}
}

// A slow commit-log fsync, or a slow write of a batch, is logged with how
// long it took: every append waiting on it waited as long.
func TestStoreLogsSlowCommit(t *testing.T) {
	tests := []struct {
		name  string
		delay func(*faults) *atomic.Int64
		want  string
	}{
		{"fsync", func(f *faults) *atomic.Int64 { return &f.syncDelay }, "store: commit log fsync slow"},
		{"write", func(f *faults) *atomic.Int64 { return &f.writeDelay }, "store: commit log write slow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs testkit.LogBuffer
			inj := &faults{}
			cfg := testConfig(t, t.TempDir())
			cfg.FlushMode = SyncFlush
			cfg.Logger = logs.Logger()
			cfg.wrapFile = func(f segmentFile) segmentFile { return &faultFile{segmentFile: f, inj: inj} }
			s := openStore(t, cfg)
			mustAppend(t, s, newMsg("F", 0, "fast"))
			if strings.Contains(logs.String(), " slow") {
				t.Fatalf("a fast commit was logged as slow:\n%s", logs.String())
			}
			tc.delay(inj).Store(int64(slowSync + 100*time.Millisecond))
			mustAppend(t, s, newMsg("F", 0, "slow"))
			tc.delay(inj).Store(0)
			if out := logs.String(); !strings.Contains(out, tc.want) || !strings.Contains(out, "took=") {
				t.Fatalf("the slow %s was not logged:\n%s", tc.name, out)
			}
		})
	}
}
