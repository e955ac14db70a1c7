#!/bin/sh
# capacity.sh measures the game server's capacity on this machine with the
# load tool. The server runs as its own process (a built binary) so that its
# CPU time is read apart from the generator's (-server-pid reads
# /proc/<pid>/stat at the start and the end of each run).
#
#   examples/loadtest/capacity.sh [duration] [users...]
#
# MODE=embedded (default): SQLite in a fresh data directory, memory
# sessions. MODE=redis-mysql: sessions, cache and boards on Redis at
# $REDIS (default 127.0.0.1:6379) under a fresh key prefix, databases on
# MariaDB in a fresh database lt_cap_<random> (the server creates its game
# databases <db>_gamedb01.. beside it); the databases are dropped and the
# prefix's keys deleted at the end. The MariaDB is a private one that the
# script starts (mariadbd with default settings and max_connections 1000,
# in a temporary directory on port $MYSQL_PORT, default 13306) and stops:
# under load the game server's pools (32 connections to the common
# database, 16 to each game database) hold about 100 connections, most of
# a shared MariaDB's 151, and the run would disturb, and be disturbed by,
# its other clients. MYSQL_HOST=
# host:port uses an existing server instead (user root, no password).
#
# Defaults: 20s; the mix at 100, 300 and 600 users (0 skips them). The
# default mix pauses 1-2 s inside each dungeon run (the play), so a user
# offers only about 4 calls per second: saturating the server takes hundreds
# of users. First, side by side on the same server, the baseline: the
# cheapest command alone (-scenario time: the protocol and session path)
# with $BASE_USERS users (default 10; 0 skips it).
# Then a concurrent-users check: $PACED users (default 3000) playing the mix
# with a think time of 5-15 s (10 s on average) for $PACED_DUR (default 90s,
# with $PACED_RAMP of ramp-up, default 45s); PACED=0 skips it.
# Then, when $CHAT lists user counts (default none), chat through the game
# server's realtime hub (/ws, the same process): for each count and each
# fan-out in $CHAT_FANOUT (default "1 10 50"), -scenario chat with
# users/fan-out rooms, so each message reaches about fan-out users (1: each
# user alone in its room, only its own echo: the baseline of the fan-out).
# Each user sends a message every 600 ms at most (the hub's default chat
# limit is 2 per second). The users start over $CHAT_RAMP (default 5s): 500
# guest logins at once on the embedded SQLite time out and back off. A table of the chat runs (messages sent per second:
# rt.publish and rt.whisper calls; rt.publish and
# chat.echo p50/p99, pushes/s, server CPU) ends the output.
#   CHAT="100 500" PACED=0 examples/loadtest/capacity.sh 20s 0
# runs only the time baseline and the chat runs.
# Reports (JSON and HTML per run) go to $OUT (default a temporary directory).
set -eu
cd "$(dirname "$0")/../.."
DUR=${1:-20s}
[ $# -gt 0 ] && shift
USERS=${*:-100 300 600}
MODE=${MODE:-embedded}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BIN=$(mktemp -d)
DATA=$(mktemp -d)
PORT=${PORT:-18080}
BASE_USERS=${BASE_USERS:-10}
PACED=${PACED:-3000}
CHAT=${CHAT:-}
CHAT_FANOUT=${CHAT_FANOUT:-1 10 50}
CHAT_RAMP=${CHAT_RAMP:-5s}
PACED_DUR=${PACED_DUR:-90s}
PACED_RAMP=${PACED_RAMP:-45s}
REDIS=${REDIS:-127.0.0.1:6379}
MYSQL_PORT=${MYSQL_PORT:-13306}
PRIVATE_MYSQL=
if [ "$MODE" = redis-mysql ] && [ -z "${MYSQL_HOST:-}" ]; then
	PRIVATE_MYSQL=$(mktemp -d)
	MYSQL_HOST=127.0.0.1:$MYSQL_PORT
fi
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1:3306}
RUNID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
DB=lt_cap_$RUNID
PREFIX=ltcap$RUNID:
mysqlc() { mysql --no-defaults -uroot -h"${MYSQL_HOST%:*}" -P"${MYSQL_HOST#*:}" "$@"; }

MYSQLD_PID=
PID=
cleanup() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$BIN" "$DATA"
	if [ "$MODE" = redis-mysql ]; then
		if [ -n "$MYSQLD_PID" ]; then
			kill "$MYSQLD_PID" 2>/dev/null || true
			wait "$MYSQLD_PID" 2>/dev/null || true
			rm -rf "$PRIVATE_MYSQL"
		else
			for d in $(mysqlc -N -e "SHOW DATABASES LIKE '${DB}%'"); do mysqlc -e "DROP DATABASE \`$d\`"; done
		fi
		redis-cli -h "${REDIS%:*}" -p "${REDIS#*:}" --scan --pattern "$PREFIX*" | \
			xargs -r -n 500 redis-cli -h "${REDIS%:*}" -p "${REDIS#*:}" del >/dev/null
	fi
}
trap cleanup EXIT
go build -o "$BIN/gameserver" ./examples/gameserver
go build -o "$BIN/loadtest" ./examples/loadtest
case $MODE in
embedded) set -- -data "$DATA" ;;
redis-mysql)
	if [ -n "$PRIVATE_MYSQL" ]; then
		mkdir -p "$PRIVATE_MYSQL/tmp" # its own: two instances sharing /tmp deleted each other's temporary tables
		mariadb-install-db --no-defaults --datadir="$PRIVATE_MYSQL/data" --tmpdir="$PRIVATE_MYSQL/tmp" --user=root \
			--auth-root-authentication-method=normal --skip-test-db >"$OUT/mariadb-install.log" 2>&1
		mariadbd --no-defaults --datadir="$PRIVATE_MYSQL/data" --tmpdir="$PRIVATE_MYSQL/tmp" --user=root --bind-address=127.0.0.1 \
			--port="$MYSQL_PORT" --socket="$PRIVATE_MYSQL/sock" --pid-file="$PRIVATE_MYSQL/pid" \
			--max-connections=1000 --skip-log-bin >"$OUT/mariadb.log" 2>&1 &
		MYSQLD_PID=$!
		for i in $(seq 100); do mysqlc -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
	fi
	mysqlc -e "CREATE DATABASE $DB"
	set -- -redis "$REDIS" -redis-prefix "$PREFIX" -mysql "root@tcp($MYSQL_HOST)/$DB" ;;
*) echo "MODE must be embedded or redis-mysql" >&2; exit 2 ;;
esac
"$BIN/gameserver" -addr 127.0.0.1:$PORT -admin-addr off -log-level warn "$@" >"$OUT/server.log" 2>&1 &
PID=$!
up=0
for i in $(seq 150); do
	if curl -sf http://127.0.0.1:$PORT/healthz >/dev/null 2>&1; then up=1; break; fi
	sleep 0.2
done
if [ $up = 0 ]; then
	echo "the server did not start:" >&2
	cat "$OUT/server.log" >&2
	exit 1
fi
echo "$MODE server pid $PID on 127.0.0.1:$PORT, reports in $OUT"
# cpu PID prints the process's CPU time (user+system) in seconds.
cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
lt() {
	name=$1
	shift
	[ -n "$MYSQLD_PID" ] && db0=$(cpu "$MYSQLD_PID")
	"$BIN/loadtest" -url http://127.0.0.1:$PORT/v1/rpc -server-pid $PID -quiet \
		-json "$OUT/$name.json" -html "$OUT/$name.html" "$@"
	if [ -n "$MYSQLD_PID" ]; then
		echo "mariadbd cpu $(awk -v a="$db0" -v b="$(cpu "$MYSQLD_PID")" 'BEGIN { printf "%.2f", b - a }')s" | tee "$OUT/$name.mariadb-cpu"
	fi
}
if [ "$BASE_USERS" -gt 0 ]; then
	echo "== time, $BASE_USERS users, $DUR"
	lt "time-$BASE_USERS" -scenario time -users "$BASE_USERS" -duration "$DUR"
fi
for u in $USERS; do
	[ "$u" = 0 ] && continue
	echo "== mix, $u users, $DUR"
	lt "mix-$u" -users "$u" -duration "$DUR"
done
if [ "$PACED" -gt 0 ]; then
	echo "== mix paced, $PACED users, think 5s-15s, $PACED_DUR"
	lt "paced-$PACED" -users "$PACED" -ramp "$PACED_RAMP" -think 5s-15s -duration "$PACED_DUR"
fi
CHATRUNS=
for u in $CHAT; do
	for f in $CHAT_FANOUT; do
		rooms=$((u / f))
		[ "$rooms" -lt 1 ] && rooms=1
		echo "== chat, $u users, $rooms rooms (fan-out $f), $DUR"
		lt "chat-$u-f$f" -scenario chat -users "$u" -chat-rooms "$rooms" -ramp "$CHAT_RAMP" -duration "$DUR"
		CHATRUNS="$CHATRUNS chat-$u-f$f"
	done
done
if [ -n "$CHATRUNS" ]; then
	echo "== chat through the hub: summary"
	printf '%-16s %6s %6s %9s %9s %9s %9s %9s %10s %9s %7s\n' run users rooms msgs/s pub-p50 pub-p99 echo-p50 echo-p99 pushes/s srv-cpu% errors
	for name in $CHATRUNS; do
		jq -r --arg name "$name" '
			def cmd(c): (.commands[] | select(.command == c));
			[$name, .users, .realtime.rooms, ([.commands[] | select(.command == "rt.publish" or .command == "rt.whisper") | .tps] | add | floor),
			 cmd("rt.publish").p50_ms, cmd("rt.publish").p99_ms, cmd("chat.echo").p50_ms, cmd("chat.echo").p99_ms,
			 (.realtime.pushes_per_s | floor), (if .server_cpu_s >= 0 then (100 * .server_cpu_s / .elapsed_s | floor) else "-" end),
			 .total.errors] | @tsv' "$OUT/$name.json" |
			awk -F'\t' '{ printf "%-16s %6s %6s %9s %9.2f %9.2f %9.2f %9.2f %10s %9s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
	done
fi
