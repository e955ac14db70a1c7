package realtime

import (
	"context"
	"encoding/json"
)

// RoomJoined is the reply to room.create and room.join (Client.RoomCreate,
// Client.RoomJoin).
type RoomJoined struct {
	// Room is the room's id.
	Room string `json:"room"`
	// Rejoined is true when the player was still a member (it came back
	// within the grace period).
	Rejoined bool `json:"rejoined"`
	// Snapshot is the room's latest snapshot (null before its first tick).
	Snapshot json.RawMessage `json:"snapshot"`
}

// RoomSnapshot is the payload of a room.snapshot push
// (TopicRoomSnapshot), as a Client decodes it.
type RoomSnapshot struct {
	Room  string          `json:"room"`
	Tick  uint64          `json:"tick"`
	State json.RawMessage `json:"state"`
}

// RoomCreate creates a room of kind (params marshalled; nil for none) on
// the connection's node and joins it. A non-OK reply is a *protocol.Error.
func (c *Client) RoomCreate(ctx context.Context, kind string, params any) (RoomJoined, error) {
	in := map[string]any{"kind": kind}
	if params != nil {
		in["params"] = params
	}
	return c.roomJoined(ctx, CmdRoomCreate, in)
}

// RoomJoin joins (or rejoins) a room.
func (c *Client) RoomJoin(ctx context.Context, room string) (RoomJoined, error) {
	return c.roomJoined(ctx, CmdRoomJoin, map[string]string{"room": room})
}

func (c *Client) roomJoined(ctx context.Context, cmd string, in any) (RoomJoined, error) {
	r, err := c.callOK(ctx, cmd, in)
	if err != nil {
		return RoomJoined{}, err
	}
	var out RoomJoined
	err = json.Unmarshal(r.Payload, &out)
	return out, err
}

// RoomInput queues an input (marshalled) for the room's next tick.
func (c *Client) RoomInput(ctx context.Context, room string, input any) error {
	_, err := c.callOK(ctx, CmdRoomInput, map[string]any{"room": room, "input": input})
	return err
}

// RoomLeave leaves a room.
func (c *Client) RoomLeave(ctx context.Context, room string) error {
	_, err := c.callOK(ctx, CmdRoomLeave, map[string]string{"room": room})
	return err
}

// RoomMatch asks for a match of kind. It returns the room when this player
// completed a group, or "" when it is queued (a room.matched push follows).
func (c *Client) RoomMatch(ctx context.Context, kind string) (string, error) {
	r, err := c.callOK(ctx, CmdRoomMatch, map[string]string{"kind": kind})
	if err != nil {
		return "", err
	}
	var out struct {
		Room string `json:"room"`
	}
	err = json.Unmarshal(r.Payload, &out)
	return out.Room, err
}

// NextTopic returns the next push with topic, skipping others.
// Its payload is returned.
func (c *Client) NextTopic(ctx context.Context, topic string) (json.RawMessage, error) {
	for {
		p, err := c.Next(ctx)
		if err != nil {
			return nil, err
		}
		if p.Topic == topic {
			return p.Payload, nil
		}
	}
}
