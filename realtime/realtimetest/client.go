package realtimetest

import (
	"context"

	"github.com/madang-io/madang/realtime"
)

// The websocket client lives in package realtime (realtime.Dial), so bots,
// load tools and integration tests use it outside _test code. These names
// stay for the tests written against them.

// DialOptions is realtime.DialOptions.
type DialOptions = realtime.DialOptions

// Client is realtime.Client.
type Client = realtime.Client

// HandshakeError is realtime.HandshakeError.
type HandshakeError = realtime.HandshakeError

// Subscribed is realtime.Subscribed.
type Subscribed = realtime.Subscribed

// Dial is realtime.Dial.
func Dial(ctx context.Context, rawURL, token string, opts *DialOptions) (*Client, error) {
	return realtime.Dial(ctx, rawURL, token, opts)
}

// RoomJoined is realtime.RoomJoined.
type RoomJoined = realtime.RoomJoined

// RoomSnapshot is realtime.RoomSnapshot.
type RoomSnapshot = realtime.RoomSnapshot
