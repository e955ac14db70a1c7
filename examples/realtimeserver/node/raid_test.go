package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
)

// The raid demo: one player creates a raid, another joins it, both hit the
// boss, the ticks push snapshots with the HP going down to the end of the
// raid; bad kinds and params are refused with bad_request.
func TestRaidRoomDemo(t *testing.T) {
	n, err := New(context.Background(), Config{Dev: true, NodeID: "raid-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := startNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + base[len("http"):] + "/ws"
	a, err := realtime.Dial(ctx, wsURL, devLogin(t, base, 2001, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := realtime.Dial(ctx, wsURL, devLogin(t, base, 2002, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	for _, bad := range []struct {
		kind   string
		params any
	}{{"pvp", nil}, {RaidKind, map[string]int{"hp": -1}}, {RaidKind, map[string]int{"hp": RaidMaxHP + 1}}, {RaidKind, "not an object"}} {
		_, err := a.RoomCreate(ctx, bad.kind, bad.params)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
			t.Fatalf("room.create %q %v: %v, want bad_request", bad.kind, bad.params, err)
		}
	}

	room, err := a.RoomCreate(ctx, RaidKind, map[string]int{"hp": 150})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RoomJoin(ctx, room.Room); err != nil {
		t.Fatal(err)
	}
	if err := a.RoomInput(ctx, room.Room, map[string]int{"damage": 100}); err != nil {
		t.Fatal(err)
	}
	if err := b.RoomInput(ctx, room.Room, map[string]int{"damage": 60}); err != nil {
		t.Fatal(err)
	}
	// b sees the HP fall from 150 and the raid end when the boss is down.
	lowest := 150
	for {
		payload, err := b.NextTopic(ctx, "room.snapshot")
		if err != nil {
			t.Fatalf("snapshots until the end: lowest hp %d: %v", lowest, err)
		}
		var snap struct {
			State struct {
				HP int `json:"hp"`
			} `json:"state"`
		}
		if err := json.Unmarshal(payload, &snap); err != nil {
			t.Fatalf("snapshot %s: %v", payload, err)
		}
		lowest = min(lowest, snap.State.HP)
		if lowest <= 0 {
			break
		}
	}
	if _, err := b.NextTopic(ctx, "room.end"); err != nil {
		t.Fatalf("room.end: %v", err)
	}
}
