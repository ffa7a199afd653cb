#!/usr/bin/env bash
# make bench-ctdb: libctdb's workloads (bench/ctdb-bench.c) on a 3-node
# cluster of Debian's ctdbd (127.0.19.11-13), then on one of ours
# (127.0.19.1-3), same layout (scripts/cluster.sh): each workload runs
# SECONDS (default 10) on every node at once; the results are checked (the
# ring's counter equals the increments the nodes counted, the tokens went
# round evenly, each node's loop counter equals its operations) and ops/s
# per node are printed side by side with the ratio, then the peak RSS of
# each node's daemon (its processes' VmHWM added up).
#
# libctdb has no transaction API, so transaction_loop is not among them.
#
# Environment: OURS_LIBDIR (release build), CTDBD_BIN, SECONDS_PER_RUN,
# COMPAT_KEEP=1.  Binds 127.0.19.x port 4379: run it alone (flock).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CLUSTER=$ROOT/scripts/cluster.sh
BUILT=$(cd "${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}" && pwd)
OURS=${CTDBD_BIN:-$BUILT/ctdbd}
SECS=${SECONDS_PER_RUN:-10}
NODES=3
WORKLOADS="fetch_ring message_ring transaction_loop fetch_loop"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-bench.XXXXXX")
BENCH=$RUN/ctdb-bench
BAD=0

cleanup() {
	local c
	for c in "$RUN"/c-*; do
		[ -e "$c/nodes" ] && bash "$CLUSTER" stop "$c" >/dev/null 2>&1
	done
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

${CC:-cc} -O2 -std=gnu11 -Wall -Werror -I"$ROOT/include" -o "$BENCH" "$HERE/ctdb-bench.c" \
	-L"$BUILT" -ltdb || exit 1
b() { LD_LIBRARY_PATH=$BUILT "$BENCH" "$@"; }
sock() { echo "$1/node$2/run/ctdbd.socket"; }

# rss DIR K: the peak RSS (kB) of node K's daemon and its child processes.
rss() {
	local pid kids p total=0 v
	pid=$(bash "$CLUSTER" pid "$1" "$2")
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null)
	for p in $pid $kids; do
		v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# workload NAME KIND DIR: runs NAME on every node, leaves RUN/NAME.KIND.K.
workload() {
	local name=$1 kind=$2 dir=$3 k pids=() go=$RUN/go.$1.$2 i
	rm -f "$go"
	for k in $(seq 0 $((NODES - 1))); do
		b "$name" "$(sock "$dir" "$k")" $NODES "$SECS" "$go" >"$RUN/$name.$kind.$k" 2>&1 &
		pids+=($!)
	done
	for k in $(seq 0 $((NODES - 1))); do
		for i in $(seq 300); do
			grep -q ready "$RUN/$name.$kind.$k" && break
			sleep 0.1
		done
	done
	touch "$go"
	wait "${pids[@]}"
}

ops() { awk '/^ops/ {print $2}' "$RUN/$1.$2.$3"; }
rate() { awk '/^ops/ {printf "%.0f", $2 / $4}' "$RUN/$1.$2.$3"; }

# verify KIND DIR: the checks of every workload's results.
verify() {
	local kind=$1 dir=$2 k sum=0 n counter min=-1 max=0 final
	for k in $(seq 0 $((NODES - 1))); do
		n=$(ops fetch_ring "$kind" "$k")
		sum=$((sum + ${n:-0}))
	done
	counter=$(b read "$(sock "$dir" 0)" fetch_ring)
	if [ "$counter" = "$sum" ] && [ "$sum" -gt 0 ]; then
		echo "check $kind fetch_ring: counter $counter = increments counted by the nodes"
	else
		echo "CHECK FAILED $kind fetch_ring: counter '$counter', increments $sum"
		BAD=1
	fi
	for k in $(seq 0 $((NODES - 1))); do
		n=$(ops message_ring "$kind" "$k")
		n=${n:-0}
		[ "$min" -lt 0 ] || [ "$n" -lt "$min" ] && min=$n
		[ "$n" -gt "$max" ] && max=$n
	done
	if [ "$min" -gt 0 ] && [ $((max - min)) -le 8 ]; then
		echo "check $kind message_ring: every node forwarded $min..$max tokens"
	else
		echo "CHECK FAILED $kind message_ring: forwarded $min..$max"
		BAD=1
	fi
	for k in $(seq 0 $((NODES - 1))); do
		n=$(ops fetch_loop "$kind" "$k")
		final=$(awk '/^ops/ {print $6}' "$RUN/fetch_loop.$kind.$k")
		if [ -z "$n" ] || [ "$final" != "$((n + 1))" ]; then
			echo "CHECK FAILED $kind fetch_loop node $k: ops '$n', counter '$final'"
			BAD=1
		fi
	done
	[ "$BAD" = 0 ] && echo "check $kind fetch_loop: each node's counter = its operations + 1"
	verify_transactions "$kind" "$dir"
}

# verify_transactions KIND DIR: every node's copy holds each node's counter
# equal to the transactions that node committed.
verify_transactions() {
	local kind=$1 dir=$2 k want=() got
	for k in $(seq 0 $((NODES - 1))); do
		want+=("$(ops transaction_loop "$kind" "$k")")
		if [ "$(awk '/^ops/ {print $6}' "$RUN/transaction_loop.$kind.$k")" != "${want[$k]}" ]; then
			echo "CHECK FAILED $kind transaction_loop node $k: its last counter is not its count"
			BAD=1
		fi
	done
	for k in $(seq 0 $((NODES - 1))); do
		got=$(b counters "$(sock "$dir" "$k")" $NODES)
		if [ "$got" != "${want[*]}" ] || [ "${want[0]:-0}" -le 0 ]; then
			echo "CHECK FAILED $kind transaction_loop: node $k has counters '$got', committed '${want[*]}'"
			BAD=1
			return
		fi
	done
	echo "check $kind transaction_loop: every node holds the counters ${want[*]} = the transactions committed"
}

# one_kind KIND DAEMON ADDR
one_kind() {
	local kind=$1 daemon=$2 addr=$3 dir=$RUN/c-$1 w k
	bash "$CLUSTER" start --leader-first "$dir" $NODES "$addr" "$daemon" >"$RUN/$kind.start" 2>&1 ||
		{ echo "$kind: cluster start failed"; cat "$RUN/$kind.start"; exit 1; }
	bash "$CLUSTER" wait "$dir" 90 >"$RUN/$kind.wait" 2>&1 ||
		{ echo "$kind: cluster not healthy"; tail "$RUN/$kind.wait"; exit 1; }
	for w in $WORKLOADS; do
		workload "$w" "$kind" "$dir"
	done
	verify "$kind" "$dir"
	for k in $(seq 0 $((NODES - 1))); do
		rss "$dir" "$k" >"$RUN/rss.$kind.$k"
	done
	bash "$CLUSTER" stop "$dir" >/dev/null 2>&1
}

one_kind debian debian 127.0.19.11
one_kind ours "$OURS" 127.0.19.1

printf '\n%-14s %5s %12s %12s %7s\n' workload node "samba ops/s" "ours ops/s" ratio
for w in $WORKLOADS; do
	for k in $(seq 0 $((NODES - 1))); do
		s=$(rate "$w" debian "$k")
		o=$(rate "$w" ours "$k")
		printf '%-14s %5s %12s %12s %7s\n' "$w" "$k" "$s" "$o" \
			"$(awk -v o="$o" -v s="$s" 'BEGIN { if (s > 0) printf "%.2fx", o / s; else print "-" }')"
	done
done
printf '\n%-14s %5s %12s %12s %7s\n' "peak RSS" node "samba kB" "ours kB" ratio
for k in $(seq 0 $((NODES - 1))); do
	s=$(cat "$RUN/rss.debian.$k")
	o=$(cat "$RUN/rss.ours.$k")
	printf '%-14s %5s %12s %12s %7s\n' "daemon" "$k" "$s" "$o" \
		"$(awk -v o="$o" -v s="$s" 'BEGIN { if (s > 0) printf "%.2fx", o / s; else print "-" }')"
done
exit $BAD
