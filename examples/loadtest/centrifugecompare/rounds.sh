#!/bin/sh
# Side-by-side rounds of issue 17's realtime measurement (BENCHMARKS.md "realtime vs
# centrifuge side by side"): madang's examples/realtimeserver against the centrifuge server
# of this directory, interleaved, 3 rounds. Run from this directory; 127.0.0.1 only.
set -e
T=${TMPDIR:-/tmp}/centrifugecompare
mkdir -p "$T"
go build -o "$T/load" ./load
go build -o "$T/cfserver" .
(cd ../../.. && go build -o "$T/madang" ./examples/realtimeserver)
for r in 1 2 3; do
  for cfg in "-conns 5000 -shared -pubs 60 -rate 20" "-conns 1000 -shared -pubs 200 -rate 50" "-conns 5000 -shared=false"; do
    for s in madang centrifuge; do
      case $s in
        madang) a="-server madang -bin $T/madang";;
        centrifuge) a="-server centrifuge -bin $T/cfserver";;
      esac
      echo "round=$r server=$s $(date -u +%T) load=$(cut -d' ' -f1 /proc/loadavg)"
      "$T/load" $a $cfg
    done
  done
done
