// Package load is the engine of madang's load tool (examples/loadtest): what
// the studio in the talk did with JMeter, in Go, against madang's own
// protocol.
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
// development receipts) and Time (sys.time); Mix runs them in proportion to
// weights (DefaultMix, "login=1,load=3,..."). A scenario for another command
// is a new type added to Units. A chat scenario needs a realtime (websocket)
// client in VU beside the protocol client; it is not there yet.
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
// # Output
//
// A progress line per second (Config.Progress), the summary table
// (WriteSummary), the Report as JSON, and a self-contained HTML page with
// inline SVG charts (WriteHTML).
package load
