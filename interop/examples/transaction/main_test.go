package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/txmq/txmq/internal/testutil"
)

// TestRun runs the example's logic against an in-process broker, so the
// example cannot rot.
func TestRun(t *testing.T) {
	rlog.SetLogLevel("error")
	tb := testutil.RunBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cfg := Config{NameServer: []string{tb.NamesrvAddr}, Topic: "TxExampleTopic"}
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())
	m := regexp.MustCompile(`committed message (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no committed message id in the output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "consumer received "+m[1]+" ") {
		t.Fatalf("the consumer did not report message %s:\n%s", m[1], out.String())
	}
	// A second run (same groups) gets its own message, not the first one again.
	out.Reset()
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatalf("second Run: %v\noutput:\n%s", err, out.String())
	}
	m2 := regexp.MustCompile(`consumer received (\S+) `).FindStringSubmatch(out.String())
	if m2 == nil || m2[1] == m[1] {
		t.Fatalf("second run:\n%s", out.String())
	}
}
