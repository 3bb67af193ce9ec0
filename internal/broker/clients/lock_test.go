package clients

import (
	"slices"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil/testkit"
)

func TestClientsQueueLocks(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_700_000_000, 0))
	m := NewManager(Config{Now: clock.Now, Logger: testLogger(t)})
	q := func(ids ...int32) []queueKey {
		var out []queueKey
		for _, id := range ids {
			out = append(out, queueKey{Topic: "T", BrokerName: "b", QueueID: id})
		}
		return out
	}
	type step struct {
		name    string
		advance time.Duration
		op      string // lock, unlock, drop, scan
		client  string
		queues  []int32
		want    []int32 // queues granted (lock)
		held    map[string][]int32
	}
	steps := []step{
		{name: "grant free", op: "lock", client: "a", queues: []int32{0, 1}, want: []int32{0, 1},
			held: map[string][]int32{"a": {0, 1}}},
		{name: "deny held", op: "lock", client: "b", queues: []int32{1, 2}, want: []int32{2},
			held: map[string][]int32{"a": {0, 1}, "b": {2}}},
		{name: "renew own", advance: 50 * time.Second, op: "lock", client: "a", queues: []int32{0}, want: []int32{0}},
		{name: "queue 1 lease still valid at 60 s", advance: 10 * time.Second, op: "lock", client: "b", queues: []int32{1},
			want: []int32{}, held: map[string][]int32{"a": {0, 1}, "b": {2}}},
		{name: "expired lease is taken over", advance: time.Second, op: "lock", client: "b", queues: []int32{1},
			want: []int32{1}, held: map[string][]int32{"a": {0}, "b": {1}}}, // b's queue 2 expired too
		{name: "unlock only own", op: "unlock", client: "a", queues: []int32{0, 1},
			held: map[string][]int32{"b": {1}}},
		{name: "relock after unlock", op: "lock", client: "a", queues: []int32{0}, want: []int32{0}},
		{name: "drop releases", op: "drop", client: "b", held: map[string][]int32{"a": {0}}},
		{name: "scan forgets expired", advance: 61 * time.Second, op: "scan", held: map[string][]int32{}},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		switch s.op {
		case "lock":
			got := m.tryLock("CG", s.client, q(s.queues...))
			if want := q(s.want...); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s: granted %v, want %v", s.name, got, want)
			}
		case "unlock":
			m.unlock("CG", s.client, q(s.queues...))
		case "drop":
			m.releaseClientLocks(s.client)
		case "scan":
			m.expireLocks()
			if n := m.Stats().QueueLocks; n != 0 {
				t.Errorf("%s: %d locks left", s.name, n)
			}
		}
		if s.held == nil {
			continue
		}
		for _, c := range []string{"a", "b"} {
			var held []int32
			for id := range int32(4) {
				if m.IsLocked("CG", "T", "b", id, c) {
					held = append(held, id)
				}
			}
			if !slices.Equal(held, s.held[c]) {
				t.Errorf("%s: %s holds %v, want %v", s.name, c, held, s.held[c])
			}
		}
	}
	if m.IsLocked("other", "T", "b", 0, "a") || m.IsLocked("CG", "T", "other-broker", 0, "a") {
		t.Error("lock leaked to another group or broker")
	}
}

func TestClientsLocksReleasedOnExpiryAndLeave(t *testing.T) {
	e := newEnv(t, nil)
	a := e.dial("a")
	a.heartbeat(nil, map[string]map[string]string{"CG": {"T": "*"}, "CG2": {"T": "*"}})
	e.m.tryLock("CG", "a", []queueKey{{"T", "broker-a", 0}})
	e.m.tryLock("CG2", "a", []queueKey{{"T", "broker-a", 0}})

	// Leaving CG (heartbeat without it) releases CG's lock only.
	a.heartbeat(nil, map[string]map[string]string{"CG2": {"T": "*"}})
	if e.m.IsLocked("CG", "T", "broker-a", 0, "a") || !e.m.IsLocked("CG2", "T", "broker-a", 0, "a") {
		t.Error("leaving CG should release CG's lock and keep CG2's")
	}
	// Expiry of the client releases the rest. The lease (60 s) is renewed
	// so that only the drop can explain the release.
	e.clock.Add(100 * time.Second)
	e.m.tryLock("CG2", "a", []queueKey{{"T", "broker-a", 0}})
	e.clock.Add(21 * time.Second)
	e.m.scan()
	if e.m.IsLocked("CG2", "T", "broker-a", 0, "a") {
		t.Error("expired client kept its lock")
	}
}

// TestClientsLockAllReleasesOmitted: a lock-all (≥ 2 queues, renewing one
// already held) that omits a held queue of the same broker releases it; a
// single-queue lock never does.
func TestClientsLockAllReleasesOmitted(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_700_000_000, 0))
	m := NewManager(Config{Now: clock.Now, Logger: testLogger(t)})
	q := func(broker string, id int32) queueKey { return queueKey{Topic: "T", BrokerName: broker, QueueID: id} }
	if got := m.tryLock("G", "a", []queueKey{q("b", 0), q("b", 1), q("b", 2), q("c", 0)}); len(got) != 4 {
		t.Fatalf("granted %v", got)
	}
	m.tryLock("G", "a", []queueKey{q("b", 0)}) // single: keeps the others
	if got := m.tryLock("G", "x", []queueKey{q("b", 1)}); len(got) != 0 {
		t.Fatalf("x took a held queue after a single-queue renewal: %v", got)
	}
	m.tryLock("G", "a", []queueKey{q("b", 0), q("b", 2)}) // lock-all without b/1
	if got := m.tryLock("G", "x", []queueKey{q("b", 1)}); len(got) != 1 {
		t.Fatalf("b/1 not released by a lock-all that omitted it: %v", got)
	}
	if !m.IsLocked("G", "T", "c", 0, "a") {
		t.Fatal("a lock-all for broker b released a queue of broker c")
	}
}
