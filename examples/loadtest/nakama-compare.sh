#!/bin/sh
# nakama-compare.sh runs issue 17's production-path comparison
# (examples/loadtest/nakamacompare): new-device logins and one
# authenticated write (shop.buy) at 16 and 64 clients, the game server on
# a private Redis + MariaDB and on its embedded SQLite, binary A and binary
# B in interleaved rounds (A B A B A B), Nakama's figures of issue 17 as
# the reference.
#
#   A=integ B=HEAD examples/loadtest/nakama-compare.sh
#   A=/tmp/before examples/loadtest/nakama-compare.sh -modes embedded -rounds 1
#
# A and B are each a git revision (built from `git archive` of it in a
# temporary directory) or an executable game server binary. A defaults to
# the working tree; B unset or empty runs A alone. Other arguments go to
# nakamacompare (-rounds, -duration, -clients, -modes, -out, -json,
# -server-args ...; -h lists them). The private mariadbd and redis-server
# and the game servers are started and stopped by nakamacompare; this
# script removes its build directory on exit.
set -eu
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# build NAME SPEC builds the game server of SPEC (empty: the working tree)
# as $TMP/NAME, or takes SPEC as a binary; LABEL says which.
build() {
	name=$1
	spec=$2
	if [ -z "$spec" ]; then
		LABEL="the working tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), with its changes"
		go build -o "$TMP/$name" ./examples/gameserver
	elif [ -f "$spec" ] && [ -x "$spec" ]; then
		LABEL="the binary $spec"
		cp "$spec" "$TMP/$name"
	elif rev=$(git rev-parse --verify -q "$spec^{commit}"); then
		LABEL="$(git log -1 --format='%h %s' "$rev" | cut -c1-72)"
		mkdir "$TMP/src-$name"
		git archive "$rev" | tar -x -C "$TMP/src-$name"
		(cd "$TMP/src-$name" && go build -o "$TMP/$name" ./examples/gameserver)
	else
		echo "$name=$spec: neither a git revision nor an executable file" >&2
		exit 2
	fi
}

# Revisions are resolved before anything is built, so that A=integ
# B=integ builds one commit twice even if the branch moves meanwhile.
resolve() {
	if [ -n "$1" ] && ! { [ -f "$1" ] && [ -x "$1" ]; }; then
		git rev-parse --verify -q "$1^{commit}" || echo "$1"
	else
		echo "$1"
	fi
}
A_SPEC=$(resolve "${A:-}")
B_SPEC=$(resolve "${B:-}")
LABEL=
build A "$A_SPEC"
set -- -a "$TMP/A" -a-label "$LABEL" "$@"
if [ -n "$B_SPEC" ]; then
	build B "$B_SPEC"
	set -- -b "$TMP/B" -b-label "$LABEL" "$@"
fi
go build -o "$TMP/nakamacompare" ./examples/loadtest/nakamacompare
"$TMP/nakamacompare" "$@"
