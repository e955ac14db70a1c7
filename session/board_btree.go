package session

import (
	"bytes"
	"strconv"
)

// boardTree is an order-statistic B+tree of board members, best first
// (value descending, then the member's decimal string descending, as Redis
// orders a sorted set read in reverse). Inner nodes keep the size of every
// subtree, so rank and select are O(log n) with few cache misses: a million
// members sit under three inner levels. Not safe for concurrent use.
type boardTree struct {
	root *boardNode // an inner node; at first with one leaf below it
	n    int
}

const (
	boardNodeMax = 64               // most members (leaf) or children (inner node)
	boardNodeMin = boardNodeMax / 4 // fewer than this: rebalance with a sibling
)

// boardLeaf holds members in order. One spare slot lets it overflow before
// it splits.
type boardLeaf struct {
	n    int
	keys [boardNodeMax + 1]BoardMember
	next *boardLeaf
}

// boardNode is an inner node. keys[i] is a lower bound of the members under
// child i (keys[0] is unused by routing); cnts[i] is the number of members
// under child i. The children are leaves (low) or inner nodes; the other
// array stays nil, and code that moves children moves both.
type boardNode struct {
	n      int
	low    bool
	keys   [boardNodeMax + 1]BoardMember
	cnts   [boardNodeMax + 1]int32
	kids   [boardNodeMax + 1]*boardNode
	leaves [boardNodeMax + 1]*boardLeaf
}

// boardBefore reports whether a ranks before (better than) b.
func boardBefore(a, b BoardMember) bool {
	if a.Value != b.Value {
		return a.Value > b.Value
	}
	if a.User == b.User {
		return false
	}
	if a.User >= 0 && b.User >= 0 && boardDigits(a.User) == boardDigits(b.User) {
		return a.User > b.User // same number of digits: numeric order is string order
	}
	var x, y [20]byte
	return bytes.Compare(strconv.AppendInt(x[:0], a.User, 10), strconv.AppendInt(y[:0], b.User, 10)) > 0
}

func boardDigits(v int64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func (n *boardNode) size() int32 {
	var s int32
	for i := 0; i < n.n; i++ {
		s += n.cnts[i]
	}
	return s
}

// child returns the index of the child whose range holds k.
func (n *boardNode) child(k BoardMember) int {
	lo, hi := 1, n.n // first i ≥ 1 with k before keys[i]; the child is i-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if boardBefore(k, n.keys[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// search returns the first position whose member is not before k.
func (l *boardLeaf) search(k BoardMember) int {
	lo, hi := 0, l.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if boardBefore(l.keys[m], k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (t *boardTree) insert(k BoardMember) {
	if t.root == nil {
		t.root = &boardNode{n: 1, low: true}
		t.root.leaves[0] = &boardLeaf{}
	}
	if r := t.root.insert(k); r != nil {
		old := t.root
		t.root = &boardNode{n: 2}
		t.root.kids[0], t.root.kids[1] = old, r
		t.root.cnts[0], t.root.cnts[1] = old.size(), r.size()
		t.root.keys[1] = r.keys[0]
	}
	t.n++
}

// insert adds k under n and returns n's new right sibling if n split.
func (n *boardNode) insert(k BoardMember) *boardNode {
	i := n.child(k)
	n.cnts[i]++
	var (
		rk   *boardNode
		rl   *boardLeaf
		sep  BoardMember
		left int32
		rcnt int32
	)
	if n.low {
		l := n.leaves[i]
		if rl = l.insert(k); rl == nil {
			return nil
		}
		sep, left, rcnt = rl.keys[0], int32(l.n), int32(rl.n)
	} else {
		if rk = n.kids[i].insert(k); rk == nil {
			return nil
		}
		sep, left, rcnt = rk.keys[0], n.kids[i].size(), rk.size()
	}
	n.open(i + 1)
	n.kids[i+1], n.leaves[i+1], n.keys[i+1] = rk, rl, sep
	n.cnts[i], n.cnts[i+1] = left, rcnt
	if n.n <= boardNodeMax {
		return nil
	}
	// Split in halves. The right node's keys[0] is the bound of its first
	// child, which the parent takes as the right node's bound.
	h := n.n / 2
	r := &boardNode{low: n.low, n: n.n - h}
	copy(r.keys[:], n.keys[h:n.n])
	copy(r.cnts[:], n.cnts[h:n.n])
	copy(r.kids[:], n.kids[h:n.n])
	copy(r.leaves[:], n.leaves[h:n.n])
	clear(n.kids[h:n.n])
	clear(n.leaves[h:n.n])
	n.n = h
	return r
}

// open makes room for a child at i.
func (n *boardNode) open(i int) {
	copy(n.keys[i+1:n.n+1], n.keys[i:n.n])
	copy(n.cnts[i+1:n.n+1], n.cnts[i:n.n])
	copy(n.kids[i+1:n.n+1], n.kids[i:n.n])
	copy(n.leaves[i+1:n.n+1], n.leaves[i:n.n])
	n.n++
}

// drop removes child i.
func (n *boardNode) drop(i int) {
	copy(n.keys[i:n.n-1], n.keys[i+1:n.n])
	copy(n.cnts[i:n.n-1], n.cnts[i+1:n.n])
	copy(n.kids[i:n.n-1], n.kids[i+1:n.n])
	copy(n.leaves[i:n.n-1], n.leaves[i+1:n.n])
	n.n--
	n.kids[n.n], n.leaves[n.n] = nil, nil
}

// insert adds k to the leaf and returns its new right sibling if it split.
func (l *boardLeaf) insert(k BoardMember) *boardLeaf {
	i := l.search(k)
	copy(l.keys[i+1:l.n+1], l.keys[i:l.n])
	l.keys[i] = k
	l.n++
	if l.n <= boardNodeMax {
		return nil
	}
	h := l.n / 2
	r := &boardLeaf{n: l.n - h, next: l.next}
	copy(r.keys[:], l.keys[h:l.n])
	l.n, l.next = h, r
	return r
}

// remove deletes k, which must be in the tree.
func (t *boardTree) remove(k BoardMember) {
	if t.root == nil || !t.root.remove(k) {
		return
	}
	t.n--
	for !t.root.low && t.root.n == 1 {
		t.root = t.root.kids[0]
	}
}

func (n *boardNode) remove(k BoardMember) bool {
	i := n.child(k)
	var small bool
	if n.low {
		l := n.leaves[i]
		j := l.search(k)
		if j == l.n || l.keys[j] != k {
			return false
		}
		copy(l.keys[j:l.n-1], l.keys[j+1:l.n])
		l.n--
		small = l.n < boardNodeMin
	} else {
		if !n.kids[i].remove(k) {
			return false
		}
		small = n.kids[i].n < boardNodeMin
	}
	n.cnts[i]--
	if small && n.n > 1 {
		if i == n.n-1 {
			i--
		}
		n.rebalance(i)
	}
	return true
}

// rebalance evens out children i and i+1: merged into one when they fit,
// otherwise split evenly.
func (n *boardNode) rebalance(i int) {
	if n.low {
		l, r := n.leaves[i], n.leaves[i+1]
		total := l.n + r.n
		var all [2*boardNodeMax + 2]BoardMember
		copy(all[:], l.keys[:l.n])
		copy(all[l.n:], r.keys[:r.n])
		if total <= boardNodeMax {
			copy(l.keys[:], all[:total])
			l.n, l.next = total, r.next
			n.drop(i + 1)
			n.cnts[i] = int32(total)
			return
		}
		h := total / 2
		copy(l.keys[:], all[:h])
		copy(r.keys[:], all[h:total])
		l.n, r.n = h, total-h
		n.keys[i+1] = r.keys[0]
		n.cnts[i], n.cnts[i+1] = int32(l.n), int32(r.n)
		return
	}
	l, r := n.kids[i], n.kids[i+1]
	total := l.n + r.n
	var (
		keys   [2*boardNodeMax + 2]BoardMember
		cnts   [2*boardNodeMax + 2]int32
		kids   [2*boardNodeMax + 2]*boardNode
		leaves [2*boardNodeMax + 2]*boardLeaf
	)
	copy(keys[:], l.keys[:l.n])
	copy(cnts[:], l.cnts[:l.n])
	copy(kids[:], l.kids[:l.n])
	copy(leaves[:], l.leaves[:l.n])
	copy(keys[l.n:], r.keys[:r.n])
	keys[l.n] = n.keys[i+1] // the bound of r's first child
	copy(cnts[l.n:], r.cnts[:r.n])
	copy(kids[l.n:], r.kids[:r.n])
	copy(leaves[l.n:], r.leaves[:r.n])
	h := total
	if total > boardNodeMax {
		h = total / 2
	}
	*l = boardNode{n: h, low: l.low}
	copy(l.keys[:], keys[:h])
	copy(l.cnts[:], cnts[:h])
	copy(l.kids[:], kids[:h])
	copy(l.leaves[:], leaves[:h])
	if h == total {
		n.drop(i + 1)
		n.cnts[i] = l.size()
		return
	}
	*r = boardNode{n: total - h, low: r.low}
	copy(r.keys[:], keys[h:total])
	copy(r.cnts[:], cnts[h:total])
	copy(r.kids[:], kids[h:total])
	copy(r.leaves[:], leaves[h:total])
	n.keys[i+1] = keys[h]
	n.cnts[i], n.cnts[i+1] = l.size(), r.size()
}

// rank returns the 0-based rank of k, which must be in the tree.
func (t *boardTree) rank(k BoardMember) int64 {
	if t.root == nil {
		return -1
	}
	var r int64
	n := t.root
	for {
		i := n.child(k)
		for j := 0; j < i; j++ {
			r += int64(n.cnts[j])
		}
		if n.low {
			return r + int64(n.leaves[i].search(k))
		}
		n = n.kids[i]
	}
}

// seek returns the leaf and position of the member at 0-based rank r, or nil
// when r is out of range.
func (t *boardTree) seek(r int64) (*boardLeaf, int) {
	if r < 0 || r >= int64(t.n) {
		return nil, 0
	}
	n := t.root
	for {
		i := 0
		for ; i < n.n-1 && r >= int64(n.cnts[i]); i++ {
			r -= int64(n.cnts[i])
		}
		if n.low {
			return n.leaves[i], int(r)
		}
		n = n.kids[i]
	}
}

// appendRange appends the members at 0-based ranks start..stop inclusive.
func (t *boardTree) appendRange(dst []BoardMember, start, stop int64) []BoardMember {
	if stop >= int64(t.n) {
		stop = int64(t.n) - 1
	}
	l, i := t.seek(start)
	for left := stop - start + 1; l != nil && left > 0; l, i = l.next, 0 {
		take := min(int64(l.n-i), left)
		dst = append(dst, l.keys[i:i+int(take)]...)
		left -= take
	}
	return dst
}
