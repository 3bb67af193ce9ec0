package txn

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/testutil/testkit"
)

func plain(i int) *message.Ext {
	return &message.Ext{Topic: "Plain", QueueID: 0, BornHost: storeHost, StoreHost: storeHost,
		Body: make([]byte, 1000), Properties: message.AppendProperty("", message.PropUniqClientMessageID, "P"+strconv.Itoa(i))}
}

func TestRestartPreservesState(t *testing.T) {
	for _, withSnapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("snapshot=%v", withSnapshot), func(t *testing.T) {
			h := newHarness(t, nil)
			p := h.connectProducer("PG", nil)
			var rs []PrepareResult
			for i := 0; i < 10; i++ {
				rs = append(rs, h.prepare("PG", uniqID(i)))
			}
			for i := 0; i < 3; i++ {
				h.endOff("PG", rs[i], ResolutionCommit)
			}
			for i := 3; i < 5; i++ {
				h.endOff("PG", rs[i], ResolutionRollback)
			}
			h.clk.Add(6 * time.Second)
			h.tick()
			p.waitChecks(t, 5)
			for i := 0; i < 300; i++ { // a log much larger than what follows the snapshot
				if _, err := h.log.Append(context.Background(), plain(i)); err != nil {
					t.Fatal(err)
				}
			}
			if !withSnapshot {
				h.svc.cfg.SnapshotDir = "" // Close writes none
				os.Remove(snapshotPath(h.dir))
			}
			p.cl.Close()
			h.restart()
			logEnd := h.log.Stats().MaxOffset
			st := h.svc.Stats()
			if withSnapshot {
				if st.ReplayFrom < logEnd-1 || h.log.scanBytes.Load() > logEnd/10 {
					t.Fatalf("replayed from %d (%d bytes read) of a %d-byte log", st.ReplayFrom, h.log.scanBytes.Load(), logEnd)
				}
			} else if st.ReplayFrom != 0 {
				t.Fatalf("replay from %d", st.ReplayFrom)
			}
			if h.pendingN() != 5 {
				t.Fatalf("pending %d", h.pendingN())
			}
			for i := 5; i < 10; i++ {
				e, ok := h.entry(rs[i].Append.CommitLogOffset)
				if !ok || e.checks != 1 || e.next != h.clk.Now().UnixMilli()+30_000 {
					t.Fatalf("txn %d after restart: %+v %v", i, e, ok)
				}
			}
			// Resolved ones stay resolved; pending ones are checked at the interval.
			p2 := h.connectProducer("PG", nil)
			h.clk.Add(30 * time.Second)
			h.tick()
			p2.waitChecks(t, 5)
			for _, c := range p2.checks {
				n, _ := strconv.Atoi(strings.TrimPrefix(c.ext["msgId"], "7F0000010001"))
				if n < 5 {
					t.Fatalf("resolved transaction %d checked after restart", n)
				}
			}
			for i := 0; i < 10; i++ {
				want := 0
				if i < 3 {
					want = 1
				}
				if got := h.copiesOf(uniqID(i)); got != want {
					t.Fatalf("txn %d: %d copies", i, got)
				}
			}
		})
	}
}

func TestCorruptSnapshotIgnored(t *testing.T) {
	h := newHarness(t, nil)
	r := h.prepare("PG", uniqID(1))
	h.restart()
	b, err := os.ReadFile(snapshotPath(h.dir))
	if err != nil {
		t.Fatal(err)
	}
	h.close()
	b[len(b)/2] ^= 0xff
	os.WriteFile(snapshotPath(h.dir), b, 0o644)
	h.open()
	if _, ok := h.entry(r.Append.CommitLogOffset); !ok || h.svc.Stats().ReplayFrom != 0 {
		t.Fatal("state lost with a corrupt snapshot")
	}
	// A snapshot beyond the log end (log replaced) is ignored too.
	h.close()
	buf := (&Service{pending: map[int64]*entry{}, groups: []string{"PG"}, applied: 1 << 40}).encodeSnapshotLocked()
	os.WriteFile(snapshotPath(h.dir), buf, 0o644)
	h.open()
	if _, ok := h.entry(r.Append.CommitLogOffset); !ok || h.svc.Stats().ReplayFrom != 0 {
		t.Fatal("state lost with a snapshot ahead of the log")
	}
}

// TestCrashHelper is the child process of TestSIGKILL: it runs
// transactions on a SYNC_FLUSH store until it is killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("TXN_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	var hook atomic.Pointer[Service]
	log := openStore(t, filepath.Join(dir, "store"), store.SyncFlush, nil, nil, &hook)
	svc, err := New(Config{Enable: true, Timeout: time.Hour, SnapshotDir: dir, SnapshotInterval: 20 * time.Millisecond,
		StoreHost: storeHost}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	hook.Store(svc)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	start, _ := strconv.Atoi(os.Getenv("TXN_CRASH_START"))
	out := bufio.NewWriter(os.Stdout)
	for i := start; ; i++ {
		r, err := svc.Prepare(context.Background(), halfMsg("TopicA", 1, uniqID(i), "b"), "PG")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(out, "P %d %d %d\n", i, r.Append.CommitLogOffset, r.Append.QueueOffset)
		out.Flush()
		res := []Resolution{ResolutionCommit, ResolutionRollback, ResolutionUnknown}[i%3]
		if res != ResolutionUnknown {
			if _, err := svc.End(context.Background(), EndRequest{ProducerGroup: "PG", CommitLogOffset: r.Append.CommitLogOffset,
				TranStateTableOffset: r.Append.QueueOffset, HasOffsets: true, Resolution: res}); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(out, "E %d\n", i)
			out.Flush()
		}
		log.Append(context.Background(), plain(i))
	}
}

// TestSIGKILL kills a process running transactions at random moments,
// reopens, and checks that every acknowledged outcome survived and that
// nothing resolved is pending again.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	type txState struct {
		off, qoff int64
		ended     bool
	}
	txs := map[int]*txState{}
	next := 0
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TXN_CRASH_DIR="+dir, "TXN_CRASH_START="+strconv.Itoa(next))
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		stopAt := 60 + round*37
		lines := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || (f[0] != "P" && f[0] != "E") {
				continue
			}
			i, _ := strconv.Atoi(f[1])
			if f[0] == "P" {
				off, _ := strconv.ParseInt(f[2], 10, 64)
				qoff, _ := strconv.ParseInt(f[3], 10, 64)
				txs[i] = &txState{off: off, qoff: qoff}
				next = i + 1
			} else {
				txs[i].ended = true
			}
			if lines++; lines == stopAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		cmd.Wait()
		if lines < stopAt {
			t.Fatalf("helper stopped after %d lines", lines)
		}
	}
	h := &harness{t: t, dir: dir, clk: testkit.NewClock(time.Now()), prods: newTestProducers(t), flush: store.SyncFlush}
	h.cfg = Config{Enable: true, Timeout: time.Hour, SnapshotDir: dir, StoreHost: storeHost, Now: h.clk.Now, noBackground: true}
	h.open()
	defer h.close()
	if h.svc.Stats().ReplayFrom == 0 {
		t.Error("no snapshot was used")
	}
	for i, tx := range txs {
		_, pending := h.entry(tx.off)
		copies := h.copiesOf(uniqID(i))
		switch i % 3 {
		case 0: // commit
			if tx.ended && (copies != 1 || pending) || copies > 1 || copies == 1 && pending {
				t.Errorf("txn %d (commit, acked %v): %d copies, pending %v", i, tx.ended, copies, pending)
			}
		case 1: // rollback
			if copies != 0 || tx.ended && pending {
				t.Errorf("txn %d (rollback, acked %v): %d copies, pending %v", i, tx.ended, copies, pending)
			}
		case 2: // unknown: stays pending
			if copies != 0 || !pending {
				t.Errorf("txn %d (unknown): %d copies, pending %v", i, copies, pending)
			}
		}
	}
	t.Logf("%d transactions over 4 kills; replay from %d to %d", len(txs), h.svc.Stats().ReplayFrom, h.svc.Stats().ReplayTo)
}

// TestSnapshotWhileEntryOutOfAgeHeap: a snapshot taken while the scheduler
// has an entry out of the age heap (a retention discard in progress) still
// records every pending transaction.
func TestSnapshotWhileEntryOutOfAgeHeap(t *testing.T) {
	h := newHarness(t, nil)
	var rs []PrepareResult
	for i := range 3 {
		rs = append(rs, h.prepare("PG", uniqID(i)))
	}
	s := h.svc
	s.mu.Lock()
	e := s.pending[rs[1].Append.CommitLogOffset]
	s.ageQ.remove(e) // as takeDue does
	s.mu.Unlock()
	if err := s.takeSnapshot(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.ageQ.push(e)
	s.mu.Unlock()
	sn, err := s.loadSnapshot()
	if err != nil || sn == nil {
		t.Fatalf("snapshot: %v", err)
	}
	got := map[int64]bool{}
	for _, se := range sn.entries {
		got[se.off] = true
	}
	for i, r := range rs {
		if !got[r.Append.CommitLogOffset] {
			t.Errorf("txn %d missing from the snapshot (%d entries)", i, len(sn.entries))
		}
	}
}
