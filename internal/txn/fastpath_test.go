package txn

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

// The hot paths build properties and records by hand; these tests hold
// them to the message package's reference encodings, byte for byte, on
// random (also malformed) properties.

// randProps returns random encoded properties: mostly well-formed entries
// of the keys the service reads or writes, with some malformed ones
// (no separator, two separators, empty items, missing final separator).
func randProps(r *rand.Rand) string {
	keys := []string{message.PropUniqClientMessageID, message.PropProducerGroup, message.PropRealTopic,
		message.PropRealQueueID, message.PropTransactionID, message.PropTransactionPrepared, message.PropTags,
		message.PropKeys, message.PropCheckImmunityTimeSeconds, PropOp, PropHalfStore, "a", "X"}
	vals := []string{"", "v", "TopicA", "7", "123", "-1", "99999999999", "true", "d", "commit", " 5 "}
	var b []byte
	for n := r.IntN(8); n > 0; n-- {
		k, v := keys[r.IntN(len(keys))], vals[r.IntN(len(vals))]
		switch r.IntN(12) {
		case 0:
			b = append(b, k...) // no name/value separator
		case 1:
			b = append(append(append(append(b, k...), 1), v...), 1) // two separators
		case 2: // empty item
		default:
			b = append(append(append(b, k...), 1), v...)
		}
		if n > 1 || r.IntN(6) != 0 {
			b = append(b, 2)
		}
	}
	return string(b)
}

func TestAppendWithoutMatchesRemoveProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sets := [][]string{
		{message.PropTransactionPrepared, message.PropRealTopic, message.PropRealQueueID},
		{message.PropRealTopic, message.PropRealQueueID, message.PropProducerGroup, message.PropTransactionID,
			message.PropTransactionPrepared},
		{"a"}, {"X", PropOp}, {},
	}
	for i := 0; i < 20000; i++ {
		props, keys := randProps(r), sets[r.IntN(len(sets))]
		prefix := []byte("prefix")
		want := "prefix" + message.RemoveProperties(props, keys...)
		if got := string(appendWithout(prefix, props, keys...)); got != want {
			t.Fatalf("appendWithout(%q, %q):\n got %q\nwant %q", props, keys, got, want)
		}
	}
}

// filteredProps is appendFiltered's specification: every entry of p that
// has a name/value separator and a key not in keys, each followed by the
// property separator.
func filteredProps(p string, keys ...string) string {
	var b strings.Builder
	for _, item := range strings.Split(p, string(message.PropertySeparator)) {
		k, _, ok := strings.Cut(item, string(message.NameValueSeparator))
		if ok && !slices.Contains(keys, k) {
			b.WriteString(item)
			b.WriteByte(message.PropertySeparator)
		}
	}
	return b.String()
}

func TestHalfPropertiesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var buf []byte // reused, as a pooled half's buffer is
	for i := 0; i < 20000; i++ {
		props := randProps(r)
		qid := int32(r.IntN(1000))
		ref := filteredProps(props, message.PropRealTopic, message.PropRealQueueID,
			message.PropProducerGroup, message.PropTransactionID, message.PropTransactionPrepared)
		ref = message.AppendProperty(ref, message.PropProducerGroup, "PG")
		ref = message.AppendProperty(ref, message.PropTransactionID, "U1")
		ref = message.AppendProperty(ref, message.PropRealTopic, "TopicB")
		ref = message.AppendProperty(ref, message.PropRealQueueID, strconv.Itoa(int(qid)))
		ref = message.AppendProperty(ref, message.PropTransactionPrepared, "true")
		var got string
		if got, buf = halfProperties(buf, props, "TopicB", qid, "PG", "U1"); got != ref {
			t.Fatalf("props %q:\n got %q\nwant %q", props, got, ref)
		}
		// An END cuts the copy's properties off the front, and finds what
		// the scan finds.
		cp, u, rt, rq, ok := splitHalfProps([]byte(got))
		if !ok {
			t.Fatalf("splitHalfProps(%q) refused what halfProperties built", got)
		}
		wantCP := message.RemoveProperties(got, message.PropTransactionPrepared, message.PropRealTopic, message.PropRealQueueID)
		// (UNIQ_KEY is __transactionId__'s value: Prepare passes it as uniq.)
		_, wrt, wrq := endFields([]byte(got))
		if string(cp) != wantCP || string(u) != "U1" || string(rt) != string(wrt) || string(rq) != string(wrq) {
			t.Fatalf("splitHalfProps(%q) = %q %q %q %q, want %q U1 %q %q", got, cp, u, rt, rq, wantCP, wrt, wrq)
		}
	}
}

// TestSplitHalfPropsRefusesOtherLayouts: a half whose properties do not end
// as halfProperties lays them out (an older txmq's order, a malformed or
// missing entry) is refused, so the END scans it instead.
func TestSplitHalfPropsRefusesOtherLayouts(t *testing.T) {
	const sep, nv = "\x02", "\x01"
	good := "A" + nv + "1" + sep + "__transactionId__" + nv + "U" + sep + "REAL_TOPIC" + nv + "T" + sep +
		"REAL_QID" + nv + "3" + sep + "TRAN_MSG" + nv + "true" + sep
	if cp, u, rt, rq, ok := splitHalfProps([]byte(good)); !ok || string(cp) != "A"+nv+"1"+sep+"__transactionId__"+nv+"U"+sep ||
		string(u) != "U" || string(rt) != "T" || string(rq) != "3" {
		t.Fatalf("splitHalfProps(%q) = %q %q %q %q %v", good, cp, u, rt, rq, ok)
	}
	for _, p := range []string{
		"",
		strings.TrimSuffix(good, sep), // no final separator
		// Before this layout: REAL_TOPIC, REAL_QID, PGROUP, __transactionId__, TRAN_MSG.
		"REAL_TOPIC" + nv + "T" + sep + "REAL_QID" + nv + "3" + sep + "PGROUP" + nv + "G" + sep +
			"__transactionId__" + nv + "U" + sep + "TRAN_MSG" + nv + "true" + sep,
		strings.Replace(good, "TRAN_MSG"+nv+"true", "TRAN_MSG"+nv+"false", 1),
		strings.Replace(good, "REAL_QID"+nv+"3", "REAL_QID"+nv+"3"+nv+"4", 1),
		strings.Replace(good, "REAL_TOPIC"+nv+"T"+sep, "", 1),
		strings.Replace(good, "__transactionId__"+nv+"U"+sep, "", 1),
		"TRAN_MSG" + nv + "true" + sep,
	} {
		if _, _, _, _, ok := splitHalfProps([]byte(p)); ok {
			t.Errorf("splitHalfProps(%q) accepted", p)
		}
	}
}

func TestPropFieldsMatchPropertyBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		props := []byte(randProps(r))
		var f propFields
		f.scan(props)
		for k := 0; k < numPF; k++ {
			want, ok := message.PropertyBytes(props, pfNames[k])
			if ok != f.has[k] || string(f.val[k]) != want {
				t.Fatalf("props %q key %s: got %q %v, want %q %v", props, pfNames[k], f.val[k], f.has[k], want, ok)
			}
		}
		uniq, group, err := scanHalfProps(string(props))
		wantU, _ := message.Property(string(props), message.PropUniqClientMessageID)
		wantG, _ := message.Property(string(props), message.PropProducerGroup)
		if err == nil && (uniq != wantU || group != wantG) {
			t.Fatalf("props %q: scanHalfProps %q %q, want %q %q", props, uniq, group, wantU, wantG)
		}
	}
}

func TestParseQID(t *testing.T) {
	for _, q := range []string{"", "0", "7", "123456789", "2147483647", "2147483648", "99999999999", "-1", "+3", "x", " 1", "1x"} {
		want, _ := strconv.ParseInt(q, 10, 32)
		if got := parseQID([]byte(q)); got != int32(want) {
			t.Errorf("parseQID(%q) = %d, want %d", q, got, want)
		}
	}
}

// referenceCopy is how the committed copy used to be built: decode the
// half, then edit it, with the message package's general functions.
func referenceCopy(v message.View, halfOff int64) *message.Ext {
	m := v.Ext()
	m.Topic, _ = message.Property(m.Properties, message.PropRealTopic)
	q, _ := message.Property(m.Properties, message.PropRealQueueID)
	qid, _ := strconv.ParseInt(q, 10, 32)
	m.QueueID = int32(qid)
	m.SysFlag = m.SysFlag&^message.FlagTransactionMask | message.FlagTransCommit
	m.PreparedTransactionOffset = halfOff
	m.Properties = message.RemoveProperties(m.Properties, message.PropTransactionPrepared,
		message.PropRealTopic, message.PropRealQueueID)
	m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp = 0, 0, 0
	return m
}

func TestCommittedCopyMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	hosts := []netip.AddrPort{netip.MustParseAddrPort("10.1.2.3:4567"), netip.MustParseAddrPort("[2001:db8::1]:10911"),
		netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), {}}
	var buf []byte // reused, as a pooled END batch's buffer is
	for i := 0; i < 5000; i++ {
		props := randProps(r)
		props = message.AppendProperty(props, message.PropRealTopic, "TopicR")
		props = message.AppendProperty(props, message.PropRealQueueID, strconv.Itoa(r.IntN(16)))
		half := &message.Ext{Topic: message.TransHalfTopic, Flag: r.Int32(), QueueOffset: r.Int64N(1 << 40),
			CommitLogOffset: r.Int64N(1 << 40), SysFlag: r.Int32N(1 << 12), BornTimestamp: r.Int64(),
			BornHost: hosts[r.IntN(len(hosts))], StoreTimestamp: r.Int64(), StoreHost: hosts[r.IntN(len(hosts))],
			ReconsumeTimes: r.Int32N(20), Body: []byte("body-" + strconv.Itoa(i)), Properties: props}
		v, err := halfView(half.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		off := r.Int64N(1 << 40)
		want := referenceCopy(v, off).AppendTo(nil)
		// As the END path builds it, from the record's own fields.
		_, rt, rq := endFields(v.Properties())
		var m message.Ext
		buf = fillCopy(&m, v, string(rt), parseQID(rq), off, buf)
		if got := m.AppendTo(nil); !bytes.Equal(got, want) {
			t.Fatalf("fillCopy of half %+v:\n got %x\nwant %x", half, got, want)
		}
		// The half as this txmq stores it: its copy's properties are cut
		// off the front.
		half.Properties, _ = halfProperties(nil, props, "TopicR", int32(r.IntN(16)), "PG", "U"+strconv.Itoa(i))
		if v, err = halfView(half.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		want = referenceCopy(v, off).AppendTo(nil)
		cp, _, rt, rq, ok := splitHalfProps(v.Properties())
		if !ok {
			t.Fatalf("splitHalfProps refused %q", v.Properties())
		}
		fillCopyProps(&m, v, string(rt), parseQID(rq), off, cp)
		if got := m.AppendTo(nil); !bytes.Equal(got, want) {
			t.Fatalf("fillCopyProps of half %+v:\n got %x\nwant %x", half, got, want)
		}
	}
}

func TestDoneRecordMatchesOpRecord(t *testing.T) {
	h := newHarness(t, nil)
	for _, uniq := range []string{"", "7F0000010000ABCD", "x y"} {
		for _, op := range []string{"commit", "rollback"} {
			want := h.svc.opRecord(opDone, appendOpEnt(nil, 123456, 0, false), PropOp, op,
				PropOpSource, SourceCheck.String(), message.PropKeys, uniq)
			var got message.Ext
			h.svc.doneRecord(&got, 123456, op, SourceCheck.String(), []byte(uniq))
			if !bytes.Equal(got.AppendTo(nil), want.AppendTo(nil)) {
				t.Fatalf("op d %s %q: got %+v, want %+v", op, uniq, got, *want)
			}
		}
	}
}

// An END reads the half through the half queue when it names the half's
// queue offset (no commit-log ReadAt); a queue offset naming another half
// falls back to the commit-log offset (and is refused), and no queue
// offset reads by commit-log offset.
func TestEndReadsHalfByQueueOffset(t *testing.T) {
	h := newHarness(t, nil)
	a, b, c := h.prepare("PG", uniqID(1)), h.prepare("PG", uniqID(2)), h.prepare("PG", uniqID(3))
	end := func(r PrepareResult, tso int64, wantReadAts int64) (EndResult, error) {
		t.Helper()
		before := h.log.readAts.Load()
		er, err := h.svc.End(context.Background(), EndRequest{ProducerGroup: "PG", CommitLogOffset: r.Append.CommitLogOffset,
			TranStateTableOffset: tso, HasOffsets: true, Resolution: ResolutionCommit})
		if n := h.log.readAts.Load() - before; n != wantReadAts {
			t.Errorf("END of %d with queue offset %d: %d ReadAt calls, want %d", r.Append.CommitLogOffset, tso, n, wantReadAts)
		}
		return er, err
	}
	if _, err := end(a, b.Append.QueueOffset, 1); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("END naming another half's queue offset: %v", err)
	}
	if er, err := end(a, a.Append.QueueOffset, 0); err != nil || !er.Applied || er.TransactionID != uniqID(1) {
		t.Fatalf("END: %+v %v", er, err)
	}
	if er, err := end(b, -1, 1); err != nil || !er.Applied || er.TransactionID != uniqID(2) {
		t.Fatalf("END without queue offset: %+v %v", er, err)
	}
	if er, err := end(c, c.Append.QueueOffset, 0); err != nil || !er.Applied {
		t.Fatalf("END: %+v %v", er, err)
	}
	got := h.visible("TopicA", 1)
	if len(got) != 3 {
		t.Fatalf("%d copies visible", len(got))
	}
	for i, m := range got {
		p := message.ParseProperties(m.Properties)
		if p[message.PropUniqClientMessageID] != uniqID(i+1) || string(m.Body) != "body-"+uniqID(i+1) {
			t.Errorf("copy %d: %+v", i, m)
		}
	}
}
