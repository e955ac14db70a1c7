#!/bin/sh
# Side-by-side rounds of issue 17's realtime measurement (BENCHMARKS.md "realtime vs
# centrifuge side by side"): madang's examples/realtimeserver against the centrifuge server
# of this directory, interleaved. Run from this directory; 127.0.0.1 only.
#
# Environment (all optional):
#   BASE=<git revision>  also run madang built at that revision ("madang-base"), in turn
#                        with this checkout's, for a before/after in the same rounds
#   ROUNDS=3             how many rounds
#   CONFIGS              the load configurations, separated by ";" (default: the three below)
set -e
T=${TMPDIR:-/tmp}/centrifugecompare
mkdir -p "$T"
go build -o "$T/load" ./load
go build -o "$T/cfserver" .
(cd ../../.. && go build -o "$T/madang" ./examples/realtimeserver)
servers="madang centrifuge"
if [ -n "$BASE" ]; then
  rm -rf "$T/base-src"
  mkdir -p "$T/base-src"
  (cd ../../.. && git archive "$BASE") | tar -x -C "$T/base-src"
  (cd "$T/base-src" && go build -o "$T/madang-base" ./examples/realtimeserver)
  servers="madang-base madang centrifuge"
fi
CONFIGS=${CONFIGS:-"-conns 5000 -shared -pubs 60 -rate 20;-conns 1000 -shared -pubs 200 -rate 50;-conns 5000 -shared=false"}
r=1
while [ "$r" -le "${ROUNDS:-3}" ]; do
  echo "$CONFIGS" | tr ';' '\n' | while read -r cfg; do
    for s in $servers; do
      case $s in
        madang-base) a="-server madang -bin $T/madang-base";;
        madang) a="-server madang -bin $T/madang";;
        centrifuge) a="-server centrifuge -bin $T/cfserver";;
      esac
      echo "round=$r server=$s $(date -u +%T) load=$(cut -d' ' -f1 /proc/loadavg)"
      # shellcheck disable=SC2086
      "$T/load" $a $cfg
    done
  done
  r=$((r + 1))
done
