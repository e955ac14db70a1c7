package session

import "sync"

// subscribers is a set of event callbacks.
type subscribers struct {
	mu   sync.Mutex
	next uint64
	fns  map[uint64]func(Event)
}

func (s *subscribers) add(fn func(Event)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = make(map[uint64]func(Event))
	}
	s.next++
	id := s.next
	s.fns[id] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.fns, id)
			s.mu.Unlock()
		})
	}
}

func (s *subscribers) emit(ev Event) {
	s.mu.Lock()
	fns := make([]func(Event), 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

func (s *subscribers) clear() {
	s.mu.Lock()
	s.fns = nil
	s.mu.Unlock()
}
