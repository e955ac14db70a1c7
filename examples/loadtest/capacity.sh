#!/bin/sh
# capacity.sh measures the game server's capacity on this machine with the
# load tool: the server runs as its own process (embedded SQLite, a fresh
# data directory) so that its CPU time is read apart from the generator's
# (-server-pid reads /proc/<pid>/stat at the start and the end).
#
#   examples/loadtest/capacity.sh [duration] [users...]
#
# Defaults: 20s, 10 and 50 users (0 skips these runs). For each user count it runs the cheapest
# command alone (-scenario time: the protocol and session path, the
# baseline) and then the mixed scenario, side by side, on one server.
# Then it checks a concurrent-users estimate directly: $PACED users (default
# 2000) playing the mix with a think time of 5-15 s (10 s on average, so 6
# calls per user per minute, a little more with the purchases' extra
# logins) for $PACED_DUR (default 60s, with $PACED_RAMP of ramp-up, default 30s); PACED=0 skips it.
# Reports go to $OUT (default a temporary directory).
set -eu
cd "$(dirname "$0")/../.."
DUR=${1:-20s}
[ $# -gt 0 ] && shift
USERS=${*:-10 50}
OUT=${OUT:-$(mktemp -d)}
BIN=$(mktemp -d)
DATA=$(mktemp -d)
PORT=${PORT:-18080}
PACED=${PACED:-2000}
PACED_DUR=${PACED_DUR:-60s}
PACED_RAMP=${PACED_RAMP:-30s}
go build -o "$BIN/gameserver" ./examples/gameserver
go build -o "$BIN/loadtest" ./examples/loadtest
"$BIN/gameserver" -addr 127.0.0.1:$PORT -data "$DATA" -log-level warn >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$BIN" "$DATA"' EXIT
for i in $(seq 50); do
	curl -sf http://127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break
	sleep 0.2
done
echo "server pid $PID on 127.0.0.1:$PORT, reports in $OUT"
for u in $USERS; do
	[ "$u" = 0 ] && continue
	for sc in time mix; do
		echo "== $sc, $u users, $DUR"
		"$BIN/loadtest" -url http://127.0.0.1:$PORT/v1/rpc -server-pid $PID -quiet \
			-scenario $sc -users "$u" -duration "$DUR" \
			-json "$OUT/$sc-$u.json" -html "$OUT/$sc-$u.html"
	done
done
if [ "$PACED" -gt 0 ]; then
	echo "== mix paced, $PACED users, think 5s-15s, $PACED_DUR"
	"$BIN/loadtest" -url http://127.0.0.1:$PORT/v1/rpc -server-pid $PID -quiet \
		-users "$PACED" -ramp "$PACED_RAMP" -think 5s-15s -duration "$PACED_DUR" \
		-json "$OUT/paced-$PACED.json" -html "$OUT/paced-$PACED.html"
fi
