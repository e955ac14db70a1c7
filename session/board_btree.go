package session

import (
	"bytes"
	"strconv"
)

// boardTree is an order-statistic B+tree of board members, best first
// (value descending, then the member's decimal string descending, as Redis
// orders a sorted set read in reverse). Inner nodes keep the size of every
// subtree, so rank and select are O(log n) with few cache misses: at a
// million members the tree is 4 levels deep. Not safe for concurrent use.
type boardTree struct {
	root *boardNode
	n    int
}

const (
	boardNodeMax = 64               // most entries (leaf) or children (inner) of a node
	boardNodeMin = boardNodeMax / 4 // fewer than this: rebalance with a sibling
)

type boardNode struct {
	n    int
	leaf bool
	// keys: a leaf's members in order; an inner node's lower bounds of its
	// children (keys[i] ≤ every member under kids[i]; keys[0] unused).
	// One spare slot lets a node overflow before it splits.
	keys [boardNodeMax + 1]BoardMember
	kids [boardNodeMax + 1]*boardNode // inner nodes only
	cnts [boardNodeMax + 1]int32      // inner nodes only: size of each subtree
	next *boardNode                   // leaves only: the next leaf
}

// boardBefore reports whether a ranks before (better than) b.
func boardBefore(a, b BoardMember) bool {
	if a.Value != b.Value {
		return a.Value > b.Value
	}
	if a.User == b.User {
		return false
	}
	if a.User >= 0 && b.User >= 0 {
		// Same number of digits: numeric order is string order.
		if boardDigits(a.User) == boardDigits(b.User) {
			return a.User > b.User
		}
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

func (n *boardNode) size() int {
	if n.leaf {
		return n.n
	}
	s := 0
	for i := 0; i < n.n; i++ {
		s += int(n.cnts[i])
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

// search returns the first position in a leaf whose key is not before k.
func (n *boardNode) search(k BoardMember) int {
	lo, hi := 0, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if boardBefore(n.keys[m], k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (t *boardTree) insert(k BoardMember) {
	if t.root == nil {
		t.root = &boardNode{leaf: true}
	}
	if r := t.root.insert(k); r != nil {
		old := t.root
		t.root = &boardNode{n: 2}
		t.root.kids[0], t.root.kids[1] = old, r
		t.root.cnts[0], t.root.cnts[1] = int32(old.size()), int32(r.size())
		t.root.keys[1] = r.keys[0]
	}
	t.n++
}

// insert adds k under n and returns n's new right sibling if n split.
func (n *boardNode) insert(k BoardMember) *boardNode {
	if n.leaf {
		i := n.search(k)
		copy(n.keys[i+1:n.n+1], n.keys[i:n.n])
		n.keys[i] = k
		n.n++
	} else {
		i := n.child(k)
		n.cnts[i]++
		r := n.kids[i].insert(k)
		if r == nil {
			return nil
		}
		copy(n.kids[i+2:n.n+1], n.kids[i+1:n.n])
		copy(n.cnts[i+2:n.n+1], n.cnts[i+1:n.n])
		copy(n.keys[i+2:n.n+1], n.keys[i+1:n.n])
		n.kids[i+1], n.keys[i+1] = r, r.keys[0]
		n.cnts[i], n.cnts[i+1] = int32(n.kids[i].size()), int32(r.size())
		n.n++
	}
	if n.n <= boardNodeMax {
		return nil
	}
	// Split in halves. A right inner node's keys[0] is the separator of its
	// first child, which the parent takes as the right node's bound.
	h := n.n / 2
	r := &boardNode{leaf: n.leaf, n: n.n - h}
	copy(r.keys[:], n.keys[h:n.n])
	if n.leaf {
		r.next, n.next = n.next, r
	} else {
		copy(r.kids[:], n.kids[h:n.n])
		copy(r.cnts[:], n.cnts[h:n.n])
		clear(n.kids[h:n.n])
	}
	n.n = h
	return r
}

// remove deletes k, which must be in the tree.
func (t *boardTree) remove(k BoardMember) {
	if t.root == nil || !t.root.remove(k) {
		return
	}
	t.n--
	if !t.root.leaf && t.root.n == 1 {
		t.root = t.root.kids[0]
	}
}

func (n *boardNode) remove(k BoardMember) bool {
	if n.leaf {
		i := n.search(k)
		if i == n.n || n.keys[i] != k {
			return false
		}
		copy(n.keys[i:n.n-1], n.keys[i+1:n.n])
		n.n--
		return true
	}
	i := n.child(k)
	if !n.kids[i].remove(k) {
		return false
	}
	n.cnts[i]--
	if n.kids[i].n < boardNodeMin && n.n > 1 {
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
	l, r := n.kids[i], n.kids[i+1]
	total := l.n + r.n
	if l.leaf {
		var all [2*boardNodeMax + 2]BoardMember
		copy(all[:], l.keys[:l.n])
		copy(all[l.n:], r.keys[:r.n])
		if total <= boardNodeMax {
			copy(l.keys[:], all[:total])
			l.n, l.next = total, r.next
			n.dropChild(i + 1)
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
	var keys [2*boardNodeMax + 2]BoardMember
	var kids [2*boardNodeMax + 2]*boardNode
	var cnts [2*boardNodeMax + 2]int32
	copy(keys[:], l.keys[:l.n])
	copy(kids[:], l.kids[:l.n])
	copy(cnts[:], l.cnts[:l.n])
	copy(keys[l.n:], r.keys[:r.n])
	keys[l.n] = n.keys[i+1] // the bound of r's first child
	copy(kids[l.n:], r.kids[:r.n])
	copy(cnts[l.n:], r.cnts[:r.n])
	if total <= boardNodeMax {
		copy(l.keys[:], keys[:total])
		copy(l.kids[:], kids[:total])
		copy(l.cnts[:], cnts[:total])
		l.n = total
		n.dropChild(i + 1)
		n.cnts[i] = int32(l.size())
		return
	}
	h := total / 2
	clear(l.kids[:])
	clear(r.kids[:])
	copy(l.keys[:], keys[:h])
	copy(l.kids[:], kids[:h])
	copy(l.cnts[:], cnts[:h])
	copy(r.keys[:], keys[h:total])
	copy(r.kids[:], kids[h:total])
	copy(r.cnts[:], cnts[h:total])
	l.n, r.n = h, total-h
	n.keys[i+1] = keys[h]
	n.cnts[i], n.cnts[i+1] = int32(l.size()), int32(r.size())
}

func (n *boardNode) dropChild(i int) {
	copy(n.kids[i:n.n-1], n.kids[i+1:n.n])
	copy(n.cnts[i:n.n-1], n.cnts[i+1:n.n])
	copy(n.keys[i:n.n-1], n.keys[i+1:n.n])
	n.n--
	n.kids[n.n] = nil
}

// rank returns the 0-based rank of k, which must be in the tree.
func (t *boardTree) rank(k BoardMember) int64 {
	var r int64
	n := t.root
	for n != nil && !n.leaf {
		i := n.child(k)
		for j := 0; j < i; j++ {
			r += int64(n.cnts[j])
		}
		n = n.kids[i]
	}
	if n == nil {
		return -1
	}
	return r + int64(n.search(k))
}

// seek returns the leaf and position of the member at 0-based rank r, or nil
// when r is out of range.
func (t *boardTree) seek(r int64) (*boardNode, int) {
	if r < 0 || r >= int64(t.n) {
		return nil, 0
	}
	n := t.root
	for !n.leaf {
		i := 0
		for ; i < n.n-1 && r >= int64(n.cnts[i]); i++ {
			r -= int64(n.cnts[i])
		}
		n = n.kids[i]
	}
	return n, int(r)
}

// appendRange appends the members at 0-based ranks start..stop inclusive.
func (t *boardTree) appendRange(dst []BoardMember, start, stop int64) []BoardMember {
	if stop >= int64(t.n) {
		stop = int64(t.n) - 1
	}
	n, i := t.seek(start)
	for left := stop - start + 1; n != nil && left > 0; n, i = n.next, 0 {
		take := min(int64(n.n-i), left)
		dst = append(dst, n.keys[i:i+int(take)]...)
		left -= take
	}
	return dst
}
