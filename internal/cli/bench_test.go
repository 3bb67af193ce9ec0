package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/txmq/txmq/internal/bench"
	"github.com/txmq/txmq/internal/testutil"
)

func TestBenchCommands(t *testing.T) {
	tb := testutil.RunBroker(t)
	tests := []struct {
		args []string
		want func(*bench.Result) bool
	}{
		{[]string{"bench", "producer", "-t", "CliBench", "-c", "200", "-w", "4", "-s", "256", "--json"},
			func(r *bench.Result) bool { return r.Acked == 200 && r.Sent == r.Acked+r.Errors }},
		{[]string{"bench", "producer", "-t", "CliBench", "-c", "100", "--async", "-b", "5", "--json"},
			func(r *bench.Result) bool { return r.Acked == 100 && r.Sent == r.Acked+r.Errors }},
		{[]string{"bench", "consumer", "-t", "CliBench", "--from", "earliest", "-c", "300", "-d", "20s", "--json"},
			func(r *bench.Result) bool { return r.Received == 300 }},
		{[]string{"bench", "tx", "-t", "CliBenchTx", "-c", "100", "-w", "4", "--json"},
			func(r *bench.Result) bool { return r.Tx != nil && r.Tx.Committed == 100 && r.Tx.Delivered == 100 }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			code, out, errs := run(t, append(tt.args, "-n", tb.NamesrvAddr)...)
			if code != ExitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
			var r bench.Result
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s", err, out)
			}
			if !tt.want(&r) || !strings.Contains(errs, "load generator CPU") {
				t.Errorf("result %+v\nstderr: %s", r, errs)
			}
		})
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "producer", "--sync", "--async", "-n", "127.0.0.1:1"},
		{"bench", "producer", "--nosuch"},
	} {
		if code, _, _ := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

func TestServePprofAddrLoopbackOnly(t *testing.T) {
	code, _, errs := run(t, "serve", "--pprofAddr", "0.0.0.0:0", "--storePathRootDir", t.TempDir())
	if code != ExitUsage || !strings.Contains(errs, "loopback") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}
