package txn

// The check window. A producer answers checks one at a time (the official
// Go client runs every check's listener and END on one goroutine, over
// the connection its own sends use), so checks are a load on it. When a
// group has many pending transactions and the check interval is shorter
// than the producer takes to work through them, every interval would
// send them all again and the checks would crowd out the producer's
// sends. So at most CheckWindow checks of a group are outstanding: sent
// within the last interval and not answered (fAwaiting, counted in
// awaiting). A transaction that falls due while the window is full waits
// in windowQ, in the order it fell due, without spending a check, until
// an answer or the interval frees room. Waiting costs a slice slot; no
// timer runs for it.

// endOutstandingLocked ends e's outstanding check, if it has one: its
// producer answered, it was resolved, or its interval passed. When the
// group's window has room and transactions wait for it, it wakes the
// scheduler. mu held.
func (s *Service) endOutstandingLocked(e *entry) {
	if e.flags&fAwaiting == 0 {
		return
	}
	e.flags &^= fAwaiting
	s.awaiting[e.group]--
	if len(s.windowQ[e.group]) > 0 && int(s.awaiting[e.group]) < s.cfg.CheckWindow {
		s.kick()
	}
}

// reserveLocked counts e's check as outstanding. The scheduler reserves
// the slot when it takes e, before it sends the check, so an answer that
// arrives before the round ends finds it to free; process frees the
// slots of checks it did not send. mu held.
func (s *Service) reserveLocked(e *entry) {
	if s.cfg.CheckWindow > 0 && e.flags&fAwaiting == 0 {
		e.flags |= fAwaiting
		s.awaiting[e.group]++
	}
}

// takeWindowLocked moves the transactions waiting in the groups' windows
// that have room into batch, in the order they fell due, while it holds
// fewer than max. mu held.
func (s *Service) takeWindowLocked(batch []*work, max int) []*work {
	for g, q := range s.windowQ {
		i := 0
		for ; i < len(q) && int(s.awaiting[g]) < s.cfg.CheckWindow && len(batch) < max; i++ {
			e := q[i]
			q[i] = nil
			if e.flags&fWaiting == 0 || s.pending[e.off] != e {
				continue // taken elsewhere (retention) or resolved
			}
			e.flags &^= fWaiting
			if e.flags&fEnding != 0 {
				continue // an END owns it; release re-arms it if the END fails
			}
			e.flags |= fChecking
			s.reserveLocked(e)
			batch = append(batch, &work{e: e, checks: int(e.checks), group: s.groupName(g)})
		}
		if i == len(q) {
			delete(s.windowQ, g)
		} else {
			s.windowQ[g] = q[i:]
		}
	}
	return batch
}

// windowGaugesLocked refreshes the check windows' gauges. The waiting
// count includes entries resolved while they waited, until the scheduler
// drops them (the next round with room in their window). mu held.
func (s *Service) windowGaugesLocked() {
	var out, n int
	for _, a := range s.awaiting {
		out += int(a)
	}
	for _, q := range s.windowQ {
		n += len(q)
	}
	s.c.outstandingNow.Store(int64(out))
	s.c.waitingNow.Store(int64(n))
}
