package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

func TestAdminDLQ(t *testing.T) {
	tb := testutil.RunBroker(t)
	ns := tb.NamesrvAddr
	admin := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, append([]string{"admin", "--namesrv", ns}, args...)...)
	}
	if code, _, errs := admin("dlq", "list", "NoGroup"); code == ExitOK || !strings.Contains(errs, "dead-letter queue of group NoGroup") {
		t.Fatalf("list of a group without DLQ: code %d %q", code, errs)
	}
	resp := sendOne(t, tb, "DlqT", "k-dead", "dead body")
	_, off, err := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
	if err != nil {
		t.Fatal(err)
	}
	// An orderly consumer gives up: delayLevel -1 sends it to the DLQ.
	c := tb.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	back, err := c.Invoke(ctx, remoting.NewRequest(remoting.ReqConsumerSendMsgBack, map[string]string{
		"group": "DlqG", "offset": strconv.FormatInt(off, 10), "delayLevel": "-1", "originMsgId": "",
		"originTopic": "DlqT", "maxReconsumeTimes": "16"}))
	if err != nil || back.Code != remoting.RespSuccess {
		t.Fatalf("send back: %v %+v", err, back)
	}
	tb.WaitRoutable(t, "%DLQ%DlqG")
	code, out, errs := admin("dlq", "list", "DlqG")
	if code != ExitOK || !strings.Contains(out, "UNIQk-dead") || !strings.Contains(out, "DlqT") ||
		!strings.Contains(out, `"dead body"`) || !strings.Contains(out, "1 message(s)") {
		t.Fatalf("dlq list: code %d\n%s%s", code, out, errs)
	}
	if code, _, errs := admin("dlq", "resend", "DlqG", "nope"); code == ExitOK || !strings.Contains(errs, "no message of %DLQ%DlqG") {
		t.Fatalf("resend unknown: code %d %q", code, errs)
	}
	code, out, errs = admin("dlq", "resend", "DlqG", "UNIQk-dead")
	if code != ExitOK || !strings.Contains(out, "resent UNIQk-dead to DlqT") {
		t.Fatalf("dlq resend: code %d\n%s%s", code, out, errs)
	}
	code, out, errs = admin("dlq", "resend", "DlqG", "0") // by queue offset
	if code != ExitOK {
		t.Fatalf("dlq resend by offset: code %d\n%s%s", code, out, errs)
	}
	total := int64(0)
	for q := int32(0); q < 4; q++ {
		total += tb.Broker.Store().MaxOffset("DlqT", q)
	}
	if total != 3 {
		t.Fatalf("DlqT holds %d messages, want the original and two resent copies", total)
	}
}
