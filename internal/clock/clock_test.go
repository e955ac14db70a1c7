package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	if !f.Now().Equal(start) {
		t.Fatal("start")
	}
	if got := f.Advance(90 * time.Second); !got.Equal(start.Add(90*time.Second)) || !f.Now().Equal(got) {
		t.Fatalf("advance: %v", got)
	}
	f.Set(start)
	if !f.Now().Equal(start) {
		t.Fatal("set")
	}
	if Or(nil) != Real || Or(f) != f {
		t.Fatal("Or")
	}
	if d := time.Since(Real.Now()); d < 0 || d > time.Minute {
		t.Fatalf("real clock off by %v", d)
	}
}

func TestOrNow(t *testing.T) {
	if d := time.Since(OrNow(nil)()); d < 0 || d > time.Minute {
		t.Fatalf("OrNow(nil) off by %v", d)
	}
	f := NewFake(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	if got := OrNow(f.Now)(); !got.Equal(f.Now()) {
		t.Fatalf("OrNow(f.Now) = %v", got)
	}
}
