package interop

// What a failed run shows, so that a failure in CI, which cannot be
// rerun with more logging, can be understood from its output: the failed
// tests repeated at the end (failDigest), and goroutine dumps of the
// official client (logClientGoroutines) and of a broker (logHTTP on its
// pprof address).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// failDigest keeps what a failing run must show at its end: every
// "--- FAIL" block with its indented output, and the head of a panic.
//
// Why: the official client logs every refused connection of the crash
// tests at error level, and `go test` prints a failing package's output
// whole, so the lines that say which test failed and why can be far from
// the end of a long CI log. TestMain's parent process repeats them last.
type failDigest struct {
	blocks   []string
	cur      []string
	inBlock  bool
	panicRem int // lines of a panic's head still to keep
}

const (
	digestBlockLines = 40 // lines kept per failed test
	digestPanicLines = 30 // lines kept from a panic's first line on
	digestMaxBlocks  = 20
)

// line feeds one line of the child's output (without its newline).
func (d *failDigest) line(s string) {
	if d.panicRem > 0 {
		d.cur = append(d.cur, s)
		if d.panicRem--; d.panicRem == 0 {
			d.flush()
		}
		return
	}
	trimmed := strings.TrimLeft(s, " \t")
	switch {
	case strings.HasPrefix(trimmed, "--- FAIL"):
		if !d.inBlock || !strings.HasPrefix(s, " ") {
			d.flush() // a new top-level failure; a nested subtest failure stays in its parent's block
		}
		d.inBlock = true
		d.add(s)
	case strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: "):
		d.flush()
		d.cur = append(d.cur, s)
		d.panicRem = digestPanicLines - 1
	case d.inBlock && (strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\t")):
		d.add(s)
	default:
		d.flush()
	}
}

func (d *failDigest) add(s string) {
	switch {
	case len(d.cur) < digestBlockLines:
		d.cur = append(d.cur, s)
	case len(d.cur) == digestBlockLines:
		d.cur = append(d.cur, "    ... (more in the full output above)")
	}
}

func (d *failDigest) flush() {
	if len(d.cur) > 0 && len(d.blocks) < digestMaxBlocks {
		d.blocks = append(d.blocks, strings.Join(d.cur, "\n"))
	}
	d.cur, d.inBlock, d.panicRem = nil, false, 0
}

// copyAndDigest copies r to w line by line and returns the digest of what
// it copied once r ends.
func copyAndDigest(w io.Writer, r io.Reader) (*failDigest, error) {
	d := &failDigest{}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if len(s) > 0 {
			if _, werr := io.WriteString(w, s); werr != nil {
				return d, werr
			}
			d.line(strings.TrimRight(s, "\r\n"))
		}
		if err == io.EOF {
			d.flush()
			return d, nil
		}
		if err != nil {
			d.flush()
			return d, err
		}
	}
}

// write prints the digest under a heading, or nothing if it is empty.
func (d *failDigest) write(w io.Writer) {
	if len(d.blocks) == 0 {
		return
	}
	fmt.Fprintf(w, "\n=== interop: what failed (repeated from the output above)\n%s\n", strings.Join(d.blocks, "\n"))
}

func TestFailDigest(t *testing.T) {
	noise := "05:28:12.843 rocketmq-client ERROR \"send ReqENDTransaction to broker error\""
	tests := []struct {
		name string
		in   []string
		want []string // the digest's blocks, lines joined by "|"
	}{
		{
			name: "passing run",
			in:   []string{noise, "PASS"},
		},
		{
			name: "one failure among client noise",
			in: []string{noise, "--- FAIL: TestTxCrash (61.20s)", "    tx_crash_test.go:120: seed 7",
				"    tx_crash_test.go:180: 2 transactions delivered", "        continued", noise, "FAIL"},
			want: []string{"--- FAIL: TestTxCrash (61.20s)|    tx_crash_test.go:120: seed 7|    tx_crash_test.go:180: 2 transactions delivered|        continued"},
		},
		{
			name: "subtests stay in their parent's block; two top-level failures are two blocks",
			in: []string{"--- FAIL: TestA (1.00s)", "    --- FAIL: TestA/x (0.50s)", "        a_test.go:1: boom",
				"--- FAIL: TestB (2.00s)", "    b_test.go:2: bang", "FAIL"},
			want: []string{"--- FAIL: TestA (1.00s)|    --- FAIL: TestA/x (0.50s)|        a_test.go:1: boom", "--- FAIL: TestB (2.00s)|    b_test.go:2: bang"},
		},
		{
			name: "a panic's head",
			in:   []string{noise, "panic: test timed out after 15m0s", "\trunning tests:", "\t\tTestTxCrash (14m59s)", "", "goroutine 1 [running]:"},
			want: []string{"panic: test timed out after 15m0s|\trunning tests:|\t\tTestTxCrash (14m59s)||goroutine 1 [running]:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.in, "\n") + "\n"
			var out bytes.Buffer
			d, err := copyAndDigest(&out, strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != in {
				t.Errorf("copied %q, want the input unchanged", out.String())
			}
			var got []string
			for _, b := range d.blocks {
				got = append(got, strings.ReplaceAll(b, "\n", "|"))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("blocks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var w bytes.Buffer
			d.write(&w)
			if (w.Len() == 0) != (len(tt.want) == 0) {
				t.Errorf("write printed %q", w.String())
			}
		})
	}
}

func TestFailDigestBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("--- FAIL: TestBig (1.00s)\n")
	for range 1000 {
		b.WriteString("    big_test.go:1: line\n")
	}
	d, err := copyAndDigest(&bytes.Buffer{}, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.blocks) != 1 {
		t.Fatalf("%d blocks, want 1", len(d.blocks))
	}
	if n := strings.Count(d.blocks[0], "\n") + 1; n != digestBlockLines+1 {
		t.Errorf("block has %d lines, want %d (the cap and its marker)", n, digestBlockLines+1)
	}
}

// logClientGoroutines logs, grouped by stack, the goroutines of this
// process that run the official client's code: what a stuck client was
// waiting for. For failed tests only; it is long.
func logClientGoroutines(t testing.TB) {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	var out []string
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "rocketmq-client-go") {
			out = append(out, g)
		}
	}
	t.Logf("official client goroutines (%d distinct stacks):\n%s", len(out), strings.Join(out, "\n\n"))
}

// logHTTP logs the body of a GET of url (a loopback debug endpoint).
func logHTTP(t testing.TB, what, url string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Logf("%s: %v", what, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	t.Logf("%s (%s, err %v):\n%s", what, resp.Status, err, b)
}
