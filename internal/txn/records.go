package txn

import (
	"strconv"
	"strings"

	"github.com/txmq/txmq/internal/message"
)

// State is a transaction's state.
type State uint8

// States. Committed and RolledBack are final; Discarded is final for
// producers and checks, and only an operator can leave it (resume, or
// commit/rollback).
const (
	StatePrepared State = iota
	StateCommitted
	StateRolledBack
	StateDiscarded
	StateResolved // resolved, final state no longer remembered
)

var stateNames = [...]string{"PREPARED", "COMMITTED", "ROLLED_BACK", "DISCARDED", "RESOLVED"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText makes State a JSON string.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a State name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return ErrBadRequest
}

// Resolution is what an END_TRANSACTION asks for.
type Resolution uint8

// Resolutions. The wire values of commitOrRollback are 8, 12 and 0.
const (
	ResolutionUnknown Resolution = iota
	ResolutionCommit
	ResolutionRollback
)

func (r Resolution) String() string {
	switch r {
	case ResolutionCommit:
		return "commit"
	case ResolutionRollback:
		return "rollback"
	}
	return "unknown"
}

// ResolutionFromWire maps commitOrRollback (MessageSysFlag transaction
// types: 8 commit, 12 rollback, 0 unknown).
func ResolutionFromWire(v int32) (Resolution, bool) {
	switch v {
	case message.FlagTransCommit:
		return ResolutionCommit, true
	case message.FlagTransRollback:
		return ResolutionRollback, true
	case message.FlagTransNone:
		return ResolutionUnknown, true
	}
	return ResolutionUnknown, false
}

// Source says who ended a transaction.
type Source uint8

// Sources.
const (
	SourceClient Source = iota
	SourceCheck
	SourceOperator
	numSources
)

var sourceNames = [...]string{"client", "check", "operator"}

func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "source(" + strconv.Itoa(int(s)) + ")"
}

// txmq's own properties on the records the service writes.
const (
	PropOp            = "TXMQ_OP"             // op d: commit | rollback
	PropOpSource      = "TXMQ_OP_SOURCE"      // client | check | operator
	PropHalfOffset    = "TXMQ_HALF_OFFSET"    // discarded copy: the half's commit-log offset
	PropHalfStore     = "TXMQ_HALF_STORE"     // op r: the half's store time (ms)
	PropDiscardReason = "TXMQ_DISCARD_REASON" // discarded copy: checks | retention | removed
	PropChecks        = "TXMQ_CHECKS"         // discarded copy: checks sent
)

// Op kinds (the op record's tag).
const (
	opDone    = "d"
	opChecks  = "c"
	opDiscard = "x"
	opResume  = "r"
)

// event kinds.
const (
	evHalf uint8 = iota + 1
	evCopy
	evDone
	evChecks
	evDiscard
	evResume
)

// event is what the pending index needs of one transactional record,
// small enough to queue in the backlog before Start.
type event struct {
	kind       uint8
	state      State // evDone
	off, end   int64 // the record's offset and the offset after it
	stored     int64 // the record's store time (ms)
	halfOff    int64 // evCopy: PREPAREDTXOFFSET
	halfStored int64 // evResume
	immunityMs int64 // evHalf
	uniq       uint64
	group      string
	ents       []opEnt
}

// opEnt is one entry of an op record body: halfOffset[:n].
type opEnt struct {
	off int64
	n   int
}

// parseEvent returns the event of a record, nil for records that do not
// concern transactions. The common case costs a topic length check and a
// sysFlag test.
func parseEvent(off int64, v message.View) *event {
	t := v.Topic()
	var kind uint8
	switch {
	case len(t) == len(message.TransHalfTopic) && string(t) == message.TransHalfTopic:
		kind = evHalf
	case len(t) == len(message.TransOpHalfTopic) && string(t) == message.TransOpHalfTopic:
	case v.SysFlag()&message.FlagTransactionMask == message.FlagTransCommit:
		kind = evCopy
	default:
		return nil
	}
	props := v.Properties()
	ev := &event{kind: kind, off: off, end: off + int64(v.Len()), stored: v.StoreTimestamp()}
	switch kind {
	case evHalf:
		u, _ := message.PropertyBytes(props, message.PropUniqClientMessageID)
		ev.uniq = hashID(u)
		ev.group, _ = message.PropertyBytes(props, message.PropProducerGroup)
		if s, ok := message.PropertyBytes(props, message.PropCheckImmunityTimeSeconds); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n > 0 {
				ev.immunityMs = n * 1000
			}
		}
		return ev
	case evCopy:
		if _, ok := message.PropertyBytes(props, message.PropProducerGroup); !ok {
			return nil // not a copy we made: a transactional copy always keeps PGROUP
		}
		u, _ := message.PropertyBytes(props, message.PropUniqClientMessageID)
		ev.uniq = hashID(u)
		ev.halfOff = v.PreparedTransactionOffset()
		return ev
	}
	tag, _ := message.PropertyBytes(props, message.PropTags)
	ev.ents = parseOpBody(v.Body())
	switch tag {
	case opDone:
		ev.kind = evDone
		ev.state = StateRolledBack
		if op, _ := message.PropertyBytes(props, PropOp); op == "commit" {
			ev.state = StateCommitted
		}
	case opChecks:
		ev.kind = evChecks
	case opDiscard:
		ev.kind = evDiscard
	case opResume:
		ev.kind = evResume
		u, _ := message.PropertyBytes(props, message.PropUniqClientMessageID)
		ev.uniq = hashID(u)
		ev.group, _ = message.PropertyBytes(props, message.PropProducerGroup)
		hs, _ := message.PropertyBytes(props, PropHalfStore)
		ev.halfStored, _ = strconv.ParseInt(hs, 10, 64)
	default:
		return nil
	}
	return ev
}

// parseOpBody parses "off[:n],off[:n]"; malformed items are skipped.
func parseOpBody(b []byte) []opEnt {
	var out []opEnt
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != ',' {
			i++
		}
		item := b[:i]
		if i < len(b) {
			i++
		}
		b = b[i:]
		var e opEnt
		num, rest := item, []byte(nil)
		for j, c := range item {
			if c == ':' {
				num, rest = item[:j], item[j+1:]
				break
			}
		}
		off, ok := atoi(num)
		if !ok {
			continue
		}
		e.off = off
		if rest != nil {
			n, ok := atoi(rest)
			if !ok || n < 0 || n > 1<<20 {
				continue
			}
			e.n = int(n)
		}
		out = append(out, e)
	}
	return out
}

func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// appendOpEnt appends "off[:n]" to an op body.
func appendOpEnt(b []byte, off int64, n int, withN bool) []byte {
	if len(b) > 0 {
		b = append(b, ',')
	}
	b = strconv.AppendInt(b, off, 10)
	if withN {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return b
}

// hashID is FNV-1a 64 of a transaction id (UNIQ_KEY). It is stable across
// restarts (snapshots store it); matches are always confirmed against the
// half message, so collisions cost a read, never a wrong answer.
func hashID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// opRecord builds an op record of the given kind.
func (s *Service) opRecord(kind string, body []byte, props ...string) *message.Ext {
	p := message.AppendProperty("", message.PropTags, kind)
	for i := 0; i+1 < len(props); i += 2 {
		p = message.AppendProperty(p, props[i], props[i+1])
	}
	return &message.Ext{
		Topic:         message.TransOpHalfTopic,
		BornTimestamp: s.nowMs(),
		BornHost:      s.cfg.StoreHost,
		StoreHost:     s.cfg.StoreHost,
		Body:          body,
		Properties:    p,
	}
}

// halfInfo is what the service reads back from a half message.
type halfInfo struct {
	v         message.View
	realTopic string
	realQID   int32
	group     string
	uniq      string
	txID      string
}

// readHalf reads and checks the half message at off.
func (s *Service) readHalf(off int64) (halfInfo, error) {
	rec, err := s.store.ReadAt(off)
	if err != nil {
		return halfInfo{}, err
	}
	return parseHalf(rec)
}

func parseHalf(rec []byte) (halfInfo, error) {
	v, err := message.Parse(rec)
	if err != nil {
		return halfInfo{}, err
	}
	if string(v.Topic()) != message.TransHalfTopic {
		return halfInfo{}, errNotHalf
	}
	props := v.Properties()
	h := halfInfo{v: v}
	h.realTopic, _ = message.PropertyBytes(props, message.PropRealTopic)
	q, _ := message.PropertyBytes(props, message.PropRealQueueID)
	qid, _ := strconv.ParseInt(q, 10, 32)
	h.realQID = int32(qid)
	h.group, _ = message.PropertyBytes(props, message.PropProducerGroup)
	h.uniq, _ = message.PropertyBytes(props, message.PropUniqClientMessageID)
	h.txID, _ = message.PropertyBytes(props, message.PropTransactionID)
	if h.txID == "" {
		h.txID = h.uniq
	}
	return h, nil
}

// committedCopy builds the message a commit makes visible.
func committedCopy(h halfInfo, halfOff int64) *message.Ext {
	m := h.v.Ext()
	m.Topic = h.realTopic
	m.QueueID = h.realQID
	m.SysFlag = m.SysFlag&^message.FlagTransactionMask | message.FlagTransCommit
	m.PreparedTransactionOffset = halfOff
	m.Properties = message.RemoveProperties(m.Properties, message.PropTransactionPrepared,
		message.PropRealTopic, message.PropRealQueueID)
	m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp = 0, 0, 0
	return m
}
