package realtime

import (
	"fmt"
	"testing"
	"time"
)

// The owner cache forgets entries after its TTL, holds at most its size,
// drops an entry only while it names the node that failed, and caches
// nothing with a negative TTL.
func TestOwnerCache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := newOwnerCache(time.Second, 3, func() time.Time { return now })
	c.put("r1", "n1")
	if n, ok := c.get("r1"); !ok || n != "n1" {
		t.Fatalf("get = %q, %v", n, ok)
	}
	now = now.Add(999 * time.Millisecond)
	if _, ok := c.get("r1"); !ok {
		t.Fatal("forgotten before its TTL")
	}
	now = now.Add(time.Millisecond)
	if n, ok := c.get("r1"); ok {
		t.Fatalf("still cached after its TTL: %q", n)
	}

	c.put("r1", "n1")
	c.drop("r1", "n2") // a failure of another node: kept
	if _, ok := c.get("r1"); !ok {
		t.Fatal("dropped for another node's failure")
	}
	c.drop("r1", "n1")
	if _, ok := c.get("r1"); ok {
		t.Fatal("kept after its node's failure")
	}

	for i := range 10 {
		c.put(fmt.Sprint("room", i), "n1")
		if c.size() > 3 {
			t.Fatalf("%d entries, bound 3", c.size())
		}
	}
	if _, ok := c.get("room9"); !ok {
		t.Fatal("the newest entry was evicted")
	}
	c.forget("room9")
	if _, ok := c.get("room9"); ok {
		t.Fatal("kept after forget")
	}

	off := newOwnerCache(-1, 3, time.Now)
	off.put("r", "n")
	if _, ok := off.get("r"); ok || off.size() != 0 {
		t.Fatal("a negative TTL cached")
	}
}
