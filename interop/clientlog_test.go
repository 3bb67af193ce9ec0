package interop

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// clientLog is the official client's logger in these tests. It prints what
// is at or above its level (error unless ROCKETMQ_GO_LOG_LEVEL says
// otherwise) and watches the client's own reports of finished rebalances,
// so a test can tell when a consumer's start-up rebalance is over.
//
// Why: the client's rmqClient.Shutdown sets a plain bool that its
// rebalance goroutine reads without synchronisation (rmqClient.close in
// internal/client.go), so shutting a consumer down while a rebalance is in
// flight is a data race inside the client that `go test -race` reports.
// pushConsumer.Close waits for the rebalance to be over first.
type clientLog struct {
	mu       sync.Mutex
	level    int
	balanced map[string]bool // clientID + "\x00" + topic: a rebalance of that topic finished with a change
}

var cliLog = &clientLog{level: levelOf(os.Getenv("ROCKETMQ_GO_LOG_LEVEL")), balanced: map[string]bool{}}

func init() { rlog.SetLogger(cliLog) }

func levelOf(s string) int {
	switch strings.ToLower(s) {
	case "debug":
		return 0
	case "info":
		return 1
	case "warn", "warning":
		return 2
	case "fatal":
		return 4
	}
	return 3 // error
}

func (l *clientLog) emit(level int, name, msg string, fields map[string]interface{}) {
	if msg == "MessageQueue do balance done" {
		l.mu.Lock()
		l.balanced[fmt.Sprint(fields["clientID"])+"\x00"+fmt.Sprint(fields[rlog.LogKeyTopic])] = true
		l.mu.Unlock()
	}
	l.mu.Lock()
	show := level >= l.level
	l.mu.Unlock()
	if !show {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s rocketmq-client %s %q", time.Now().Format("15:04:05.000"), name, msg)
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%v", k, fields[k])
	}
	fmt.Fprintln(os.Stderr, sb.String())
}

// rebalanced reports whether a rebalance of topic by the client instance
// inst (clientID ip@inst) has finished with a change of its queues.
func (l *clientLog) rebalanced(inst, topic string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.balanced {
		id, tp, _ := strings.Cut(k, "\x00")
		if tp == topic && strings.HasSuffix(id, "@"+inst) {
			return true
		}
	}
	return false
}

func (l *clientLog) Debug(msg string, fields map[string]interface{}) { l.emit(0, "DEBUG", msg, fields) }
func (l *clientLog) Info(msg string, fields map[string]interface{})  { l.emit(1, "INFO", msg, fields) }
func (l *clientLog) Warning(msg string, fields map[string]interface{}) {
	l.emit(2, "WARN", msg, fields)
}
func (l *clientLog) Error(msg string, fields map[string]interface{}) { l.emit(3, "ERROR", msg, fields) }
func (l *clientLog) Fatal(msg string, fields map[string]interface{}) {
	l.emit(4, "FATAL", msg, fields)
	os.Exit(1)
}

func (l *clientLog) Level(level string) {
	l.mu.Lock()
	l.level = levelOf(level)
	l.mu.Unlock()
}

func (l *clientLog) OutputPath(string) error { return nil }
