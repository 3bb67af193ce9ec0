package clients

import (
	"slices"
	"strings"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

// FuzzHeartbeatDecode: decodeHeartbeat never panics; when it succeeds the
// clientID is non-blank, group names and topics are non-empty and unique,
// every subscription is non-nil, keyed by its own topic, and its codes are
// TagsHashCode of its tags. The lock body decoder gets the same input.
func FuzzHeartbeatDecode(f *testing.F) {
	for _, s := range []string{
		g2SampleBody,
		javaBody,
		`{"clientID":"c1"}`,
		`{"clientID":"c1","producerDataSet":null,"consumerDataSet":[{"groupName":"G","subscriptionDataSet":[{"topic":"T","subString":"||"}]}]}`,
		`{"clientID":1e400,"consumerDataSet":[{"groupName":"G","subscriptionDataSet":[{"topic":"T","subVersion":"-9e99"}]}]}`,
		`{"clientID":"c","withoutSub":"TRUE","isWithoutSub":{}}`,
		`{"consumerGroup":"CG","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":"7"}]}`,
		``, `null`, `[]`, `{`, `{"clientID":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		hb, _, err := decodeHeartbeat(body)
		if err == nil {
			if strings.TrimSpace(hb.clientID) == "" {
				t.Fatalf("accepted blank clientID")
			}
			if slices.Contains(hb.producers, "") {
				t.Fatalf("empty producer group")
			}
			seen := map[string]bool{}
			for _, d := range hb.consumers {
				if d.group == "" || seen[d.group] {
					t.Fatalf("bad or duplicate consumer group %q", d.group)
				}
				seen[d.group] = true
				for topic, s := range d.subs {
					if s == nil || topic == "" || s.Topic != topic {
						t.Fatalf("bad subscription %q: %+v", topic, s)
					}
					if len(s.Tags) != len(s.Codes) {
						t.Fatalf("tags %q vs codes %v", s.Tags, s.Codes)
					}
					for i, tag := range s.Tags {
						if s.Codes[i] != message.TagsHashCode(tag) {
							t.Fatalf("code of %q", tag)
						}
					}
				}
			}
		}
		if g, c, qs, err := decodeLockBatch(body); err == nil {
			if g == "" || c == "" {
				t.Fatalf("lock body accepted without group or client")
			}
			for _, q := range qs {
				if q.Topic == "" || q.QueueID < 0 {
					t.Fatalf("bad queue %+v", q)
				}
			}
		}
	})
}

// FuzzParseSubscription: ParseSubscription never panics; a subscription
// either selects all (expression blank or "*") or has at least one tag;
// tags are trimmed, non-empty, distinct, free of "||" (a tag may still end
// in "|" and so join with the next pipe), each with its TagsHashCode, and
// each matches itself.
func FuzzParseSubscription(f *testing.F) {
	for _, s := range []string{"*", "", " ", "TagA", "TagA || TagB", "TagA||TagB||", "||", " || ", "a|||b",
		"标签 || 🎉", "TagA || *", "\t*\n", "a||b||c||d||e||f||g||h||i||j", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := ParseSubscription("T", expr)
		if err != nil {
			if s != nil {
				t.Fatal("non-nil subscription with an error")
			}
			return
		}
		trimmed := javaTrim(expr)
		if s.MatchesAll() != (trimmed == "" || trimmed == "*") {
			t.Fatalf("MatchesAll = %v for %q", s.MatchesAll(), expr)
		}
		if s.MatchesAll() {
			if !s.MatchTag("anything") || !s.MatchCode(12345) || s.SubString != SubAll {
				t.Fatal("sub-all does not match everything")
			}
			return
		}
		if len(s.Tags) == 0 || len(s.Tags) != len(s.Codes) {
			t.Fatalf("tags %q codes %v", s.Tags, s.Codes)
		}
		seen := map[string]bool{}
		for i, tag := range s.Tags {
			if tag == "" || tag != javaTrim(tag) || strings.Contains(tag, "||") || seen[tag] {
				t.Fatalf("bad tag %q in %q", tag, s.Tags)
			}
			seen[tag] = true
			if s.Codes[i] != message.TagsHashCode(tag) || !s.MatchTag(tag) || !s.MatchCode(s.Codes[i]) {
				t.Fatalf("tag %q does not match itself", tag)
			}
		}
	})
}
