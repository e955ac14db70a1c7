// Package load is the engine of madang's load tool (examples/loadtest): what
// the studio in the talk did with JMeter, in Go, against madang's own
// protocol and its realtime (websocket) binding.
//
// # Runs
//
// Run starts Config.Users virtual users (goroutines), spread over
// Config.RampUp. Each one logs in as a guest with a device id of its own
// (auth.guest), switches to authenticated frames with the session's keys
// (or stays on XOR frames), then runs Config.Scenario again and again with
// a think time drawn from [ThinkMin, ThinkMax] after each iteration. The run
// ends after Config.Duration or Config.Iterations iterations over all users,
// whichever comes first; both always apply (defaults 30 s and one million)
// and are capped (MaxDuration, MaxIterations). Calls in flight at the end
// complete and count; calls cut short by the caller's context do not. The
// target must be loopback unless Config.AllowRemote.
//
// # Scenarios
//
// A Scenario is a name and one iteration's steps, each a command sent with
// VU.Call (or VU.CallCheck, which also checks the answer), which records
// it. The unit scenarios are Login (auth.guest), Load (player.load), Mail
// (mail.list, mail.claim_all), Dungeon (dungeon.start, a pause for the play,
// dungeon.finish with a report the anti-cheat rules accept), Rank (rank.top,
// rank.me, rank.around), Purchase (shop.buy), IAP (shop.buy_iap with
// development receipts), Time (sys.time) and Chat (below), and the two of
// the production-path comparison (examples/loadtest/nakamacompare):
// LoginNew (auth.guest with a new device every iteration) and Write (one
// shop.buy per iteration, a new guest when the gems run out); Mix runs them in
// proportion to weights (DefaultMix, "login=1,load=3,...", or
// "login=1,chat=3"). A scenario for another command is a new type added to
// Units.
//
// # Chat: the realtime server
//
// Chat drives the realtime hub with the Go websocket client (realtime.Dial)
// beside the protocol client: each user keeps one
// websocket connection to Config.WSURL — by default the game server's own
// hub (DefaultWSPath on URL's host, the same process and sessions) —
// made on its first chat iteration with its game session's token, made
// again after the server closed it or the user logged in again, and closed
// when the user ends. It joins one of Config.ChatRooms rooms (world chat
// partitions "world.<n>", which the hub lets any player join and talk in
// without Config.Authorize; guild and custom channels need the server's
// Authorize), so a message reaches about Users/ChatRooms users: the
// fan-out is bounded by the room size (DefaultChatRoomSize by default).
// Each iteration publishes one message (rt.publish) and times its way back
// as a push (chat.echo, CmdChatEcho), or every few iterations whispers to
// another user (rt.whisper); a user sends at most one message per
// Chat.Interval, under the hub's chat rate limit. Every push is read as it
// arrives and counted: Report.Realtime has the pushes received per second
// (the fan-out) and the delivery latency of every chat message and whisper.
//
// A realtime server (examples/realtimeserver) in Redis mode on the game
// server's Redis and key prefix accepts the game's session tokens: point
// Config.WSURL at it. One in memory mode knows no game session: set
// Config.WSDevLogin, and each user takes a token for its user key from the
// node's development login (GET /dev/login, dev mode only). The websocket
// frames are protected as the HTTP requests are (Config.Mode): in auth
// mode sealed with the session's keys, their counters taken from the same
// counter as the user's HTTP requests (with WSDevLogin, the development
// session's keys and a counter of its own); in xor mode XORed.
//
// # What is measured
//
// Per command: calls, errors by result code (ErrorKind), replays, and the
// latency from the first send to the final answer (retries included) in a
// Histogram: log buckets with 128 linear sub-buckets (values within 0.8 %),
// giving p50, p95, p99 and the exact max. Per second: calls, errors, p50,
// p99 and max, and each command's calls and p99. Optionally the server's resident memory, CPU and goroutines
// from its Prometheus endpoint (Config.MetricsURL), and its CPU time from
// /proc (Config.ServerPID), apart from the generator's own (rusage).
//
// The Chat scenario's connections, subscriptions and message echoes are
// recorded as commands too (ws.connect, rt.subscribe, rt.publish,
// rt.whisper, chat.echo), so they appear, and count, among the calls; the
// pushes received are not calls (Report.Realtime, Point.Pushes).
//
// # Output
//
// A progress line per second (Config.Progress), the summary table
// (WriteSummary), the Report as JSON, and a self-contained HTML page with
// inline SVG charts (WriteHTML).
package load
