package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// TestStoreQueryByKeyReadYourWrites appends a message with a new key and
// queries it at once, many times, while other goroutines append keyed
// messages: the index is built in the background, and a query must still
// see every append that completed before it.
func TestStoreQueryByKeyReadYourWrites(t *testing.T) {
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.FlushMode = mode
			cfg.IndexEntries = 1 << 14
			s := openStore(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for g := 0; g < 3; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						m := newMsg("RYW", int32(g), body(i, 200), message.PropKeys, fmt.Sprintf("bg-%d-%d other", g, i))
						if _, err := s.Append(ctx, m); err != nil && ctx.Err() == nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			n := 500
			if mode == SyncFlush {
				n = 150
			}
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("k%d", i)
				m := newMsg("RYW", 3, body(i, 100), message.PropKeys, key, message.PropUniqClientMessageID, "U"+key)
				mustAppend(t, s, m)
				for _, k := range []string{key, "U" + key} {
					got, err := s.QueryByKey("RYW", k, 4, 0, 1<<62)
					if err != nil || len(got) != 1 {
						t.Fatalf("query %q right after its append: %d records, %v", k, len(got), err)
					}
					checkRecordIs(t, got[0], m)
				}
			}
			cancel()
			wg.Wait()
		})
	}
}

// copyDir copies the store's files as they are (a SIGKILL keeps the page
// cache, so this is what a process crash leaves), skipping the lock.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == lockFileName {
			return nil
		}
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStoreRecoverIndexLagging: the indexer is held back, appends go on
// and a checkpoint is taken; the checkpoint must not pass the index, and a
// crash at that point (the directory copied as is) must recover a
// complete index.
func TestStoreRecoverIndexLagging(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	var mu sync.Mutex
	hold := make(chan struct{})
	holding := false
	cfg.beforeIndex = func() {
		mu.Lock()
		h, c := holding, hold
		mu.Unlock()
		if h {
			<-c
		}
	}
	s := openStore(t, cfg)
	var once sync.Once
	release := func() {
		once.Do(func() {
			mu.Lock()
			holding = false
			close(hold)
			mu.Unlock()
		})
	}
	t.Cleanup(release) // before Close (cleanups run last first)
	var msgs []*message.Ext
	appendKeyed := func(from, to int) {
		for i := from; i < to; i++ {
			m := newMsg("Lag", int32(i%2), body(i, 300), message.PropKeys, fmt.Sprintf("key%d", i))
			mustAppend(t, s, m)
			msgs = append(msgs, m)
		}
	}
	appendKeyed(0, 50)
	if err := s.Flush(); err != nil { // index caught up, checkpoint at the end
		t.Fatal(err)
	}
	cp1 := s.Stats().CheckpointOffset
	mu.Lock()
	holding = true
	mu.Unlock()
	appendKeyed(50, 250) // several segments: appends do not wait for the index
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.CheckpointOffset > st.IndexedOffset || st.IndexedOffset >= st.MaxOffset || st.CheckpointOffset < cp1 {
		t.Fatalf("checkpoint %d, indexed %d, visible %d (earlier checkpoint %d): the checkpoint must not pass the index",
			st.CheckpointOffset, st.IndexedOffset, st.MaxOffset, cp1)
	}
	// A query cannot see the new keys yet: it waits, bounded.
	qerr := make(chan error, 1)
	go func() {
		got, err := s.QueryByKey("Lag", "key200", 4, 0, 1<<62)
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("%d records", len(got))
		}
		qerr <- err
	}()
	crash := t.TempDir()
	copyDir(t, dir, crash)
	select {
	case err := <-qerr:
		t.Fatalf("query returned while the index was held back: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-qerr; err != nil {
		t.Fatalf("query after the index caught up: %v", err)
	}

	ccfg := testConfig(t, crash)
	s2 := openStore(t, ccfg)
	if got := s2.Stats().RecoveredBytes; got == 0 {
		t.Fatalf("nothing re-dispatched after the crash")
	}
	for i, m := range msgs {
		got, err := s2.QueryByKey("Lag", fmt.Sprintf("key%d", i), 4, 0, 1<<62)
		if err != nil || len(got) != 1 {
			t.Fatalf("after the crash, key%d: %d records, %v", i, len(got), err)
		}
		checkRecordIs(t, got[0], m)
	}
}

// TestStoreIndexErrorIsSticky: a failing index write stops the indexer
// like a failed dispatch (sticky, logged): later appends and queries fail,
// and reopening rebuilds the index.
func TestStoreIndexErrorIsSticky(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, newMsg("IE", 0, "before", message.PropKeys, "k0"))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.idx.Close() // every Add fails from now on
	mustAppend(t, s, newMsg("IE", 0, "after", message.PropKeys, "k1"))
	if _, err := s.QueryByKey("IE", "k1", 4, 0, 1<<62); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("query after an index failure: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Append(context.Background(), newMsg("IE", 0, "later"))
		if errors.Is(err, ErrWriteFailed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after an index failure: %v", err)
		}
	}
	if st := s.Stats(); st.WriteErr == nil || st.IndexedOffset >= st.MaxOffset {
		t.Fatalf("stats after the index failure: %+v", st)
	}
	s.Close() // fails (index closed); the checkpoint stays behind
	s2 := openStore(t, cfg)
	for _, k := range []string{"k0", "k1"} {
		if got, err := s2.QueryByKey("IE", k, 4, 0, 1<<62); err != nil || len(got) != 1 {
			t.Fatalf("after reopening, %s: %d records, %v", k, len(got), err)
		}
	}
}

// TestStoreCloseStopsGoroutines: Open starts the writer, committer,
// flusher (AsyncFlush), indexer, checkpointer, cleaner and trimmer; Close
// ends them all.
func TestStoreCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		cfg := testConfig(t, t.TempDir())
		cfg.FlushMode = mode
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, newMsg("G", 0, "x", message.PropKeys, "k"))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeyPropsMatchesProperty: the indexer's one-pass scan finds what
// message.Property finds for KEYS and UNIQ_KEY, malformed entries included.
func TestKeyPropsMatchesProperty(t *testing.T) {
	for _, props := range []string{
		"",
		"KEYS\x01a b\x02",
		"UNIQ_KEY\x01u\x02KEYS\x01a\x02",
		"KEYS\x01a\x01b\x02KEYS\x01c\x02",
		"KEYS\x02UNIQ_KEY\x01u1\x02UNIQ_KEY\x01u2\x02",
		"TAGS\x01t\x02KEYS\x01\x02UNIQ_KEY\x01\x02",
		"KEYS\x01x",
		"\x01\x02KEYSX\x01y\x02KEY\x01z\x02",
	} {
		keys, uniq, hasKeys, hasUniq := keyProps(props)
		wk, wok := message.Property(props, message.PropKeys)
		wu, wuok := message.Property(props, message.PropUniqClientMessageID)
		if keys != wk || hasKeys != wok || uniq != wu || hasUniq != wuok {
			t.Errorf("%q: got %q %v, %q %v; want %q %v, %q %v", props, keys, hasKeys, uniq, hasUniq, wk, wok, wu, wuok)
		}
	}
}
