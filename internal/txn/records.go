package txn

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unsafe"

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
// op is the op property of the op d record that ends a transaction in
// state s.
func (s State) op() string {
	if s == StateCommitted {
		return "commit"
	}
	return "rollback"
}

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

// event is what the pending index needs of one transactional record.
// parseEvent fills one on the caller's stack: group and ents alias the
// record and the caller's scratch, so an event kept beyond the call (the
// backlog before Start) must be detached first.
type event struct {
	kind       uint8
	state      State // evDone
	off, end   int64 // the record's offset and the offset after it
	stored     int64 // the record's store time (ms)
	halfOff    int64 // evCopy: PREPAREDTXOFFSET
	halfStored int64 // evResume
	immunityMs int64 // evHalf
	uniq       uint64
	group      []byte
	ents       []opEnt
}

// detach returns a heap copy of ev that aliases nothing.
func (ev *event) detach() *event {
	// Field by field: copying *ev whole would make the caller's scratch
	// escape (escape analysis is flow-insensitive).
	return &event{kind: ev.kind, state: ev.state, off: ev.off, end: ev.end, stored: ev.stored,
		halfOff: ev.halfOff, halfStored: ev.halfStored, immunityMs: ev.immunityMs, uniq: ev.uniq,
		group: bytes.Clone(ev.group), ents: slices.Clone(ev.ents)}
}

// opEnt is one entry of an op record body: halfOffset[:n].
type opEnt struct {
	off int64
	n   int
}

// parseEvent returns the event of a record and whether the record
// concerns transactions. The common case costs a topic length check and a
// sysFlag test. ents is scratch for the op entries (appended to); the
// event aliases v and ents. (It returns the event rather than filling one
// through a pointer so that the caller's scratch can stay on its stack.)
func parseEvent(off int64, v message.View, ents []opEnt) (ev event, ok bool) {
	t := v.Topic()
	var kind uint8
	switch {
	case len(t) == len(message.TransHalfTopic) && string(t) == message.TransHalfTopic:
		kind = evHalf
	case len(t) == len(message.TransOpHalfTopic) && string(t) == message.TransOpHalfTopic:
	case v.SysFlag()&message.FlagTransactionMask == message.FlagTransCommit:
		kind = evCopy
	default:
		return ev, false
	}
	ev = event{kind: kind, off: off, end: off + int64(v.Len()), stored: v.StoreTimestamp()}
	var f propFields
	f.scan(v.Properties())
	switch kind {
	case evHalf:
		ev.uniq = hashID(f.val[pfUniq])
		ev.group = f.val[pfGroup]
		if f.has[pfImmunity] {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(f.val[pfImmunity])), 10, 64); err == nil && n > 0 {
				ev.immunityMs = n * 1000
			}
		}
		return ev, true
	case evCopy:
		if !f.has[pfGroup] {
			return ev, false // not a copy we made: a transactional copy always keeps PGROUP
		}
		ev.uniq = hashID(f.val[pfUniq])
		ev.halfOff = v.PreparedTransactionOffset()
		return ev, true
	}
	ev.ents = parseOpBody(ents, v.Body())
	switch string(f.val[pfTags]) {
	case opDone:
		ev.kind = evDone
		ev.state = StateRolledBack
		if string(f.val[pfOp]) == "commit" {
			ev.state = StateCommitted
		}
	case opChecks:
		ev.kind = evChecks
	case opDiscard:
		ev.kind = evDiscard
	case opResume:
		ev.kind = evResume
		ev.uniq = hashID(f.val[pfUniq])
		ev.group = f.val[pfGroup]
		ev.halfStored, _ = strconv.ParseInt(string(f.val[pfHalfStore]), 10, 64)
	default:
		return ev, false
	}
	return ev, true
}

// The properties the service reads, found in one pass by propFields.scan.
const (
	pfUniq = iota
	pfGroup
	pfImmunity
	pfTags
	pfOp
	pfHalfStore
	pfRealTopic
	pfRealQID
	pfTxID
	numPF
)

var pfNames = [numPF]string{message.PropUniqClientMessageID, message.PropProducerGroup,
	message.PropCheckImmunityTimeSeconds, message.PropTags, PropOp, PropHalfStore,
	message.PropRealTopic, message.PropRealQueueID, message.PropTransactionID}

// propFields holds the values of the properties above, as views of the
// encoded properties; for each the first well-formed entry counts, as
// with message.PropertyBytes.
type propFields struct {
	val [numPF][]byte
	has [numPF]bool
}

// scan reads encoded properties b in one pass, without allocating.
func (f *propFields) scan(b []byte) {
	message.RangePropertiesBytes(b, func(key, value []byte) bool {
		for k, name := range &pfNames {
			if string(key) == name {
				if !f.has[k] {
					f.val[k], f.has[k] = value, true
				}
				break
			}
		}
		return true
	})
}

// parseOpBody appends the entries of "off[:n],off[:n]" to out; malformed
// items are skipped.
func parseOpBody(out []opEnt, b []byte) []opEnt {
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

// hashID is FNV-1a 64 of a transaction id (UNIQ_KEY), as a string or as
// a view of a record's properties. It is stable across restarts
// (snapshots store it); matches are always confirmed against the half
// message, so collisions cost a read, never a wrong answer.
func hashID[S string | []byte](s S) uint64 {
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

// doneRecord fills m with op d for the half at off: what
// opRecord(opDone, appendOpEnt(nil, off, 0, false), PropOp, op,
// PropOpSource, source, KEYS, uniq) builds, with one allocation for
// properties and body together.
func (s *Service) doneRecord(m *message.Ext, off int64, op, source string, uniq []byte) {
	n := len(message.PropTags) + len(opDone) + len(PropOp) + len(op) + len(PropOpSource) + len(source) +
		len(message.PropKeys) + len(uniq) + 8 + 20
	b := make([]byte, 0, n)
	b = appendProp(b, message.PropTags, opDone)
	b = appendProp(b, PropOp, op)
	b = appendProp(b, PropOpSource, source)
	b = appendProp(b, message.PropKeys, uniq)
	pl := len(b)
	b = strconv.AppendInt(b, off, 10)
	*m = message.Ext{
		Topic:         message.TransOpHalfTopic,
		BornTimestamp: s.nowMs(),
		BornHost:      s.cfg.StoreHost,
		StoreHost:     s.cfg.StoreHost,
		Body:          b[pl:len(b):len(b)],
		// Never written to again: the properties are immutable.
		Properties: unsafe.String(unsafe.SliceData(b), pl),
	}
}

// appendProp appends one key/value entry (message.AppendProperty).
func appendProp[V string | []byte](b []byte, key string, value V) []byte {
	b = append(b, key...)
	b = append(b, message.NameValueSeparator)
	b = append(b, value...)
	return append(b, message.PropertySeparator)
}

// appendWithout appends encoded properties p without the entries whose key
// is in keys, byte for byte as message.RemoveProperties(p, keys...)
// encodes them (message has no appending form of it): p unchanged when no
// well-formed entry has one of keys, otherwise as appendFiltered.
func appendWithout(b []byte, p string, keys ...string) []byte {
	start := len(b)
	b, found := appendFiltered(b, p, keys...)
	if !found {
		return append(b[:start], p...)
	}
	return b
}

// appendFiltered appends every entry of p that has a name/value separator
// and a key not in keys, each followed by the property separator, in one
// pass; found reports whether a well-formed entry (exactly one name/value
// separator) had one of keys.
func appendFiltered(b []byte, p string, keys ...string) (_ []byte, found bool) {
	for len(p) > 0 {
		item := p
		if i := strings.IndexByte(p, message.PropertySeparator); i >= 0 {
			item, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		j := strings.IndexByte(item, message.NameValueSeparator)
		if j < 0 {
			continue
		}
		if slices.Contains(keys, item[:j]) {
			found = found || strings.IndexByte(item[j+1:], message.NameValueSeparator) < 0
			continue
		}
		b = append(b, item...)
		b = append(b, message.PropertySeparator)
	}
	return b, found
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
	v, err := halfView(rec)
	if err != nil {
		return halfInfo{}, err
	}
	var f propFields
	f.scan(v.Properties())
	h := halfInfo{v: v, realTopic: string(f.val[pfRealTopic]), realQID: parseQID(f.val[pfRealQID]),
		group: string(f.val[pfGroup]), uniq: string(f.val[pfUniq]), txID: string(f.val[pfTxID])}
	if h.txID == "" {
		h.txID = h.uniq
	}
	return h, nil
}

// halfView parses rec and checks that it is a half message.
func halfView(rec []byte) (message.View, error) {
	v, err := message.Parse(rec)
	if err != nil {
		return v, err
	}
	if string(v.Topic()) != message.TransHalfTopic {
		return v, errNotHalf
	}
	return v, nil
}

// parseQID parses REAL_QID, ignoring the error (0 when malformed, clamped
// when out of range). A well-formed value costs no allocation: the
// conversion does not escape.
func parseQID(q []byte) int32 {
	v, _ := strconv.ParseInt(string(q), 10, 32)
	return int32(v)
}

// fillCopy fills m with the committed copy of the half v (stored at
// halfOff): the half's fields, body and properties but for TRAN_MSG,
// REAL_TOPIC and REAL_QID, under its real topic and queue, with the commit
// type in sysFlag and PREPAREDTXOFFSET = halfOff (what Apache RocketMQ
// makes of a half). m.Body aliases v; m.Properties aliases the buffer
// returned, built in buf (grown if it is too small).
func fillCopy(m *message.Ext, v message.View, realTopic string, realQID int32, halfOff int64, buf []byte) []byte {
	props := v.Properties()
	// A read-only view of the record's properties for the call: p copies.
	p := appendWithout(slices.Grow(buf[:0], len(props)), unsafe.String(unsafe.SliceData(props), len(props)),
		message.PropTransactionPrepared, message.PropRealTopic, message.PropRealQueueID)
	fillCopyProps(m, v, realTopic, realQID, halfOff, p)
	return p
}

// fillCopyProps is fillCopy with the copy's properties given (props, which
// m.Properties then aliases): built by fillCopy, or cut from the half's by
// splitHalfProps.
func fillCopyProps(m *message.Ext, v message.View, realTopic string, realQID int32, halfOff int64, props []byte) {
	*m = message.Ext{
		Topic:                     realTopic,
		QueueID:                   realQID,
		Flag:                      v.Flag(),
		SysFlag:                   v.SysFlag()&^message.FlagTransactionMask | message.FlagTransCommit,
		BornTimestamp:             v.BornTimestamp(),
		BornHost:                  v.BornHost(),
		StoreHost:                 v.StoreHost(),
		ReconsumeTimes:            v.ReconsumeTimes(),
		PreparedTransactionOffset: halfOff,
		BodyCRC:                   v.StoredBodyCRC(),
		Body:                      v.Body(),
		Properties:                unsafe.String(unsafe.SliceData(props), len(props)),
	}
}

// splitHalfProps reads the tail of a half's properties as halfProperties
// lays them out: ... __transactionId__, REAL_TOPIC, REAL_QID, TRAN_MSG, with
// nothing of the last three before them. It returns the committed copy's
// properties (everything before REAL_TOPIC: a prefix of p, so nothing is
// copied or scanned), UNIQ_KEY (__transactionId__'s value) and the real
// topic and queue. ok is false for any other layout (a half stored by an
// older txmq, or built elsewhere): the caller then scans (endFields,
// fillCopy).
func splitHalfProps(p []byte) (copyProps, uniq, realTopic, realQID []byte, ok bool) {
	rest, k, val, ok := lastProp(p)
	if !ok || string(k) != message.PropTransactionPrepared || string(val) != "true" {
		return nil, nil, nil, nil, false
	}
	if rest, k, realQID, ok = lastProp(rest); !ok || string(k) != message.PropRealQueueID {
		return nil, nil, nil, nil, false
	}
	if rest, k, realTopic, ok = lastProp(rest); !ok || string(k) != message.PropRealTopic {
		return nil, nil, nil, nil, false
	}
	if _, k, uniq, ok = lastProp(rest); !ok || string(k) != message.PropTransactionID {
		return nil, nil, nil, nil, false
	}
	return rest, uniq, realTopic, realQID, true
}

// lastProp splits the last entry off encoded properties p, which must end
// with the property separator: rest (p before that entry) and the entry's
// key and value; ok only when the entry is well-formed (exactly one
// name/value separator).
func lastProp(p []byte) (rest, key, val []byte, ok bool) {
	if len(p) == 0 || p[len(p)-1] != message.PropertySeparator {
		return nil, nil, nil, false
	}
	i := bytes.LastIndexByte(p[:len(p)-1], message.PropertySeparator) + 1
	item := p[i : len(p)-1]
	j := bytes.IndexByte(item, message.NameValueSeparator)
	if j < 0 || bytes.IndexByte(item[j+1:], message.NameValueSeparator) >= 0 {
		return nil, nil, nil, false
	}
	return p[:i], item[:j], item[j+1:], true
}
