package session

// boardIndex maps user keys to values: an open-addressing hash table with
// linear probing, kept at most half full, and backward-shift deletion (no
// tombstones). One probe sequence is usually one cache line, where a Go map
// of a million entries costs several misses; Rank on a big memory board
// spends most of its time in such misses. Not safe for concurrent use.
type boardIndex struct {
	slots []boardSlot // len is a power of two, or 0
	shift uint        // 64 − log2(len(slots))
	n     int
}

type boardSlot struct {
	used  bool
	user  int64
	value float64
}

const boardIndexMin = 16

// home returns the slot where user's probe sequence starts (Fibonacci
// hashing: the top bits of user × 2^64/φ).
func (x *boardIndex) home(user int64) int {
	return int((uint64(user) * 0x9E3779B97F4A7C15) >> x.shift)
}

func (x *boardIndex) get(user int64) (float64, bool) {
	if x.n == 0 {
		return 0, false
	}
	mask := len(x.slots) - 1
	for i := x.home(user); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if !s.used {
			return 0, false
		}
		if s.user == user {
			return s.value, true
		}
	}
}

func (x *boardIndex) set(user int64, v float64) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	mask := len(x.slots) - 1
	for i := x.home(user); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if !s.used {
			*s = boardSlot{used: true, user: user, value: v}
			x.n++
			return
		}
		if s.user == user {
			s.value = v
			return
		}
	}
}

func (x *boardIndex) grow() {
	size := max(2*len(x.slots), boardIndexMin)
	old := x.slots
	x.slots = make([]boardSlot, size)
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	x.n = 0
	for _, s := range old {
		if s.used {
			x.set(s.user, s.value)
		}
	}
}

// del removes user, shifting later members of its cluster back so every
// probe sequence stays unbroken.
func (x *boardIndex) del(user int64) bool {
	if x.n == 0 {
		return false
	}
	mask := len(x.slots) - 1
	i := x.home(user)
	for ; ; i = (i + 1) & mask {
		if !x.slots[i].used {
			return false
		}
		if x.slots[i].user == user {
			break
		}
	}
	for j := (i + 1) & mask; x.slots[j].used; j = (j + 1) & mask {
		// Move slot j into the hole at i when its home is not in (i, j]
		// (cyclically): otherwise a lookup from its home would stop at i.
		h := x.home(x.slots[j].user)
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = boardSlot{}
	x.n--
	return true
}
