#!/usr/bin/env bash
# Cluster benchmark (issue 12, item 9), Debian's ctdbd and ours side by side on
# the same 3-node layout (scripts/cluster.sh), one after the other:
#   start      from starting 3 nodes until every node is in normal mode with
#              all three OK and one generation
#   recovery   RECORDS volatile records (default 100000) written into the
#              three nodes' copies of one database (a third each, dmaster =
#              the node holding it), then `ctdb recover`: the daemon's own
#              figure (`ctdb uptime`: "Duration of last recovery/failover"),
#              the leader's log (Samba's "Starting do_recovery" to "Recovery
#              complete"), the wall time of `ctdb recover`, the time until every node
#              is back in normal mode with a new generation
#   failover   SIGKILL of a non-leader until the two others are in normal mode
#              with a new generation and the dead node DISCONNECTED, and the
#              daemon's own figure for that recovery
#   peak RSS   VmHWM of each node's daemon (and of all its processes: Debian
#              runs a recovery daemon and an event daemon beside it), read
#              before the SIGKILL (after the recovery)
#   catdb      last, on the leader of the two survivors: `ctdb catdb` of the
#              100,000 records (a cluster-wide traverse), its wall time and
#              the leader's peak RSS after it
# Not a timed test.  State is polled over each node's socket every 20 ms
# (bench/cluster-probe.py).
#
#   bench/cluster.sh [RECORDS]
# Environment: BENCH_KINDS ("debian ours"), CTDBD_BIN (default
# $OURS_LIBDIR/ctdbd or target/release/ctdbd), DEBIAN_ADDR (127.0.16.11),
# OURS_ADDR (127.0.16.1), BENCH_KEEP=1 keeps the cluster directories.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RECORDS=${1:-100000}
KINDS=${BENCH_KINDS:-debian ours}
DEBIAN_ADDR=${DEBIAN_ADDR:-127.0.16.11}
OURS_ADDR=${OURS_ADDR:-127.0.16.1}
PROBE="/usr/bin/python3 $HERE/cluster-probe.py"
if [ -z "${CTDBD_BIN:-}" ]; then
	BUILT=${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi
RUN=$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster.XXXXXX")
cleanup() {
	local k
	for k in $KINDS; do [ -e "$RUN/$k/nodes" ] && bash "$ROOT/scripts/cluster.sh" stop "$RUN/$k" >/dev/null 2>&1; done
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

cl() { bash "$ROOT/scripts/cluster.sh" "$@"; }
now() { date +%s.%N; }
socks() { echo "$1"/node{0,1,2}/run/ctdbd.socket; }
# reported NODE: the daemon's "Duration of last recovery/failover" in seconds.
reported() {
	cl ctdb "$DIR" "$1" uptime 2>/dev/null |
		awk '/^Duration of last recovery\/failover:/ { printf "%.3f", $5 }'
}
note() { echo "$1=$2" >>"$RES"; }
# logged NODE: the last recovery's length in NODE's log, from Samba's
# "Starting do_recovery" to its "Recovery complete" (empty when the daemon
# logs no such lines).
logged() {
	awk '/Starting do_recovery/ { s = $1 } /Recovery complete/ && s != "" { e = $1 } END { if (s != "" && e != "") print s, e }' \
		"$DIR/node$1/log.ctdb" | while read -r s e; do
		awk -v a="$(date -d "$s" +%s.%N)" -v b="$(date -d "$e" +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
	done
}

# vmhwm_kb PID: peak resident set of PID in kB.
vmhwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

rss() { # rss: per node, the daemon's VmHWM and the sum over its processes (MiB)
	local k sid pid main all p
	for k in 0 1 2; do
		pid=$(cl pid "$DIR" "$k")
		sid=$(cat "$DIR/node$k/sid")
		main=$(vmhwm_kb "$pid")
		all=0
		for p in $(ps -e -o pid= -o sid= | awk -v s="$sid" '$2 == s { print $1 }'); do
			all=$((all + $(vmhwm_kb "$p" || echo 0)))
		done
		note "rss_main_$k" "$(awk -v x="${main:-0}" 'BEGIN { printf "%.1f", x / 1024 }')"
		note "rss_all_$k" "$(awk -v x="$all" 'BEGIN { printf "%.1f", x / 1024 }')"
	done
}

bench_one() { # bench_one KIND ADDR BIN
	local kind=$1 t0 out g l k n per victim
	DIR=$RUN/$kind
	RES=$RUN/$kind.res
	: >"$RES"
	echo "== $kind: start of 3 nodes ($3)" >&2
	t0=$(now)
	cl start "$DIR" 3 "$2" "$3" || return 1
	out=$($PROBE wait "$t0" 120 $(socks "$DIR")) || { echo "$kind: not healthy after start" >&2; return 1; }
	note start "${out% *}"

	echo "== $kind: $RECORDS records, a third on each node; ctdb recover" >&2
	cl ctdb "$DIR" 0 attach bench.tdb >/dev/null || return 1
	for k in 0 1 2; do
		for n in $(seq 1 50); do [ -e "$DIR/node$k/db/volatile/bench.tdb.$k" ] && break; sleep 0.1; done
	done
	per=$((RECORDS / 3))
	for k in 0 1 2; do
		n=$per
		[ "$k" = 0 ] && n=$((RECORDS - 2 * per))
		$PROBE load "$DIR/node$k/db/volatile/bench.tdb.$k" "$k" "$n" || return 1
	done
	# Neither daemon starts a recovery within RerecoveryTimeout of the last
	# one (the start-up's): wait that out, so that the figures are the
	# recovery's and not that window's.
	sleep "$(sed -n 's/^RerecoveryTimeout=//p' "$DIR/node0/ctdb.tunables" | grep . || echo 10)"
	g=$($PROBE gen "$DIR/node0/run/ctdbd.socket")
	t0=$(now)
	cl ctdb "$DIR" 0 recover || echo "$kind: ctdb recover failed" >&2
	note recover_cmd "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"
	out=$($PROBE wait "$t0" 120 --not-gen "$g" $(socks "$DIR")) || { echo "$kind: not normal after recover" >&2; return 1; }
	note recovery_normal "${out% *}"
	note recovery_reported "$(reported 0)"
	note recovery_logged "$(logged "$(cl ctdb "$DIR" 0 leader)")"
	note records_node1 "$(cl ctdb "$DIR" 1 cattdb bench.tdb | sed -n 's/^Dumped \([0-9]*\) record.*/\1/p')"
	rss

	l=$(cl ctdb "$DIR" 0 leader)
	for victim in 2 1 0; do [ "$victim" != "$l" ] && break; done
	echo "== $kind: SIGKILL of node $victim (leader $l)" >&2
	g=$($PROBE gen "$DIR/node0/run/ctdbd.socket")
	t0=$(now)
	kill -KILL "$(cl pid "$DIR" "$victim")"
	touch "$DIR/node$victim/down"
	out=$($PROBE wait "$t0" 120 --down "$victim" --not-gen "$g" $(socks "$DIR")) || { echo "$kind: not normal after the SIGKILL" >&2; return 1; }
	note failover_normal "${out% *}"
	note failover_reported "$(reported "$l")"
	note failover_logged "$(logged "$l")"

	echo "== $kind: ctdb catdb bench.tdb on node $l (a cluster-wide traverse)" >&2
	t0=$(now)
	note records_catdb "$(CLUSTER_TOOL_TIMEOUT=60 cl ctdb "$DIR" "$l" catdb bench.tdb | sed -n 's/^Dumped \([0-9]*\) record.*/\1/p')"
	note catdb_secs "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"
	note rss_after_catdb "$(awk -v x="$(vmhwm_kb "$(cl pid "$DIR" "$l")")" 'BEGIN { printf "%.1f", x / 1024 }')"
	cl stop "$DIR" >/dev/null 2>&1
}

for kind in $KINDS; do
	if [ "$kind" = debian ]; then bench_one debian "$DEBIAN_ADDR" debian; else bench_one ours "$OURS_ADDR" "$CTDBD_BIN"; fi ||
		echo "$kind: run incomplete (figures so far below)" >&2
done

val() { sed -n "s/^$2=//p" "$RUN/$1.res" 2>/dev/null; }
row() { # row LABEL KEY UNIT SENSE: SENSE "time" gives debian/ours, "size" ours/debian
	local d o r
	d=$(val debian "$2")
	o=$(val ours "$2")
	r=""
	if [ -n "$d" ] && [ -n "$o" ]; then
		if [ "$4" = time ]; then r=$(awk -v d="$d" -v o="$o" 'BEGIN { if (o > 0) printf "%.2f", d / o }')
		else r=$(awk -v d="$d" -v o="$o" 'BEGIN { if (d > 0) printf "%.2f", o / d }'); fi
	fi
	printf '%-44s %12s %12s %8s\n' "$1" "${d:--}${d:+ $3}" "${o:--}${o:+ $3}" "${r:--}"
}
echo
printf '%-44s %12s %12s %8s\n' "3 nodes, $RECORDS records" debian ours ratio
row "start until all OK, normal" start s time
row "recovery: daemon's figure (ctdb uptime)" recovery_reported s time
row "recovery: leader's log (do_recovery..complete)" recovery_logged s time
row "recovery: ctdb recover wall time" recover_cmd s time
row "recovery: until normal on every node" recovery_normal s time
row "records on node 1 after (cattdb)" records_node1 "" none
row "SIGKILL of a node until normal" failover_normal s time
row "that recovery: daemon's figure" failover_reported s time
row "that recovery: leader's log" failover_logged s time
row "catdb on the leader afterwards: records" records_catdb "" none
row "catdb: wall time" catdb_secs s time
row "catdb: the leader's peak RSS after (MiB)" rss_after_catdb "" size
for k in 0 1 2; do row "peak RSS node $k, daemon (MiB)" "rss_main_$k" "" size; done
for k in 0 1 2; do row "peak RSS node $k, all its processes (MiB)" "rss_all_$k" "" size; done
echo "(time ratios: debian / ours, above 1 = ours faster; RSS ratios: ours / debian)"
