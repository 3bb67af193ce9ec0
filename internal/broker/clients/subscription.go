package clients

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/txmq/txmq/internal/message"
)

// Expression types of a subscription (Apache RocketMQ ExpressionType).
const (
	ExprTag   = "TAG"
	ExprSQL92 = "SQL92"
)

// SubAll is the subscription expression that selects every message.
const SubAll = "*"

// ErrInvalidSubscription reports a subscription expression that names no
// tag, such as "||". The pull path answers it with SUBSCRIPTION_PARSE_FAILED.
var ErrInvalidSubscription = errors.New("clients: invalid subscription expression")

// mapThreshold is the tag count above which matching uses maps instead of a
// linear scan of the (usually one to three) tags.
const mapThreshold = 8

// Subscription is one consumer subscription to a topic.
//
// A Subscription is immutable once built: the Manager shares one value
// between its registry and every caller, so callers must not modify its
// fields or slices.
type Subscription struct {
	Topic string
	// SubString is the expression as the client sent it; "*" selects all.
	SubString string
	// ExpressionType is ExprTag or ExprSQL92 (or whatever the client sent;
	// only ExprTag is evaluated by MatchCode and MatchTag).
	ExpressionType string
	// Tags are the distinct tags of a TAG expression, in the order written;
	// empty when the subscription selects all.
	Tags []string
	// Codes are message.TagsHashCode of Tags, index for index. They are
	// computed here and never taken from the client, whose codeSet comes
	// as strings from the Go client and as numbers from Java.
	Codes []int64
	// SubVersion is the client's subscription version (G2: the subscribe
	// time in ns; Java: ms). The pull path compares it with the version in
	// the pull request.
	SubVersion int64

	all     bool
	tagSet  map[string]struct{} // only when len(Tags) > mapThreshold
	codeSet map[int32]struct{}  // ditto
}

// ParseSubscription builds a TAG subscription from an expression, as Apache
// RocketMQ's FilterAPI.buildSubscriptionData does: an expression that is
// empty or "*" selects all messages; anything else is split on "||", each
// part is trimmed as Java's String.trim does (characters up to U+0020) and
// empty parts are dropped; the remaining parts are the tags ("*" among
// other tags is a literal tag, as in Java). An expression that leaves no
// tag ("||", " || ") is an error wrapping ErrInvalidSubscription.
//
// Differences from Java, both deliberate: a blank expression (or "*" with
// blanks around it) selects all, as the official clients' own filters
// treat it (Java's broker would match nothing); and an expression naming
// no tag is an error rather than a subscription that matches nothing.
func ParseSubscription(topic, expr string) (*Subscription, error) {
	return ParseSubscriptionType(topic, expr, ExprTag)
}

// ParseSubscriptionType is ParseSubscription for an expression of the given
// type. An empty type means ExprTag. A non-TAG expression (SQL92) is kept
// as text and not parsed; MatchCode and MatchTag report false for it, so a
// caller that does not evaluate SQL92 must refuse such subscriptions rather
// than filter with them.
func ParseSubscriptionType(topic, expr, exprType string) (*Subscription, error) {
	if exprType != "" && !strings.EqualFold(exprType, ExprTag) {
		return &Subscription{Topic: topic, SubString: expr, ExpressionType: exprType}, nil
	}
	if isSubAll(expr) {
		return &Subscription{Topic: topic, SubString: SubAll, ExpressionType: ExprTag, all: true}, nil
	}
	var tags []string
	for part := range strings.SplitSeq(expr, "||") {
		tags = append(tags, javaTrim(part))
	}
	s := newTagSubscription(topic, expr, tags)
	if len(s.Tags) == 0 {
		return nil, fmt.Errorf("%w: %q names no tag", ErrInvalidSubscription, expr)
	}
	return s, nil
}

// isSubAll reports whether a TAG expression selects all messages.
func isSubAll(expr string) bool {
	t := javaTrim(expr)
	return t == "" || t == SubAll
}

// newTagSubscription returns a TAG subscription to the given tags, taken
// as they are except that empty and repeated ones are dropped. It may have
// no tag, and then matches nothing.
func newTagSubscription(topic, expr string, tags []string) *Subscription {
	s := &Subscription{Topic: topic, SubString: expr, ExpressionType: ExprTag}
	for _, tag := range tags {
		if tag == "" || slices.Contains(s.Tags, tag) {
			continue
		}
		s.Tags = append(s.Tags, tag)
		s.Codes = append(s.Codes, message.TagsHashCode(tag))
	}
	if len(s.Tags) > mapThreshold {
		s.tagSet = make(map[string]struct{}, len(s.Tags))
		s.codeSet = make(map[int32]struct{}, len(s.Codes))
		for i, t := range s.Tags {
			s.tagSet[t] = struct{}{}
			s.codeSet[int32(s.Codes[i])] = struct{}{}
		}
	}
	return s
}

// javaTrim trims what Java's String.trim trims: characters up to U+0020.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

// MatchesAll reports whether s is a TAG subscription that selects every
// message ("*").
func (s *Subscription) MatchesAll() bool { return s.all }

// IsTag reports whether s is a TAG subscription, the only kind MatchCode and
// MatchTag evaluate.
func (s *Subscription) IsTag() bool { return s.ExpressionType == ExprTag }

// MatchCode reports whether a consume-queue entry with the given tag code
// passes s. As in Java, the comparison uses the low 32 bits of tagsCode
// (Java: codeSet.contains(tagsCode.intValue())). Hash codes collide, so a
// match here is a candidate; MatchTag on the stored tag decides.
func (s *Subscription) MatchCode(tagsCode int64) bool {
	if !s.IsTag() {
		return false
	}
	if s.all {
		return true
	}
	code := int32(tagsCode)
	if s.codeSet != nil {
		_, ok := s.codeSet[code]
		return ok
	}
	for _, c := range s.Codes {
		if int32(c) == code {
			return true
		}
	}
	return false
}

// MatchTag reports whether a message with the given tag passes s. A message
// without a tag ("") passes only a subscription that selects all.
func (s *Subscription) MatchTag(tag string) bool {
	if !s.IsTag() {
		return false
	}
	if s.all {
		return true
	}
	if s.tagSet != nil {
		_, ok := s.tagSet[tag]
		return ok
	}
	return slices.Contains(s.Tags, tag)
}

// sameFilter reports whether a and b select the same messages as far as a
// rebalance is concerned (expression and type; the version is ignored).
func sameFilter(a, b *Subscription) bool {
	return a.SubString == b.SubString && a.ExpressionType == b.ExpressionType
}
