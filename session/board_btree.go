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

// boardLeaf holds members in order, values and users in separate arrays so a
// search touches few cache lines. One spare slot lets it overflow before it
// splits.
type boardLeaf struct {
	n     int
	vals  [boardNodeMax + 1]float64 // searched first: 8 bytes a member
	users [boardNodeMax + 1]int64
	next  *boardLeaf
}

// boardNode is an inner node. (vals[i], users[i]) is a lower bound of the
// members under child i (unused by routing for i = 0); cnts[i] is the number of members
// under child i. The children are leaves (low) or inner nodes; the other
// array stays nil, and code that moves children moves both.
type boardNode struct {
	n      int
	low    bool
	vals   [boardNodeMax + 1]float64
	users  [boardNodeMax + 1]int64
	cnts   [boardNodeMax + 1]int32
	kids   [boardNodeMax + 1]*boardNode
	leaves [boardNodeMax + 1]*boardLeaf
}

// boardBefore reports whether a ranks before (better than) b.
func boardBefore(a, b BoardMember) bool {
	if a.Value != b.Value {
		return a.Value > b.Value
	}
	return boardUserBefore(a.User, b.User)
}

// boardUserBefore orders users of equal value: decimal string descending.
func boardUserBefore(a, b int64) bool {
	if a == b {
		return false
	}
	if a >= 0 && b >= 0 && boardDigits(a) == boardDigits(b) {
		return a > b // same number of digits: numeric order is string order
	}
	var x, y [20]byte
	return bytes.Compare(strconv.AppendInt(x[:0], a, 10), strconv.AppendInt(y[:0], b, 10)) > 0
}

// at returns the bound of child i.
func (n *boardNode) at(i int) BoardMember { return BoardMember{User: n.users[i], Value: n.vals[i]} }

// at returns member i.
func (l *boardLeaf) at(i int) BoardMember { return BoardMember{User: l.users[i], Value: l.vals[i]} }

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
	lo, hi := 1, n.n // first i ≥ 1 with k before bound i; the child is i-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v := n.vals[m]; k.Value > v || k.Value == v && boardUserBefore(k.User, n.users[m]) {
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
		if v := l.vals[m]; v > k.Value || v == k.Value && boardUserBefore(l.users[m], k.User) {
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
		t.root.vals[1], t.root.users[1] = r.vals[0], r.users[0]
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
		sep, left, rcnt = rl.at(0), int32(l.n), int32(rl.n)
	} else {
		if rk = n.kids[i].insert(k); rk == nil {
			return nil
		}
		sep, left, rcnt = rk.at(0), n.kids[i].size(), rk.size()
	}
	n.open(i + 1)
	n.kids[i+1], n.leaves[i+1], n.vals[i+1], n.users[i+1] = rk, rl, sep.Value, sep.User
	n.cnts[i], n.cnts[i+1] = left, rcnt
	if n.n <= boardNodeMax {
		return nil
	}
	// Split in halves. The right node's bound 0 is the bound of its first
	// child, which the parent takes as the right node's bound.
	h := n.n / 2
	r := &boardNode{low: n.low, n: n.n - h}
	copy(r.vals[:], n.vals[h:n.n])
	copy(r.users[:], n.users[h:n.n])
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
	copy(n.vals[i+1:n.n+1], n.vals[i:n.n])
	copy(n.users[i+1:n.n+1], n.users[i:n.n])
	copy(n.cnts[i+1:n.n+1], n.cnts[i:n.n])
	copy(n.kids[i+1:n.n+1], n.kids[i:n.n])
	copy(n.leaves[i+1:n.n+1], n.leaves[i:n.n])
	n.n++
}

// drop removes child i.
func (n *boardNode) drop(i int) {
	copy(n.vals[i:n.n-1], n.vals[i+1:n.n])
	copy(n.users[i:n.n-1], n.users[i+1:n.n])
	copy(n.cnts[i:n.n-1], n.cnts[i+1:n.n])
	copy(n.kids[i:n.n-1], n.kids[i+1:n.n])
	copy(n.leaves[i:n.n-1], n.leaves[i+1:n.n])
	n.n--
	n.kids[n.n], n.leaves[n.n] = nil, nil
}

// insert adds k to the leaf and returns its new right sibling if it split.
func (l *boardLeaf) insert(k BoardMember) *boardLeaf {
	i := l.search(k)
	copy(l.vals[i+1:l.n+1], l.vals[i:l.n])
	copy(l.users[i+1:l.n+1], l.users[i:l.n])
	l.vals[i], l.users[i] = k.Value, k.User
	l.n++
	if l.n <= boardNodeMax {
		return nil
	}
	h := l.n / 2
	r := &boardLeaf{n: l.n - h, next: l.next}
	copy(r.vals[:], l.vals[h:l.n])
	copy(r.users[:], l.users[h:l.n])
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
		if j == l.n || l.at(j) != k {
			return false
		}
		copy(l.vals[j:l.n-1], l.vals[j+1:l.n])
		copy(l.users[j:l.n-1], l.users[j+1:l.n])
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
		var vals [2*boardNodeMax + 2]float64
		var users [2*boardNodeMax + 2]int64
		copy(vals[:], l.vals[:l.n])
		copy(vals[l.n:], r.vals[:r.n])
		copy(users[:], l.users[:l.n])
		copy(users[l.n:], r.users[:r.n])
		if total <= boardNodeMax {
			copy(l.vals[:], vals[:total])
			copy(l.users[:], users[:total])
			l.n, l.next = total, r.next
			n.drop(i + 1)
			n.cnts[i] = int32(total)
			return
		}
		h := total / 2
		copy(l.vals[:], vals[:h])
		copy(l.users[:], users[:h])
		copy(r.vals[:], vals[h:total])
		copy(r.users[:], users[h:total])
		l.n, r.n = h, total-h
		n.vals[i+1], n.users[i+1] = r.vals[0], r.users[0]
		n.cnts[i], n.cnts[i+1] = int32(l.n), int32(r.n)
		return
	}
	l, r := n.kids[i], n.kids[i+1]
	total := l.n + r.n
	var (
		vals   [2*boardNodeMax + 2]float64
		users  [2*boardNodeMax + 2]int64
		cnts   [2*boardNodeMax + 2]int32
		kids   [2*boardNodeMax + 2]*boardNode
		leaves [2*boardNodeMax + 2]*boardLeaf
	)
	copy(vals[:], l.vals[:l.n])
	copy(users[:], l.users[:l.n])
	copy(cnts[:], l.cnts[:l.n])
	copy(kids[:], l.kids[:l.n])
	copy(leaves[:], l.leaves[:l.n])
	copy(vals[l.n:], r.vals[:r.n])
	copy(users[l.n:], r.users[:r.n])
	vals[l.n], users[l.n] = n.vals[i+1], n.users[i+1] // the bound of r's first child
	copy(cnts[l.n:], r.cnts[:r.n])
	copy(kids[l.n:], r.kids[:r.n])
	copy(leaves[l.n:], r.leaves[:r.n])
	h := total
	if total > boardNodeMax {
		h = total / 2
	}
	*l = boardNode{n: h, low: l.low}
	copy(l.vals[:], vals[:h])
	copy(l.users[:], users[:h])
	copy(l.cnts[:], cnts[:h])
	copy(l.kids[:], kids[:h])
	copy(l.leaves[:], leaves[:h])
	if h == total {
		n.drop(i + 1)
		n.cnts[i] = l.size()
		return
	}
	*r = boardNode{n: total - h, low: r.low}
	copy(r.vals[:], vals[h:total])
	copy(r.users[:], users[h:total])
	copy(r.cnts[:], cnts[h:total])
	copy(r.kids[:], kids[h:total])
	copy(r.leaves[:], leaves[h:total])
	n.vals[i+1], n.users[i+1] = vals[h], users[h]
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
		take := min(l.n-i, int(left))
		for j := i; j < i+take; j++ {
			dst = append(dst, l.at(j))
		}
		left -= int64(take)
	}
	return dst
}
