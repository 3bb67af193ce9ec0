package store

import (
	"bufio"
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

const crashDirEnv = "TXMQ_STORE_CRASH_DIR"

func crashConfig(t testing.TB, dir string) Config {
	cfg := testConfig(t, dir)
	cfg.FlushMode = SyncFlush
	cfg.CheckpointInterval = 20 * time.Millisecond // checkpoints land between kills
	cfg.MaxMessageSize = 2048
	cfg.CQEntriesPerFile = 256 // consume-queue files roll too
	return cfg
}

var crashTopics = []string{"CrashA", "CrashB", "CrashC"}

// TestHelperProcessAppender is not a test: TestStoreCrashRecovery runs the
// test binary with it as a helper process that appends (SyncFlush) from
// several goroutines and prints every acknowledged append, until it is
// killed.
func TestHelperProcessAppender(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestStoreCrashRecovery")
	}
	cfg := crashConfig(t, dir)
	cfg.Logger = nil
	s, err := Open(cfg)
	if err != nil {
		fmt.Printf("ERR open: %v\n", err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	emit := func(m *message.Ext) {
		line := fmt.Sprintf("ACK %d %s %d %d %d .\n", m.CommitLogOffset, m.Topic, m.QueueID, m.QueueOffset, crc32.ChecksumIEEE(m.Body))
		outMu.Lock()
		os.Stdout.WriteString(line) // one write(2): lines are never torn
		outMu.Unlock()
	}
	os.Stdout.WriteString("READY\n")
	for g := 0; g < 6; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
			mk := func() *message.Ext {
				b := make([]byte, 20+rng.IntN(900))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				return newMsg(crashTopics[rng.IntN(len(crashTopics))], int32(rng.IntN(3)), string(b),
					message.PropKeys, "k"+strconv.Itoa(rng.IntN(100)), message.PropTags, "t")
			}
			for {
				if rng.IntN(6) == 0 {
					ms := []*message.Ext{mk(), mk(), mk()}
					if _, err := s.AppendBatch(context.Background(), ms); err == nil {
						for _, m := range ms {
							emit(m)
						}
					}
					continue
				}
				m := mk()
				if _, err := s.Append(context.Background(), m); err == nil {
					emit(m)
				}
			}
		}()
	}
	select {}
}

type crashAck struct {
	off   int64
	topic string
	qid   int32
	qoff  int64
	crc   uint32
}

func parseAck(line string) (crashAck, bool) {
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "ACK" || f[6] != "." {
		return crashAck{}, false
	}
	off, e1 := strconv.ParseInt(f[1], 10, 64)
	qid, e2 := strconv.ParseInt(f[3], 10, 32)
	qoff, e3 := strconv.ParseInt(f[4], 10, 64)
	crc, e4 := strconv.ParseUint(f[5], 10, 32)
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil {
		return crashAck{}, false
	}
	return crashAck{off, f[2], int32(qid), qoff, uint32(crc)}, true
}

// runCrashCycle runs the helper, kills it with SIGKILL killAfter after it
// is ready (or after start when early), and returns the acknowledged
// appends it printed.
func runCrashCycle(t *testing.T, dir string, killAfter time.Duration, early bool) []crashAck {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var acks []crashAck
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "READY" {
				close(ready)
				continue
			}
			if a, ok := parseAck(line); ok {
				acks = append(acks, a)
			} else if strings.HasPrefix(line, "ERR") {
				t.Errorf("helper: %s", line)
			}
		}
	}()
	if !early {
		select {
		case <-ready:
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("helper did not get ready")
		}
	}
	time.Sleep(killAfter)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	cmd.Wait()
	return acks
}

func TestStoreCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	cfg := crashConfig(t, dir)
	const cycles = 20
	start := time.Now()
	var acked []crashAck
	for c := 0; c < cycles; c++ {
		if time.Since(start) > 35*time.Second {
			t.Logf("stopping after %d cycles to stay within the time bound", c)
			break
		}
		early := c%5 == 4 // sometimes kill during start-up (recovery)
		kill := time.Duration(20+rand.IntN(281)) * time.Millisecond
		if early {
			kill = time.Duration(rand.IntN(40)) * time.Millisecond
		}
		got := runCrashCycle(t, dir, kill, early)
		acked = append(acked, got...)
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", c, err)
		}
		verifyCrashState(t, s, acked)
		st := s.Stats()
		t.Logf("cycle %d: killed after %v: %d new acks (%d total); log %d..%d in %d segments, recovered %d bytes, truncated %d",
			c, kill, len(got), len(acked), st.MinOffset, st.MaxOffset, st.Segments, st.RecoveredBytes, st.TruncatedBytes)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no append was ever acknowledged")
	}
}

// verifyCrashState checks that every acknowledged record is present and
// byte-identical at its offset, visible at its queue offset, and that the
// queues have no holes.
func verifyCrashState(t *testing.T, s *Store, acked []crashAck) {
	t.Helper()
	for _, a := range acked {
		rec, err := s.ReadAt(a.off)
		if err != nil {
			t.Fatalf("acknowledged record %+v lost: %v", a, err)
		}
		v, err := message.Parse(rec)
		if err != nil || string(v.Topic()) != a.topic || v.QueueID() != a.qid || v.QueueOffset() != a.qoff || crc32.ChecksumIEEE(v.Body()) != a.crc {
			t.Fatalf("record at %d is not the acknowledged one %+v (err %v)", a.off, a, err)
		}
		r, err := s.GetMessages(a.topic, a.qid, a.qoff, 1, 0, nil)
		if err != nil || r.Status != Found || string(r.Records[0]) != string(rec) {
			t.Fatalf("acknowledged record %+v not visible at its queue offset: %v %v", a, err, r.Status)
		}
		r.Release()
	}
	for _, topic := range crashTopics {
		for q := int32(0); q < 3; q++ {
			next := s.MinOffset(topic, q)
			for next < s.MaxOffset(topic, q) {
				r, err := s.GetMessages(topic, q, next, 1000, 0, nil)
				if err != nil || r.Status != Found {
					t.Fatalf("%s/%d at %d: %v %v", topic, q, next, err, r.Status)
				}
				for i, rec := range r.Records {
					v, err := checkRecord(rec, int64(v64(rec[message.PosPhysicalOffset:])))
					if err != nil || r.QueueOffsets[i] != next || v.QueueOffset() != next {
						t.Fatalf("%s/%d: hole or bad record at %d (got %d): %v", topic, q, next, r.QueueOffsets[i], err)
					}
					next++
				}
				r.Release()
			}
		}
	}
}

func v64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
