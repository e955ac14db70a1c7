package realtime

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The subscriber set against a plain list: the same members after random
// adds and removes; a snapshot taken before a change is not changed by it;
// a set that emptied out gives its memory back.
func TestSubSet(t *testing.T) {
	s := &chanShard{chans: map[string]*subSet{"ch": {}}}
	set := s.chans["ch"]
	var want []*sub
	rng := rand.New(rand.NewPCG(1, 2))
	var snap, snapWant []*sub
	for i := range 20000 {
		if len(want) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(want))
			if !set.remove(want[j]) {
				t.Fatalf("step %d: member not removed", i)
			}
			if set.remove(want[j]) {
				t.Fatalf("step %d: removed twice", i)
			}
			want = slices.Delete(want, j, j+1)
		} else {
			sb := &sub{}
			set.add(sb)
			want = append(want, sb)
		}
		if i%97 == 0 {
			if snap != nil && !slices.Equal(snap, snapWant) {
				t.Fatalf("step %d: an old snapshot changed", i)
			}
			snap = s.subscribers("ch")
			snapWant = slices.Clone(snap)
			if !sameMembers(snap, want) {
				t.Fatalf("step %d: snapshot has %d members, want %d", i, len(snap), len(want))
			}
		}
	}
	if !sameMembers(set.members, want) {
		t.Fatalf("set has %d members, want %d", len(set.members), len(want))
	}
	for _, sb := range want {
		set.remove(sb)
	}
	if len(set.members) != 0 || cap(set.members) > 64 {
		t.Fatalf("emptied set: len %d cap %d", len(set.members), cap(set.members))
	}
	if set.remove(&sub{}) {
		t.Fatal("removed a sub that was never added")
	}
}

func sameMembers(a, b []*sub) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[*sub]bool, len(a))
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}
