package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/consumequeue"
)

// GetStatus is the outcome of GetMessages (RocketMQ GetMessageStatus).
type GetStatus int

const (
	Found               GetStatus = iota // Records holds at least one record
	NoMatchedMessage                     // entries were there but the filter refused all of them
	OffsetFoundNull                      // the consume queue has no entry at the offset (its file is gone)
	OffsetOverflowOne                    // offset == max: nothing new yet (long-poll)
	OffsetOverflowBadly                  // offset > max
	OffsetTooSmall                       // offset < min
	NoMessageInQueue                     // the queue is empty (max == 0) or does not exist
	MessageWasRemoving                   // entries point at commit-log data removed by retention
)

var statusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "OFFSET_FOUND_NULL", "OFFSET_OVERFLOW_ONE",
	"OFFSET_OVERFLOW_BADLY", "OFFSET_TOO_SMALL", "NO_MESSAGE_IN_QUEUE", "MESSAGE_WAS_REMOVING"}

func (g GetStatus) String() string {
	if g >= 0 && int(g) < len(statusNames) {
		return statusNames[g]
	}
	return fmt.Sprintf("GetStatus(%d)", int(g))
}

// GetResult is what GetMessages found. Call Release when done with it:
// Body, Records and QueueOffsets are reused afterwards (by a later
// GetMessages call, possibly on another goroutine), so nothing may keep
// them, or r, after Release.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64 // where the next pull should start
	MinOffset       int64 // queue min offset
	MaxOffset       int64 // queue max offset (next offset to be written)
	// Body is the found records back to back: a PULL_MESSAGE response body.
	Body []byte
	// Records[i] is one record (aliasing Body) at queue offset QueueOffsets[i].
	Records      [][]byte
	QueueOffsets []int64

	ents [getChunk]consumequeue.Entry
	pass [getChunk]bool // filter verdicts of ents, taken once
}

const (
	getChunk = 32
	// maxScanEntries bounds the consume-queue entries one call looks at
	// (RocketMQ maxFilterMessageCount).
	maxScanEntries = 16000
	maxKeptBody    = 4 << 20 // larger Body buffers are not pooled
	// Released results go first to a small free list, which, unlike the
	// sync.Pool behind it, survives garbage collections: a steady pull
	// load reuses the same few buffers. Only results whose Body is at most
	// maxFreeBody join it, bounding what it pins to freeResults*maxFreeBody.
	freeResults = 32
	maxFreeBody = 256 << 10
)

var (
	resultFree = make(chan *GetResult, freeResults)
	resultPool = sync.Pool{New: func() any { return new(GetResult) }}
)

func getResult() *GetResult {
	select {
	case r := <-resultFree:
		return r
	default:
		return resultPool.Get().(*GetResult)
	}
}

// Release returns r for reuse; r and its slices must not be used after.
func (r *GetResult) Release() {
	if r == nil {
		return
	}
	if cap(r.Body) > maxKeptBody {
		r.Body = nil
	}
	clear(r.Records)
	r.Body, r.Records, r.QueueOffsets = r.Body[:0], r.Records[:0], r.QueueOffsets[:0]
	if cap(r.Body) <= maxFreeBody {
		select {
		case resultFree <- r:
			return
		default:
		}
	}
	resultPool.Put(r)
}

// GetMessages reads up to maxCount records (and about maxBytes; at least
// one record when any matches; maxBytes <= 0: no byte limit) of a queue
// from offset on. filter, if set, sees each entry's tags hash code and
// says whether to return it. Statuses and NextBeginOffset follow Apache
// RocketMQ's DefaultMessageStore.getMessage.
func (s *Store) GetMessages(topic string, queueID int32, offset int64, maxCount, maxBytes int, filter func(tagsCode int64) bool) (*GetResult, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	r := getResult()
	r.Status, r.NextBeginOffset, r.MinOffset, r.MaxOffset = NoMessageInQueue, 0, 0, 0
	q := s.cq.Get(topic, queueID)
	if q == nil {
		return r, nil
	}
	minQ, maxQ := q.MinOffset(), q.MaxOffset()
	r.MinOffset, r.MaxOffset = minQ, maxQ
	switch {
	case maxQ == 0:
		r.Status, r.NextBeginOffset = NoMessageInQueue, 0
		return r, nil
	case offset < minQ:
		r.Status, r.NextBeginOffset = OffsetTooSmall, minQ
		return r, nil
	case offset == maxQ:
		r.Status, r.NextBeginOffset = OffsetOverflowOne, offset
		return r, nil
	case offset > maxQ:
		r.Status, r.NextBeginOffset = OffsetOverflowBadly, maxQ
		if minQ == 0 {
			r.NextBeginOffset = minQ
		}
		return r, nil
	}
	if maxCount <= 0 {
		maxCount = 1
	}
	r.Status = NoMatchedMessage
	next := offset
	written := s.written.Load()
	maxRec := s.cfg.maxRecordLen() // a larger entry size is bogus: not reserved for
	removed := false
	for cur := offset; cur < maxQ && len(r.Records) < maxCount && cur-offset < maxScanEntries; {
		chunk := min(int64(getChunk), maxQ-cur)
		if filter == nil {
			// Every entry passes: read no more than the records still
			// wanted (an END reads its half with maxCount 1).
			chunk = min(chunk, int64(maxCount-len(r.Records)))
		}
		n, err := q.Read(cur, r.ents[:chunk])
		if err != nil || n == 0 {
			if len(r.Records) == 0 && next == offset {
				r.Status = OffsetFoundNull
				if errors.Is(err, consumequeue.ErrOffsetTooSmall) {
					next = q.MinOffset()
				}
			}
			break
		}
		// Size Body once for the records this chunk should add (entries
		// carry their record's size) instead of growing it by append, and
		// take the filter's verdicts, outside segMu.
		judged, cnt, nb := 0, len(r.Records), len(r.Body)
		for ; judged < n; judged++ {
			e := r.ents[judged]
			if cnt >= maxCount || (maxBytes > 0 && cnt > 0 && nb+int(e.Size) > maxBytes) {
				break
			}
			r.pass[judged] = filter == nil || filter(e.TagsCode)
			if r.pass[judged] && int64(e.Size) <= maxRec {
				cnt++
				nb += int(e.Size)
			}
		}
		r.Body = slices.Grow(r.Body, nb-len(r.Body))
		r.Records = slices.Grow(r.Records, cnt-len(r.Records))
		r.QueueOffsets = slices.Grow(r.QueueOffsets, cnt-len(r.QueueOffsets))
		full := false
		s.segMu.RLock()
		for i := 0; i < n; i++ {
			e := r.ents[i]
			if len(r.Records) >= maxCount || (maxBytes > 0 && len(r.Records) > 0 && len(r.Body)+int(e.Size) > maxBytes) {
				full = true
				break
			}
			next = cur + int64(i) + 1
			// Entries past judged are reached only when records the
			// estimate counted turned out removed: judge them now.
			if i < judged && !r.pass[i] || i >= judged && filter != nil && !filter(e.TagsCode) {
				continue
			}
			rec, rerr := s.recordLocked(e.CommitLogOffset, e.Size, written)
			if rerr != nil {
				removed = true // retention got there first (or the entry is stale)
				continue
			}
			p := len(r.Body)
			r.Body = append(r.Body, rec...)
			r.Records = append(r.Records, r.Body[p:len(r.Body):len(r.Body)])
			r.QueueOffsets = append(r.QueueOffsets, cur+int64(i))
		}
		s.segMu.RUnlock()
		if full {
			break
		}
		cur += int64(n)
	}
	if len(r.Records) > 0 {
		s.noteRead(int64(len(r.Body)))
		r.Status = Found
		// Body may have been reallocated while it grew (between chunks, or
		// past the estimate): re-slice Records.
		p := 0
		for i, rec := range r.Records {
			r.Records[i] = r.Body[p : p+len(rec) : p+len(rec)]
			p += len(rec)
		}
	} else if removed && r.Status == NoMatchedMessage {
		r.Status = MessageWasRemoving
	}
	r.NextBeginOffset = next
	return r, nil
}

// MinOffset is the queue's smallest logical offset still stored.
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q := s.cq.Get(topic, queueID); q != nil {
		return q.MinOffset()
	}
	return 0
}

// MaxOffset is the queue's next logical offset (the number of messages
// ever appended to it, counting removed ones).
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q := s.cq.Get(topic, queueID); q != nil {
		return q.MaxOffset()
	}
	return 0
}

// OffsetByTime is the first queue offset whose store timestamp is at or
// after ts (ms); MaxOffset when there is none, MinOffset when ts precedes
// everything (SEARCH_OFFSET_BY_TIMESTAMP).
func (s *Store) OffsetByTime(topic string, queueID int32, ts int64) int64 {
	q := s.cq.Get(topic, queueID)
	if q == nil {
		return 0
	}
	off, err := q.SearchByTime(ts, s.entryStoreTime)
	if err != nil {
		return q.MaxOffset()
	}
	return off
}

func (s *Store) entryStoreTime(e consumequeue.Entry) (int64, error) {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	return s.storeTimeLocked(e.CommitLogOffset, e.Size)
}

// EarliestStoreTime is the store timestamp of the queue's oldest message
// (GET_EARLIEST_MSG_STORETIME). ErrNotFound when the queue is empty.
func (s *Store) EarliestStoreTime(topic string, queueID int32) (int64, error) {
	if s.isClosed.Load() {
		return 0, ErrClosed
	}
	q := s.cq.Get(topic, queueID)
	if q == nil {
		return 0, fmt.Errorf("%w: queue %s/%d does not exist", ErrNotFound, topic, queueID)
	}
	var ents [1]consumequeue.Entry
	// Entries whose records retention just removed are skipped (a bounded
	// number: the queue minimum follows the commit log within a round).
	for off, tries := q.MinOffset(), 0; off < q.MaxOffset() && tries < 1024; off, tries = off+1, tries+1 {
		n, err := q.Read(off, ents[:])
		if err != nil || n == 0 {
			continue
		}
		if ts, err := s.entryStoreTime(ents[0]); err == nil {
			return ts, nil
		}
	}
	return 0, fmt.Errorf("%w: queue %s/%d is empty", ErrNotFound, topic, queueID)
}

// QueryByKey returns copies of up to maxNum records of topic whose KEYS
// (space separated) contain key or whose UNIQ_KEY is key, stored in
// [begin, end] (ms). Index candidates are verified against the record, so
// hash collisions never leak. Every message whose Append completed before
// the call is found: the call first waits (at most indexWaitTimeout, then
// ErrIndexBehind) for the background indexer to reach the visible end.
func (s *Store) QueryByKey(topic, key string, maxNum int, begin, end int64) ([][]byte, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	if maxNum <= 0 || key == "" {
		return nil, nil
	}
	// Read your writes: the index is built in the background; wait until
	// it holds every record visible now.
	if err := s.waitIndexed(s.visible.Load(), indexWaitTimeout); err != nil {
		return nil, fmt.Errorf("store: query %q: %w", key, err)
	}
	cands, err := s.idx.Lookup(topic+indexKeySep+key, begin, end, 2*maxNum+16)
	if err != nil {
		return nil, fmt.Errorf("store: query %q: %w", key, err)
	}
	var out [][]byte
	seen := map[int64]bool{}
	limit := s.visible.Load()
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	for _, off := range cands {
		if len(out) >= maxNum {
			break
		}
		if seen[off] {
			continue
		}
		seen[off] = true
		rec, err := s.recordLocked(off, 0, limit)
		if err != nil {
			continue
		}
		v, err := checkRecord(rec, off)
		if err != nil || string(v.Topic()) != topic || v.StoreTimestamp() < begin || v.StoreTimestamp() > end {
			continue
		}
		if !hasKey(v.Properties(), key) {
			continue
		}
		out = append(out, append([]byte(nil), rec...))
	}
	return out, nil
}

// hasKey reports whether encoded properties name key in KEYS or UNIQ_KEY.
func hasKey(props []byte, key string) bool {
	if u, ok := message.PropertyBytes(props, message.PropUniqClientMessageID); ok && u == key {
		return true
	}
	keys, _ := message.PropertyBytes(props, message.PropKeys)
	for rest := keys; rest != ""; {
		var k string
		k, rest, _ = strings.Cut(rest, " ")
		if k == key {
			return true
		}
	}
	return false
}
