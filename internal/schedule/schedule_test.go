package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

func TestWheelOrderAndDue(t *testing.T) {
	w := newWheel()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	base := int64(1_700_000_000_000)
	var all []entry
	for i := range n {
		e := entry{off: int64(i) * 100, due: base + r.Int64N(60_000)}
		all = append(all, e)
		w.add(e)
	}
	if w.len() != n {
		t.Fatalf("len %d", w.len())
	}
	var got []entry
	for now := base - 1000; now <= base+61_000; now += 137 {
		before := len(got)
		got = w.popDue(now, len(got)+50, got)
		for _, e := range got[before:] {
			if e.due > now {
				t.Fatalf("entry due %d taken at %d (early)", e.due, now)
			}
		}
		// Drain everything due at this instant.
		for {
			k := len(got)
			got = w.popDue(now, k+50, got)
			if len(got) == k {
				break
			}
		}
		if nx, ok := w.next(); ok && nx <= now {
			// next is a lower bound; an entry due ≤ now must have been taken.
			if nb := w.popDue(now, 1, nil); len(nb) != 0 {
				t.Fatalf("entry due %d left behind at %d", nb[0].due, now)
			}
		}
		// Adding into the current second keeps working.
		if r.IntN(10) == 0 {
			e := entry{off: int64(n+len(all)) * 100, due: now + r.Int64N(2000)}
			all = append(all, e)
			w.add(e)
		}
	}
	for w.len() > 0 {
		got = w.popDue(1<<62, len(got)+1000, got)
	}
	if len(got) != len(all) {
		t.Fatalf("got %d of %d", len(got), len(all))
	}
	seen := map[int64]bool{}
	for _, e := range got {
		if seen[e.off] {
			t.Fatalf("entry %d twice", e.off)
		}
		seen[e.off] = true
	}
	if len(w.buckets) != 0 || len(w.secs) != 0 {
		t.Fatalf("empty wheel keeps %d buckets, %d heap slots", len(w.buckets), len(w.secs))
	}
}

func TestWheelOrderWithinSecond(t *testing.T) {
	w := newWheel()
	for _, d := range []int64{900, 100, 500, 100, 0} {
		w.add(entry{off: d*10 + int64(w.len()), due: 5000 + d})
	}
	got := w.popDue(5999, 10, nil)
	for i := 1; i < len(got); i++ {
		if got[i].before(got[i-1]) {
			t.Fatalf("out of order: %+v", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("got %d", len(got))
	}
	if _, ok := w.next(); ok {
		t.Fatal("not empty")
	}
}

func TestDivert(t *testing.T) {
	c := newClock()
	e := newEnv(t, c, t.TempDir(), nil)
	now := c.Now().UnixMilli()
	cases := []struct {
		name   string
		kv     []string
		topic  string
		qid    int32
		errHas string
		due    int64 // TIMER_OUT_MS, 0: none
	}{
		{"plain", nil, "T", 1, "", 0},
		{"level 2", []string{"DELAY", "2"}, ScheduleTopic, 1, "", 0},
		{"level clamped", []string{"DELAY", "99"}, ScheduleTopic, int32(len(testLevels) - 1), "", 0},
		{"level 0", []string{"DELAY", "0"}, "T", 1, "", 0},
		{"level -3", []string{"DELAY", "-3"}, "T", 1, "", 0},
		{"level wins over timer", []string{"DELAY", "1", "TIMER_DELAY_SEC", "50"}, ScheduleTopic, 0, "", 0},
		{"level 0 then timer", []string{"DELAY", "0", "TIMER_DELAY_SEC", "50"}, TimerTopic, 0, "", now + 50_000},
		{"bad level", []string{"DELAY", "x"}, "", 0, "DELAY=\"x\"", 0},
		{"sec", []string{"TIMER_DELAY_SEC", "5"}, TimerTopic, 0, "", now + 5000},
		{"sec over ms over deliver", []string{"TIMER_DELAY_SEC", "5", "TIMER_DELAY_MS", "7", "TIMER_DELIVER_MS", "9"}, TimerTopic, 0, "", now + 5000},
		{"ms over deliver", []string{"TIMER_DELAY_MS", "1500", "TIMER_DELIVER_MS", "9"}, TimerTopic, 0, "", now + 1500},
		{"deliver", []string{"TIMER_DELIVER_MS", strconv.FormatInt(now+3333, 10)}, TimerTopic, 0, "", now + 3333},
		{"past", []string{"TIMER_DELIVER_MS", strconv.FormatInt(now-10, 10)}, "T", 1, "", 0},
		{"zero delay", []string{"TIMER_DELAY_MS", "0"}, "T", 1, "", 0},
		{"max", []string{"TIMER_DELAY_SEC", "259200"}, TimerTopic, 0, "", now + 259_200_000},
		{"beyond max", []string{"TIMER_DELAY_SEC", "259201"}, "", 0, "timerMaxDelaySec=259200", 0},
		{"beyond max ms", []string{"TIMER_DELAY_MS", "259200001"}, "", 0, "timerMaxDelaySec", 0},
		{"beyond max deliver", []string{"TIMER_DELIVER_MS", strconv.FormatInt(now+259_200_001, 10)}, "", 0, "timerMaxDelaySec", 0},
		{"huge sec", []string{"TIMER_DELAY_SEC", "9223372036854775807"}, "", 0, "timerMaxDelaySec", 0},
		{"malformed", []string{"TIMER_DELIVER_MS", "soon"}, "", 0, "TIMER_DELIVER_MS=\"soon\"", 0},
		{"negative", []string{"TIMER_DELAY_SEC", "-1"}, "", 0, "non-negative", 0},
		{"forged marker", []string{PropScheduledOffset, "123"}, "T", 1, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			props := ""
			for i := 0; i+1 < len(tc.kv); i += 2 {
				props = message.AppendProperty(props, tc.kv[i], tc.kv[i+1])
			}
			m := &message.Ext{Topic: "T", QueueID: 1, Properties: props}
			err := e.svc.Divert(m)
			if tc.errHas != "" {
				if !errors.Is(err, ErrIllegal) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want ErrIllegal with %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Topic != tc.topic || m.QueueID != tc.qid {
				t.Fatalf("diverted to %s/%d, want %s/%d (props %q)", m.Topic, m.QueueID, tc.topic, tc.qid, m.Properties)
			}
			if _, ok := message.Property(m.Properties, PropScheduledOffset); ok {
				t.Fatal("client-set marker kept")
			}
			if m.Topic != "T" {
				if rt, _ := message.Property(m.Properties, message.PropRealTopic); rt != "T" {
					t.Fatalf("REAL_TOPIC %q", rt)
				}
				if rq, _ := message.Property(m.Properties, message.PropRealQueueID); rq != "1" {
					t.Fatalf("REAL_QID %q", rq)
				}
			} else {
				for _, k := range []string{"TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS"} {
					if _, ok := message.Property(m.Properties, k); ok {
						t.Fatalf("undelayed message kept %s", k)
					}
				}
			}
			if m.Topic == ScheduleTopic {
				for _, k := range []string{"TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS"} {
					if _, ok := message.Property(m.Properties, k); ok {
						t.Fatalf("delay-level message kept %s", k)
					}
				}
			}
			if tc.due != 0 {
				if v, _ := message.Property(m.Properties, message.PropTimerOutMs); v != strconv.FormatInt(tc.due, 10) {
					t.Fatalf("TIMER_OUT_MS %q, want %d", v, tc.due)
				}
			}
		})
	}
}

// TestDeliverNeverEarly schedules delay levels and timers and moves the
// fake clock in small steps: nothing arrives before it is due, everything
// arrives at the first round at or after its due time, once, with its
// properties as Java delivers them.
func TestDeliverNeverEarly(t *testing.T) {
	c := newClock()
	e := newEnv(t, c, t.TempDir(), nil)
	start := c.Now().UnixMilli()
	due := map[string]int64{}
	for lvl := 1; lvl <= len(testLevels)+1; lvl++ {
		b := fmt.Sprintf("level-%d", lvl)
		e.mustSend(b, 3, "DELAY", strconv.Itoa(lvl), "TAGS", "tg")
		due[b] = start + testLevels[min(lvl, len(testLevels))-1].Milliseconds()
	}
	for i := 1; i <= 10; i++ {
		b := fmt.Sprintf("timer-%d", i)
		d := time.Duration(i) * 450 * time.Millisecond
		if i%2 == 0 {
			e.mustSend(b, 2, "TIMER_DELAY_MS", ms(d))
		} else {
			e.mustSend(b, 2, "TIMER_DELIVER_MS", strconv.FormatInt(start+d.Milliseconds(), 10))
		}
		due[b] = start + d.Milliseconds()
	}
	if got := e.svc.Stats().Pending; got != len(due) {
		t.Fatalf("pending %d, want %d", got, len(due))
	}
	arrived := map[string]int64{}
	for step := 0; step <= 12_000/50; step++ {
		e.run()
		now := c.Now().UnixMilli()
		for b, d := range due {
			vs := e.deliveries(b)
			if len(vs) > 1 {
				t.Fatalf("%s delivered %d times", b, len(vs))
			}
			if len(vs) == 1 {
				if _, ok := arrived[b]; !ok {
					arrived[b] = now
					if now < d {
						t.Fatalf("%s delivered at %d, due %d (early)", b, now, d)
					}
					if now-d >= 50 {
						t.Fatalf("%s delivered at %d, due %d (late by more than a step)", b, now, d)
					}
				}
			}
		}
		c.Add(50 * time.Millisecond)
	}
	if len(arrived) != len(due) {
		t.Fatalf("%d of %d delivered", len(arrived), len(due))
	}
	v := e.deliveries("level-2")[0]
	m := v.Ext()
	props := message.ParseProperties(m.Properties)
	if m.Topic != "T" || m.QueueID != 3 || m.ReconsumeTimes != 2 || m.Flag != 7 || props["TAGS"] != "tg" ||
		props["UNIQ_KEY"] != "U-level-2" || props["REAL_TOPIC"] != "T" || props["REAL_QID"] != "3" {
		t.Fatalf("delivered copy: %+v props %v", m, props)
	}
	if _, ok := props["DELAY"]; ok {
		t.Fatal("delivered copy keeps DELAY")
	}
	if m.BornTimestamp != start {
		t.Fatalf("born time %d, want %d", m.BornTimestamp, start)
	}
	if e.svc.Stats().Pending != 0 {
		t.Fatalf("pending %d after delivery", e.svc.Stats().Pending)
	}
}

// TestRestartNeverTwice: messages delivered before a crash are not
// delivered again after it; messages due while the broker was down are
// delivered at the first round after start; messages not yet due are not.
func TestRestartNeverTwice(t *testing.T) {
	for _, snap := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snap), func(t *testing.T) {
			c := newClock()
			dir := t.TempDir()
			e := newEnv(t, c, dir, func(cfg *Config) {
				if !snap {
					cfg.SnapshotDir = ""
				}
			})
			const n = 300
			for i := range n {
				e.mustSend(fmt.Sprintf("m%d", i), 0, "TIMER_DELAY_MS", strconv.Itoa(100+i*10))
			}
			if snap {
				if err := e.svc.takeSnapshot(); err != nil {
					t.Fatal(err)
				}
			}
			// Deliver the first third, then more scheduling after the snapshot.
			c.Add(1100 * time.Millisecond)
			e.run()
			first := e.total()
			if first < 90 || first > 110 {
				t.Fatalf("%d delivered in the first round", first)
			}
			for i := n; i < n+50; i++ {
				e.mustSend(fmt.Sprintf("m%d", i), 0, "DELAY", "2")
			}
			e.crash()
			c.Add(500 * time.Millisecond)
			e.open()
			if got := e.total(); got != first {
				t.Fatalf("replay delivered something: %d vs %d", got, first)
			}
			if p := e.svc.Stats().Pending; p != n+50-first {
				t.Fatalf("pending after restart %d, want %d", p, n+50-first)
			}
			e.run() // what fell due while down
			now := c.Now().UnixMilli()
			for i := range n {
				b := fmt.Sprintf("m%d", i)
				d := c.Now().UnixMilli() - 1600 + 100 + int64(i*10) // start + 100 + i*10
				vs := e.deliveries(b)
				if len(vs) > 1 {
					t.Fatalf("%s delivered %d times", b, len(vs))
				}
				if (len(vs) == 1) != (d <= now) {
					t.Fatalf("%s due %d, now %d, delivered %d", b, d, now, len(vs))
				}
			}
			// A second crash without any snapshot since, then everything.
			e.crash()
			c.Add(5 * time.Second)
			e.open()
			e.run()
			for i := range n + 50 {
				if got := len(e.deliveries(fmt.Sprintf("m%d", i))); got != 1 {
					t.Fatalf("m%d delivered %d times", i, got)
				}
			}
			e.restart() // clean: final snapshot, nothing pending, nothing again
			e.run()
			if got := e.total(); got != n+50 {
				t.Fatalf("%d deliveries, want %d", got, n+50)
			}
			if p := e.svc.Stats().Pending; p != 0 {
				t.Fatalf("pending %d", p)
			}
		})
	}
}

// TestSnapshotWithInflight: a snapshot taken while a batch is being
// delivered keeps the batch; after a crash the replay finds the copies
// that were written and does not deliver them again.
func TestSnapshotWithInflight(t *testing.T) {
	c := newClock()
	e := newEnv(t, c, t.TempDir(), func(cfg *Config) { cfg.DeliverBatch = 10 })
	for i := range 30 {
		e.mustSend(fmt.Sprintf("m%d", i), 0, "TIMER_DELAY_MS", "100")
	}
	c.Add(200 * time.Millisecond)
	batch, _ := e.svc.take(nil)
	if len(batch) != 10 {
		t.Fatalf("took %d", len(batch))
	}
	if err := e.svc.takeSnapshot(); err != nil { // in-flight batch in the snapshot
		t.Fatal(err)
	}
	e.svc.deliver(t.Context(), batch)
	e.crash()
	e.open()
	if p := e.svc.Stats().Pending; p != 20 {
		t.Fatalf("pending %d, want 20", p)
	}
	e.run()
	for i := range 30 {
		if got := len(e.deliveries(fmt.Sprintf("m%d", i))); got != 1 {
			t.Fatalf("m%d delivered %d times", i, got)
		}
	}
}

func TestCorruptSnapshotFallsBack(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	e := newEnv(t, c, dir, nil)
	for i := range 5 {
		e.mustSend(fmt.Sprintf("m%d", i), 0, "DELAY", "1")
	}
	e.close()
	b := []byte("TXMQSCH1garbage")
	if err := os.WriteFile(dir+"/"+snapshotFileName, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e.open()
	if p := e.svc.Stats().Pending; p != 5 {
		t.Fatalf("pending %d after a corrupt snapshot", p)
	}
}
