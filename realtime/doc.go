// Package realtime is madang's websocket hub: chat channels, server push
// (notices, live events, maintenance), presence, and tick rooms for raids and
// PvP, on one node or many, with a Go client for bots, load tools and
// integration tests.
//
// # Overview
//
// A Hub is an http.Handler that a game server mounts beside its HTTP
// endpoint (the reference servers use /ws). Messages on the wire are
// protocol frames in binary websocket messages, so the codec, compression,
// XOR and authenticated modes of HTTP apply (docs/PROTOCOL.md §16). Client
// commands other than the hub's own run through Config.Handler: the same
// protocol.Handler chain as HTTP (session → anti-cheat → idempotency →
// game handlers), so a middleware written once serves both transports.
// Server messages are protocol.Push bodies.
//
// NewHub takes the session lookups it needs (Sessions: any session.Store)
// and a Config whose zero value works; Shutdown closes every connection
// with going_away and stops the hub's goroutines. Hub.Stats counts what
// it did, for metrics.
//
// # Connecting
//
// A client connects with its session token, in the query parameter
// "token" or an "Authorization: Bearer" header, and chooses the frame mode
// with the query parameter "mode" (plain, xor or authenticated). The hub
// checks the token (Sessions.Get) before the upgrade and refuses with an
// HTTP status whose body names the result code: 401 for a missing, unknown
// or expired token, 403 for a kicked or revoked session, 429 over
// Config.MaxUserConns, 503 while shutting down. Config.RefusePlain refuses
// plain frames in production.
//
// Every connection is subscribed to its user channel. The hub closes a
// connection with a websocket status that carries a result code
// (CloseStatus, CodeOfClose): kicked or session_revoked at once when the
// session ends (Sessions.Subscribe), the session's code at its periodic
// re-check (Config.SessionRefresh), slow_consumer when its send queue is
// full, going_away at Shutdown.
//
// A command's envelope carries a sequence number, which the reply echoes,
// and a request id (rid), which reaches the handler chain as
// protocol.Request.RequestID exactly as over HTTP: the idempotency layer
// answers a request id it has seen with the stored result
// (protocol.Response.Replay). On an authenticated connection every frame's
// counter is accepted once per session, whatever connection or transport
// carried it: the hub's own commands in the session store
// (Sessions.GetFrame), the others by the chain's session.Middleware.
//
// # Channels and chat
//
// A channel's kind comes from its name (KindOf): "world.<n>" partitions of
// world chat (clients join "world" and get the first partition with room,
// Config.WorldPartitionSize), "guild.<id>" and custom channels allowed by
// Config.Authorize, a user's private "user.<userKey>", and "system" for
// server notices. Clients join with rt.subscribe, talk with rt.publish
// (push "chat", ChatPush), whisper with rt.whisper and read what they
// missed with rt.history; Config.Validate may check or rewrite each
// message.
//
// Each channel keeps a short history with offsets in an epoch
// (StreamPosition, Config.HistorySize, Config.HistoryTTL), so a client that
// reconnects subscribes with the last position it saw and gets what came
// after it, then live messages, with no gap and no duplicate; a position
// the history cannot fill is position_lost.
//
// The server pushes with Hub.Publish (a channel), Hub.PushUser (one user,
// on whatever node) and Hub.Broadcast (the system channel, filtered on the
// receiving node by client version, country, language or platform).
//
// # Rooms
//
// Rooms (NewRooms) run raids and PvP matches with a server-side tick: each
// room's state is owned by one goroutine on one node, claimed in a
// Directory (MemoryDirectory, RedisDirectory) with a lease; players on any
// node join it, their inputs and its snapshots crossing through the Broker.
// The studio writes a RoomLogic; RaidBoss is a small demo. room.match
// groups waiting players through a Matchmaker: FIFOMatchmaker (the
// default) matches the players of one node; RedisMatchmaker queues them in
// Redis (single node or Cluster) so players on every node meet, first come
// first served; a dead node's waiting players leave the queues after
// RedisMatchmakerConfig.WaitTTL. A member whose connection dropped may
// rejoin within RoomConfig.Grace; a room whose node died is lost after its
// lease.
//
// # Presence
//
// A Presence (MemoryPresence, RedisPresence) answers who is online on
// which node (Hub.Online) and how many users are in a channel
// (Hub.OnlineCount, rt.presence), from heartbeats with a TTL
// (Config.PresenceInterval), so a dead node's users drop out on their own.
// World chat partitions are filled by these counts, and Config.MaxUserConns
// counts a user's connections on every node that shares the Presence.
//
// # Scaling out
//
// Nodes share state through a Broker: publications on a channel reach
// every node subscribed to it, with the channel's history. MemoryBroker is
// a real single-node backend (the default); RedisBroker scales out over
// one Redis, Sentinel or a Cluster. Nodes that share a Broker should also
// share a Presence, a chat Limiter (session.RedisLimiter) and, with Rooms,
// a Directory and a RedisMatchmaker. A client may connect to any node: its
// subscriptions, whispers, pushes and rooms work across them. Within a
// node, channels and users are split over Config.Shards shards, and each
// publication is encoded once per node and shared by its subscribers.
//
// A push or reply to a connection with nothing queued is written by the
// goroutine delivering it, with one system call that does not wait (a
// large channel's subscribers are split among up to GOMAXPROCS
// goroutines): no writer goroutine is woken per message. What the socket
// does not take at once (a client reading slowly) is queued for a writer
// goroutine, which sends what has queued in one websocket message and
// applies Config.WriteTimeout and Config.SendQueueLen. This needs a plain
// TCP or Unix socket on a unix system; over TLS terminated by the Go
// server every frame goes through the writer goroutine.
//
// # Limits
//
// Limits are per user and survive reconnects: each user's chat messages
// and whispers are counted in Config.Limiter (Config.ChatRate,
// Config.ChatBurst; a limiter shared by the nodes makes the limit hold
// across them), and a user may hold Config.MaxUserConns connections (8 by
// default; across nodes with a shared Presence); past either the answer is
// rate_limited with a retry hint. Every frame of a connection also passes
// a per-connection rate (Config.CommandRate, Config.CommandBurst) before it
// is decoded; a client that keeps flooding is disconnected. Sizes are
// bounded by Config.ReadLimit (a websocket message), the codec's body
// limits and Config.DecodeBudget (decoded bytes in flight, shared with
// HTTP), Config.MaxMessageSize (a chat message) and Config.MaxChannels (a
// connection's subscriptions); Config.SendQueueLen bounds what waits for a
// slow client before it is disconnected. Every default is documented on
// its Config field.
//
// # The Go client
//
// Dial connects a Client to a hub: it numbers commands and matches their
// replies, splits batched messages into frames and queues pushes for
// Client.Next. Subscribe, Publish, Whisper and the Room methods wrap the
// hub's own commands; Call sends any other command through the handler
// chain with a fresh request id, and CallWith with one the caller chooses
// (protocol.CallOptions), so a purchase re-sent on a new connection after
// a lost answer keeps its id and is answered as a replay. A refused
// handshake is a *HandshakeError carrying the HTTP status and result code.
// In authenticated mode, share the session's frame counter with its HTTP
// client (DialOptions.Counters, protocol.Client.Counter).
//
// Package realtimetest has conformance suites for Broker, Presence,
// Directory and Matchmaker implementations, a fake broker that injects
// failures, and a Clock for the Now settings of the configs.
package realtime
