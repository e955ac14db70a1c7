// Package realtime is madang's websocket hub: chat channels, server push
// (notices, live events, maintenance), presence, and tick rooms for raids and
// PvP, on one node or many.
//
// Messages on the wire are protocol frames (binary websocket messages), so
// the codec, compression, XOR and authenticated modes of HTTP apply, and
// client commands run through the same protocol.Handler chain as HTTP
// requests. Server messages are protocol.Push bodies.
//
// Nodes share state through a Broker: publications on a channel reach every
// node subscribed to it, and each channel keeps a short history with
// offsets so a reconnecting client resumes without gaps it can't see. The
// memory broker is a real single-node backend; the Redis broker scales out.
// A Presence (memory or Redis) answers who is online on which node and how
// many are in a channel, from heartbeats with a TTL, so a dead node's users
// drop out on their own.
//
// Limits are per user and survive reconnects: each user's chat messages
// and whispers are counted in Config.Limiter (a session.Limiter; a
// session.RedisLimiter shared by the nodes makes the limit hold across
// them), and a user may hold Config.MaxUserConns connections on a node
// (counted across nodes with a shared Presence); past either the answer is
// rate_limited with a retry hint. Every frame of a connection also passes a
// per-connection rate (Config.CommandRate) before it is decoded.
//
// Rooms (NewRooms) run raids and PvP matches with a server-side tick: each
// room's state is owned by one goroutine on one node, claimed in a
// Directory with a lease; players on any node join it, their inputs and its
// snapshots crossing through the Broker. The studio writes a RoomLogic;
// RaidBoss is a small demo. room.match groups waiting players through a
// Matchmaker: FIFOMatchmaker (the default) matches the players of one node;
// RedisMatchmaker queues them in Redis (single node or Cluster) so players
// on every node meet, first come first served; a dead node's waiting
// players leave the queues after RedisMatchmakerConfig.WaitTTL.
package realtime
