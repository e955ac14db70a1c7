// Package protocol is madang's wire format and request pipeline: what every
// other package and both transports (HTTP and websocket) share.
//
// # Frames
//
// A message travels as a binary frame: a version byte, a flag byte, a
// big-endian body length, optional header fields, then the body (see
// docs/PROTOCOL.md for every byte). The body is a JSON envelope that is:
//
//   - LZ4-compressed (raw block format) when it is at least
//     Config.CompressThreshold bytes (150 by default) and compression makes the
//     frame smaller;
//   - then either XORed with a shared key (ModeXOR — obfuscation against casual
//     inspection, not security), or sealed with AES-256-GCM (ModeAuthenticated)
//     using keys derived by HKDF-SHA256 from a per-session secret.
//
// Client frames in authenticated mode carry the session's key id and a 64-bit
// counter in the clear; the nonce is built from the counter and the header is
// the additional data, so a frame cannot be altered, cut short or moved to
// another session. A CounterGuard (the session store in a real server, a
// Keyring in tests) accepts each counter at most once, in a ReplayWindow
// (above the highest accepted, or less than ReplayWindowSize below it and
// not seen before), so a captured frame cannot be replayed. Server frames
// use random nonces.
//
// Decoding never trusts a length before checking it: frame size and declared
// decompressed size are limited (Config.MaxFrameSize, Config.MaxBodySize,
// and the much lower Config.MaxUnauthenticatedBodySize for plain and XOR
// client frames, which anyone can send) before anything is allocated, and an
// authenticated frame's AEAD is opened before its body is decompressed.
// AppendEncode and AppendDecode write into the caller's buffers and do not
// allocate in steady state.
//
// A DecodeBudget bounds what decoding takes in total: the bytes of decoded
// bodies that all requests and websocket frames of a process hold at once
// (Codec.AppendDecodeBudget charges a body before allocating it; the
// HTTPHandler and the realtime hub hold the charge until the request is
// answered). Give one budget to every transport of the process
// (HTTPConfig.DecodeBudget and the hub's Config.DecodeBudget).
//
// # Envelope and result codes
//
// A Request carries the command, a sequence number, a request id that stays
// the same across retries (for idempotency), the client's raw clock, the
// session token and a JSON payload. A Response carries the sequence number,
// request id, a result Code from one stable table, a message, the server's
// clock (on every response) and the payload. A Push is a server-initiated
// message for realtime.
//
// # Handlers
//
// A Handler serves one decoded Request; Middleware wraps handlers
// (authentication fills Request.Principal, then anti-cheat, idempotency, ...);
// a Mux routes by command; Typed adapts typed functions. Dispatch runs a
// handler the way every transport must: panics recovered, errors mapped to
// codes without leaking internals. HTTPHandler serves the chain over HTTP POST;
// the realtime package runs the same chain for websocket commands.
//
// # Client
//
// Client is a Go client for tests, bots and the load tool: it numbers
// requests, re-sends a request whose reply was lost with the same request id
// (sealed again with a new counter), and estimates the server clock offset
// while always sending its raw clock. Call and Do give each call a fresh
// request id (NewRequestID); CallWith and DoWith take one from the caller
// (CallOptions.RequestID), for a request that must keep its id beyond the
// Client's own retries: a purchase re-sent after the app restarted is then
// answered from the stored result. The realtime package's websocket client
// takes the same CallOptions.
//
// The frame counter belongs to the session keys, not to a connection: a
// FrameCounter hands out a session's counters, and every connection that
// seals frames with the same keys (the Client's HTTP requests, a websocket
// of the realtime binding) takes them from the same one (Client.Counter,
// Client.SetSessionCounter), so no counter, and so no AES-GCM nonce, is used
// twice. The server accepts a counter that arrives after higher ones of the
// same session up to ReplayWindowSize below the highest (docs/PROTOCOL.md
// §7.4, §16.1).
package protocol
