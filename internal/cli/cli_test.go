package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, ExitOK, "txmq serve"},
		{[]string{"version"}, ExitOK, "txmq "},
		{[]string{"serve", "--help"}, ExitOK, "--flushDiskType"},
		{[]string{"nosuch"}, ExitError, "unknown command"},
		{[]string{"serve", "--nosuch"}, ExitUsage, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := run(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("code %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
		})
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte("flushDiskType=MAYBE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := [][]string{
		{"serve", "-c", conf},
		{"serve", "--listenPort", "99999"},
		{"serve", "-c", filepath.Join(dir, "missing.conf")},
	}
	for _, args := range tests {
		code, _, errs := run(t, args...)
		if code != ExitUsage || !strings.Contains(errs, "txmq:") {
			t.Fatalf("%v: code %d, stderr %s", args, code, errs)
		}
	}
}
