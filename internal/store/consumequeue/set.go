package consumequeue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/txmq/txmq/internal/fsutil"
)

// queueKey identifies a queue in a Set without building a string.
type queueKey struct {
	topic string
	id    int32
}

// Set holds every consume queue under one root directory. All its methods are
// safe for concurrent use.
type Set struct {
	root string
	opts Options

	mu     sync.RWMutex // guards queues and closed
	queues map[queueKey]*Queue
	closed bool
}

// OpenSet opens every queue found under root (<root>/<topic>/<queueId>/),
// creating root if needed. Entries of root that are not directories, and
// subdirectories whose name is not an int32, are ignored with a warning.
func OpenSet(root string, opts Options) (*Set, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("open consume queues %s: %w", root, err)
	}
	s := &Set{root: root, opts: opts, queues: make(map[queueKey]*Queue)}
	topics, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open consume queues %s: %w", root, err)
	}
	for _, td := range topics {
		if !td.IsDir() || !validTopic(td.Name()) {
			opts.Logger.Warn("ignoring unexpected entry in consume queue root", "path", filepath.Join(root, td.Name()))
			continue
		}
		tdir := filepath.Join(root, td.Name())
		qds, err := os.ReadDir(tdir)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("open consume queues %s: %w", tdir, err)
		}
		for _, qd := range qds {
			id, err := strconv.ParseInt(qd.Name(), 10, 32)
			if !qd.IsDir() || err != nil || strconv.FormatInt(id, 10) != qd.Name() {
				opts.Logger.Warn("ignoring unexpected entry in consume queue topic dir", "path", filepath.Join(tdir, qd.Name()))
				continue
			}
			q, err := OpenQueue(root, td.Name(), int32(id), opts)
			if err != nil {
				_ = s.Close()
				return nil, err
			}
			s.queues[queueKey{td.Name(), int32(id)}] = q
		}
	}
	return s, nil
}

// Get returns the queue of (topic, queueID), or nil if it does not exist. It
// does not allocate.
func (s *Set) Get(topic string, queueID int32) *Queue {
	s.mu.RLock()
	q := s.queues[queueKey{topic, queueID}]
	s.mu.RUnlock()
	return q
}

// GetOrCreate returns the queue of (topic, queueID), opening it if needed.
// Files are created on its first Put.
func (s *Set) GetOrCreate(topic string, queueID int32) (*Queue, error) {
	if q := s.Get(topic, queueID); q != nil {
		return q, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("create consume queue %s/%d: %w", topic, queueID, ErrClosed)
	}
	k := queueKey{topic, queueID}
	if q := s.queues[k]; q != nil {
		return q, nil
	}
	q, err := OpenQueue(s.root, topic, queueID, s.opts)
	if err != nil {
		return nil, err
	}
	s.queues[k] = q
	return q, nil
}

// snapshot returns the queues, optionally only those of one topic.
func (s *Set) snapshot() []*Queue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	qs := make([]*Queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	return qs
}

// Range calls f for every queue (in no particular order) until f returns
// false. f may call other methods of the Set.
func (s *Set) Range(f func(*Queue) bool) {
	for _, q := range s.snapshot() {
		if !f(q) {
			return
		}
	}
}

// DeleteTopic destroys every queue of topic and removes its directory.
// Writers must have stopped writing to the topic: a *Queue obtained before
// returns ErrClosed afterwards, and a queue of the topic created while
// DeleteTopic runs may lose its files.
func (s *Set) DeleteTopic(topic string) error {
	if !validTopic(topic) {
		return fmt.Errorf("delete topic %q: %w", topic, ErrInvalidTopic)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("delete topic %s: %w", topic, ErrClosed)
	}
	var qs []*Queue
	for k, q := range s.queues {
		if k.topic == topic {
			qs = append(qs, q)
			delete(s.queues, k)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.Destroy())
	}
	dir := filepath.Join(s.root, topic)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("delete topic %s: %w", dir, err))
	}
	if err := fsutil.SyncDir(s.root); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Sync syncs every queue (see Queue.Sync).
func (s *Set) Sync() error {
	var errs []error
	for _, q := range s.snapshot() {
		if err := q.Sync(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Trim trims every queue (see Queue.Trim).
func (s *Set) Trim() error {
	var errs []error
	for _, q := range s.snapshot() {
		if err := q.Trim(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every queue. Later calls return nil.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	qs := make([]*Queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.Unlock()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}
