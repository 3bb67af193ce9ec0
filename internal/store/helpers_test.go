package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// testLogger routes store logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testConfig is a small-store config for tests: 64 KiB segments, 4 KiB
// bodies, small consume-queue and index files, slow background loops (tests
// drive them).
func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.SegmentSize = 64 << 10
	cfg.MaxMessageSize = 4 << 10
	cfg.CQEntriesPerFile = 1000
	cfg.IndexSlots = 1024
	cfg.IndexEntries = 4096
	cfg.CheckpointInterval = time.Hour
	cfg.CleanInterval = time.Hour
	cfg.Logger = testLogger(t)
	return cfg
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	testBornHost  = netip.MustParseAddrPort("10.0.0.1:50000")
	testStoreHost = netip.MustParseAddrPort("10.0.0.2:10911")
)

// newMsg builds a message; props are key, value pairs.
func newMsg(topic string, qid int32, body string, props ...string) *message.Ext {
	var p string
	for i := 0; i+1 < len(props); i += 2 {
		p = message.AppendProperty(p, props[i], props[i+1])
	}
	return &message.Ext{
		Topic: topic, QueueID: qid, BornTimestamp: 1700000000000,
		BornHost: testBornHost, StoreHost: testStoreHost,
		Body: []byte(body), Properties: p,
	}
}

func mustAppend(t testing.TB, s *Store, m *message.Ext) AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), m)
	if err != nil {
		t.Fatalf("Append(%s/%d): %v", m.Topic, m.QueueID, err)
	}
	return res
}

// checkRecordIs parses rec and compares it with m (as appended).
func checkRecordIs(t testing.TB, rec []byte, m *message.Ext) {
	t.Helper()
	got, n, err := message.Decode(rec)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if n != len(rec) {
		t.Fatalf("record is %d bytes, decoded %d", len(rec), n)
	}
	if got.Topic != m.Topic || got.QueueID != m.QueueID || got.QueueOffset != m.QueueOffset ||
		got.CommitLogOffset != m.CommitLogOffset || got.StoreTimestamp != m.StoreTimestamp ||
		!bytes.Equal(got.Body, m.Body) || got.Properties != m.Properties {
		t.Fatalf("record mismatch:\n got %s/%d q=%d cl=%d ts=%d body=%q props=%q\nwant %s/%d q=%d cl=%d ts=%d body=%q props=%q",
			got.Topic, got.QueueID, got.QueueOffset, got.CommitLogOffset, got.StoreTimestamp, got.Body, got.Properties,
			m.Topic, m.QueueID, m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp, m.Body, m.Properties)
	}
}

func body(i, n int) string {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte('a' + (i+j)%26)
	}
	copy(b, fmt.Sprintf("%d:", i))
	return string(b)
}
