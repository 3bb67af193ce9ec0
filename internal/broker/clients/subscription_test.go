package clients

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

func TestClientsParseSubscription(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		wantErr bool
		all     bool
		tags    []string
		codes   []int64 // Java String.hashCode, computed by hand
		match   []string
		noMatch []string
	}{
		{name: "star", expr: "*", all: true, match: []string{"", "TagA", "x"}},
		{name: "empty", expr: "", all: true, match: []string{"", "TagA"}},
		{name: "blank", expr: "   ", all: true, match: []string{"TagA"}},
		{name: "star with blanks", expr: " * ", all: true, match: []string{"TagA"}},
		{name: "one tag", expr: "TagA", tags: []string{"TagA"}, codes: []int64{2598919},
			match: []string{"TagA"}, noMatch: []string{"", "TagB", "taga", "TagA "}},
		{name: "two tags", expr: "TagA || TagB", tags: []string{"TagA", "TagB"}, codes: []int64{2598919, 2598920},
			match: []string{"TagA", "TagB"}, noMatch: []string{"TagC", "TagA || TagB"}},
		{name: "no spaces", expr: "TagA||TagB", tags: []string{"TagA", "TagB"}, codes: []int64{2598919, 2598920}},
		{name: "odd spaces and empties", expr: "  TagA ||   || TagB||", tags: []string{"TagA", "TagB"},
			codes: []int64{2598919, 2598920}},
		{name: "duplicates", expr: "TagA || TagA", tags: []string{"TagA"}, codes: []int64{2598919}},
		{name: "tag with inner space", expr: "Tag A", tags: []string{"Tag A"}, match: []string{"Tag A"}, noMatch: []string{"TagA"}},
		{name: "single pipe is part of a tag", expr: "TagA | TagB", tags: []string{"TagA | TagB"}},
		{name: "triple pipe", expr: "TagA|||TagB", tags: []string{"TagA", "|TagB"}},
		{name: "star among tags is literal", expr: "TagA || *", tags: []string{"TagA", "*"}, codes: []int64{2598919, 42},
			match: []string{"*"}, noMatch: []string{"TagB"}},
		{name: "unicode", expr: "标签 || 🎉", tags: []string{"标签", "🎉"}, codes: []int64{857175, 1773261},
			match: []string{"标签", "🎉"}, noMatch: []string{"标"}},
		{name: "java trim of control characters", expr: "\tTagA\n||\x00TagB\r", tags: []string{"TagA", "TagB"},
			codes: []int64{2598919, 2598920}},
		{name: "no-break space is not trimmed, as in Java", expr: "\u00a0TagA", tags: []string{"\u00a0TagA"}},
		{name: "star with control characters", expr: "\t*\r\n", all: true},
		{name: "only separators", expr: "||", wantErr: true},
		{name: "separators and blanks", expr: " || || ", wantErr: true},
		{name: "many tags use maps", expr: "a||b||c||d||e||f||g||h||i||j",
			tags: strings.Split("a b c d e f g h i j", " "), match: []string{"a", "j"}, noMatch: []string{"k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSubscription("T", tt.expr)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSubscription) {
					t.Fatalf("ParseSubscription(%q) = %+v, %v; want ErrInvalidSubscription", tt.expr, s, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSubscription(%q): %v", tt.expr, err)
			}
			if s.Topic != "T" || s.ExpressionType != ExprTag || !s.IsTag() {
				t.Errorf("topic/type = %q/%q", s.Topic, s.ExpressionType)
			}
			if s.MatchesAll() != tt.all {
				t.Errorf("MatchesAll = %v, want %v", s.MatchesAll(), tt.all)
			}
			if tt.all && s.SubString != SubAll {
				t.Errorf("SubString = %q, want *", s.SubString)
			}
			if !tt.all && !slices.Equal(s.Tags, tt.tags) {
				t.Errorf("Tags = %q, want %q", s.Tags, tt.tags)
			}
			if tt.codes != nil && !slices.Equal(s.Codes, tt.codes) {
				t.Errorf("Codes = %v, want %v", s.Codes, tt.codes)
			}
			for i, tag := range s.Tags {
				if s.Codes[i] != message.TagsHashCode(tag) {
					t.Errorf("code of %q = %d, want TagsHashCode %d", tag, s.Codes[i], message.TagsHashCode(tag))
				}
				if !s.MatchTag(tag) || !s.MatchCode(s.Codes[i]) {
					t.Errorf("own tag %q does not match", tag)
				}
			}
			for _, tag := range tt.match {
				if !s.MatchTag(tag) || !s.MatchCode(message.TagsHashCode(tag)) {
					t.Errorf("%q should match", tag)
				}
			}
			for _, tag := range tt.noMatch {
				if s.MatchTag(tag) {
					t.Errorf("MatchTag(%q) should be false", tag)
				}
				if tag != "" && s.MatchCode(message.TagsHashCode(tag)) {
					t.Errorf("MatchCode(code of %q) should be false", tag)
				}
			}
		})
	}
}

func TestClientsMatchCodeUsesLow32Bits(t *testing.T) {
	s, err := ParseSubscription("T", "TagA")
	if err != nil {
		t.Fatal(err)
	}
	// Java: codeSet.contains(tagsCode.intValue()).
	if !s.MatchCode(2598919 | 1<<40) {
		t.Error("high bits of the tags code should be ignored, as Java's intValue does")
	}
	neg, _ := ParseSubscription("T", "🎉🎉🎉") // a tag whose hash is negative
	if neg.Codes[0] >= 0 {
		t.Fatalf("test tag should hash negative, got %d", neg.Codes[0])
	}
	if !neg.MatchCode(neg.Codes[0]) || !neg.MatchCode(int64(uint32(neg.Codes[0]))) {
		t.Error("a negative code should match both sign-extended and zero-extended")
	}
}

func TestClientsSQL92SubscriptionMatchesNothing(t *testing.T) {
	s, err := ParseSubscriptionType("T", "a > 1", ExprSQL92)
	if err != nil {
		t.Fatal(err)
	}
	if s.IsTag() || s.MatchesAll() || s.MatchTag("") || s.MatchCode(0) || s.SubString != "a > 1" {
		t.Errorf("SQL92 subscription %+v should be kept verbatim and match nothing", s)
	}
	tag, err := ParseSubscriptionType("T", "TagA", "tag")
	if err != nil || !tag.IsTag() || !tag.MatchTag("TagA") {
		t.Errorf("lower-case tag type: %+v, %v", tag, err)
	}
}

func TestClientsDecodeHeartbeat(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		clientID  string
		producers []string
		groups    []string
		subs      map[string]string // group/topic → subString
		version   int64             // of the first subscription, if any
		without   bool
	}{
		{
			name:      "G2 sample from protocol.md",
			body:      g2SampleBody,
			clientID:  "10.0.0.1@12345",
			producers: []string{"PG"},
			groups:    []string{"CG"},
			subs:      map[string]string{"CG/T": "TagA || TagB"},
			version:   1700000000000000000,
		},
		{
			name:      "Java style, numeric codeSet and extra fields",
			body:      javaBody,
			clientID:  "10.0.0.2@JAVA",
			producers: []string{"CLIENT_INNER_PRODUCER", "PGJ"},
			groups:    []string{"CGJ"},
			subs:      map[string]string{"CGJ/TJ": "*", "CGJ/%RETRY%CGJ": "*"},
			version:   1700000000000,
		},
		{
			name: "sets missing", body: `{"clientID":"c1"}`, clientID: "c1",
		},
		{
			name: "sets null and codeSet odd", clientID: "c1",
			body: `{"clientID":"c1","producerDataSet":null,"consumerDataSet":[{"groupName":"G","subscriptionDataSet":[
				{"topic":"T","subString":"a","codeSet":{"x":1},"tagsSet":null,"subVersion":"42"}]}]}`,
			groups: []string{"G"}, subs: map[string]string{"G/T": "a"}, version: 42,
		},
		{
			name: "scalars of the wrong type", clientID: "123",
			body: `{"clientID":123,"consumerDataSet":[{"groupName":"G","consumeType":1,"messageModel":null,
				"subscriptionDataSet":[{"topic":"T","subString":"*","subVersion":1.5e3,"expressionType":null}]}]}`,
			groups: []string{"G"}, subs: map[string]string{"G/T": "*"}, version: 1500,
		},
		{
			name: "empty names skipped, duplicates merged", clientID: "c1",
			body: `{"clientID":"c1","producerDataSet":[{"groupName":""},{"groupName":"P"},{"groupName":"P"},null],
				"consumerDataSet":[{"groupName":""},{"groupName":"G","subscriptionDataSet":[{"topic":"","subString":"*"},
				{"topic":"T","subString":"a"}]},{"groupName":"G","subscriptionDataSet":[{"topic":"T","subString":"b"}]}]}`,
			producers: []string{"P"}, groups: []string{"G"}, subs: map[string]string{"G/T": "b"},
		},
		{
			name: "withoutSub", clientID: "c1", without: true,
			body: `{"clientID":"c1","withoutSub":true}`,
		},
		{name: "empty", body: ``, wantErr: true},
		{name: "blank", body: "  \n", wantErr: true},
		{name: "truncated", body: `{"clientID":"c1",`, wantErr: true},
		{name: "not an object", body: `[1,2]`, wantErr: true},
		{name: "null", body: `null`, wantErr: true},
		{name: "no clientID", body: `{"producerDataSet":[{"groupName":"P"}]}`, wantErr: true},
		{name: "blank clientID", body: `{"clientID":"  "}`, wantErr: true},
		{name: "set of wrong kind", body: `{"clientID":"c1","producerDataSet":{"groupName":"P"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb, _, err := decodeHeartbeat([]byte(tt.body))
			if tt.wantErr {
				if err == nil || !errors.Is(err, errBadBody) {
					t.Fatalf("decode = %+v, %v; want an errBadBody", hb, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if hb.clientID != tt.clientID {
				t.Errorf("clientID = %q, want %q", hb.clientID, tt.clientID)
			}
			if got := slices.Sorted(slices.Values(hb.producers)); !slices.Equal(got, tt.producers) {
				t.Errorf("producers = %q, want %q", got, tt.producers)
			}
			var groups []string
			subs := map[string]string{}
			var version int64
			for _, d := range hb.consumers {
				groups = append(groups, d.group)
				for topic, s := range d.subs {
					subs[d.group+"/"+topic] = s.SubString
					version = s.SubVersion
				}
			}
			if !slices.Equal(groups, tt.groups) {
				t.Errorf("groups = %q, want %q", groups, tt.groups)
			}
			if len(subs) != len(tt.subs) {
				t.Errorf("subs = %v, want %v", subs, tt.subs)
			}
			for k, v := range tt.subs {
				if subs[k] != v {
					t.Errorf("sub %s = %q, want %q", k, subs[k], v)
				}
			}
			if tt.version != 0 && version != tt.version {
				t.Errorf("subVersion = %d, want %d", version, tt.version)
			}
			if hb.withoutSub != tt.without {
				t.Errorf("withoutSub = %v", hb.withoutSub)
			}
		})
	}
}

func TestClientsDecodeHeartbeatBadExpressionMatchesNothing(t *testing.T) {
	hb, bad, err := decodeHeartbeat([]byte(`{"clientID":"c","consumerDataSet":[{"groupName":"G",
		"subscriptionDataSet":[{"topic":"T","subString":"||"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 {
		t.Errorf("bad = %q, want one entry", bad)
	}
	s := hb.consumers[0].subs["T"]
	if s == nil || s.MatchesAll() || s.MatchTag("") || s.MatchCode(0) {
		t.Errorf("subscription %+v should match nothing", s)
	}
}

func TestClientsDecodeHeartbeatTagsFromTagsSet(t *testing.T) {
	tests := []struct {
		name string
		sub  string
		tags []string
		all  bool
	}{
		// G2 trims only spaces: its tagsSet is what it filters by.
		{"client tags win", `"subString":"\tTagA","tagsSet":["\tTagA"]`, []string{"\tTagA"}, false},
		{"odd entries dropped", `"subString":"a||5","tagsSet":["a",5,null,"",{"x":1},"a"]`, []string{"a", "5"}, false},
		{"tagsSet not an array", `"subString":"TagA || TagB","tagsSet":{"TagA":"TagA"}`, []string{"TagA", "TagB"}, false},
		{"empty tagsSet: parse", `"subString":"TagA","tagsSet":[]`, []string{"TagA"}, false},
		{"sub-all ignores tagsSet", `"subString":"*","tagsSet":["TagA"]`, nil, true},
		{"SQL92 ignores tagsSet", `"subString":"a>1","expressionType":"SQL92","tagsSet":["x"]`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"clientID":"c","consumerDataSet":[{"groupName":"G","subscriptionDataSet":[{"topic":"T",` + tt.sub + `}]}]}`
			hb, _, err := decodeHeartbeat([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			s := hb.consumers[0].subs["T"]
			if !slices.Equal(s.Tags, tt.tags) || s.MatchesAll() != tt.all {
				t.Fatalf("tags %q all %v; want %q %v", s.Tags, s.MatchesAll(), tt.tags, tt.all)
			}
			for i, tag := range s.Tags {
				if s.Codes[i] != message.TagsHashCode(tag) || !s.MatchCode(message.TagsHashCode(tag)) {
					t.Errorf("code of %q", tag)
				}
			}
		})
	}
}

func TestClientsDecodeLockBatch(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		want    []queueKey
	}{
		{name: "G2", body: `{"consumerGroup":"CG","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":0},
			{"topic":"T","brokerName":"b","queueId":3}]}`,
			want: []queueKey{{"T", "b", 0}, {"T", "b", 3}}},
		{name: "string queue id, duplicates, bad entries", body: `{"consumerGroup":"CG","clientId":"c","mqSet":[
			{"topic":"T","brokerName":"b","queueId":"1"},{"topic":"T","brokerName":"b","queueId":1},
			{"topic":"","queueId":1},{"topic":"T","queueId":-1},{"topic":"T","queueId":4294967296},null]}`,
			want: []queueKey{{"T", "b", 1}}},
		{name: "no queues", body: `{"consumerGroup":"CG","clientId":"c"}`},
		{name: "no group", body: `{"clientId":"c","mqSet":[]}`, wantErr: true},
		{name: "no client", body: `{"consumerGroup":"CG"}`, wantErr: true},
		{name: "syntax", body: `{"consumerGroup":`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, c, qs, err := decodeLockBatch([]byte(tt.body))
			if tt.wantErr {
				if !errors.Is(err, errBadBody) {
					t.Fatalf("err = %v, want errBadBody", err)
				}
				return
			}
			if err != nil || g != "CG" || c != "c" || !slices.Equal(qs, tt.want) {
				t.Fatalf("decode = %q %q %v %v; want CG c %v", g, c, qs, err, tt.want)
			}
		})
	}
}

// g2SampleBody is the heartbeat of protocol.md §A4, as G2 sends it.
const g2SampleBody = `{"clientID":"10.0.0.1@12345","producerDataSet":[{"groupName":"PG"}],
 "consumerDataSet":[{"groupName":"CG","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",
   "consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"T",
   "subString":"TagA || TagB","tagsSet":["TagA","TagB"],"codeSet":["2598919","2598920"],"subVersion":1700000000000000000,
   "expressionType":"TAG"}],"unitMode":false}]}`

// javaBody is a heartbeat in the shape the Java client's fastjson writes.
const javaBody = `{"clientID":"10.0.0.2@JAVA","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",
 "consumeType":"CONSUME_ACTIVELY","groupName":"CGJ","messageModel":"BROADCASTING","subscriptionDataSet":[
 {"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000000,"tagsSet":[],"topic":"TJ"},
 {"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"*","subVersion":1700000000000,
  "tagsSet":["TagA"],"topic":"%RETRY%CGJ","filterClassSource":null,"attributes":{}}],"unitMode":false}],
 "heartbeatFingerprint":123456,"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"},{"groupName":"PGJ"}],"withoutSub":false}`
