#!/usr/bin/env bash
# Persistent databases, transactions and the cluster-wide traverse on a real
# 3-node cluster: the same steps with Debian's ctdb tool against a cluster of
# our ctdbd and a cluster of Debian's ctdbd, outputs compared.
#
#   compat-tests/ctdb/cluster-persistent.sh [FILTER]
#
# Its clusters use their own addresses (127.0.15.x), none of the ctdb compat
# suite's, so it needs no compat lock of its own (make test holds one anyway).
#
# Environment:
#   CTDBD_BIN     our ctdbd (default: ctdbd in $OURS_LIBDIR, make's $(BUILT),
#                 else <repo>/target/release or under $CARGO_TARGET_DIR)
#   OURS_BASE     first address of our cluster (default 127.0.15.1)
#   DEBIAN_BASE   first address of Debian's cluster (default 127.0.15.11)
#   KINDS         "ours debian" (default); one kind runs without comparing
#   KILLS=1       adds the commit loop across SIGKILLs (off by default: the
#                 3-node suite compat-tests/ctdb/cluster.sh has one too)
#   COMPAT_KEEP=1 keep the temporary directory
#
# Steps, on each cluster: attach a persistent database on node 0 (every node
# gets it), pstore on node 0, pfetch on nodes 1 and 2, ptrans on node 2,
# getdbseqnum on every node, catdb on node 1; a volatile database written on
# nodes 2 and 0 and listed by catdb on every node; a replicated database
# attached on node 0, pstore on node 1, pfetch and getdbseqnum everywhere,
# catdb on node 2; pstore loops on all three
# nodes at once (the transaction lock is a g_lock record that migrates), then
# the sequence number on every node; Samba's g_lock through `net g_lock` (a
# lock held on node 0, dumped from node 2, waited for on node 1); SIGKILL of node 2, a commit on node 0,
# node 2 back, its sequence number; with KILLS=1, commits in a loop on node 0
# while nodes 2 and 1 are SIGKILLed and restarted (no acknowledged commit may
# be missing on any node after).  Outputs are compared with paths masked
# and, for volatile records, the RSN masked and records sorted (the order
# the nodes answer in is not fixed).
#
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FILTER=${1:-}
CLUSTER=${CLUSTER:-$ROOT/scripts/cluster.sh}
BUILT=${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
OURS_BASE=${OURS_BASE:-127.0.15.1}
DEBIAN_BASE=${DEBIAN_BASE:-127.0.15.11}
KINDS=${KINDS:-ours debian}
LOOPS=10
KILL_LOOPS=${KILL_LOOPS:-2000}
KILLS=${KILLS:-0}

RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-cluster-persistent.XXXXXX")
PASSED=0
FAILED=0
STARTED=()

cleanup() {
	local d
	for d in "${STARTED[@]:-}"; do
		[ -n "$d" ] && "$CLUSTER" stop "$d" >/dev/null 2>&1
	done
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {
	echo "FAIL $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/    /' | head -40
	FAILED=$((FAILED + 1))
}
wanted() { [ -z "$FILTER" ] || [[ "$1" == *"$FILTER"* ]]; }

# Paths masked; with --sorted catdb's records sorted (the trailing "Dumped"
# line stays last), with --volatile also the RSN lines masked.
cat >"$RUN/normalise.py" <<'EOF'
import re, sys
volatile = "--volatile" in sys.argv
text = sys.stdin.read()
text = re.sub(r"/\S*/node(\d)/", r"DIR/node\1/", text)
if volatile:
    text = re.sub(r"(?m)^rsn: \d+$", "rsn: RSN", text)
if volatile or "--sorted" in sys.argv:
    blocks, tail = [], []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if lines and lines[-1].startswith("Dumped"):
            tail = [lines.pop()]
            if not lines:
                continue
            block = "\n".join(lines)
        blocks.append(block)
    text = "\n\n".join(sorted(blocks) + tail) + "\n"
sys.stdout.write(text)
EOF
normalise() { /usr/bin/python3 "$RUN/normalise.py" "$@"; }

# step KIND NAME [--volatile] -- CMD...: runs CMD, keeps its normalised output
# and exit status as $RUN/KIND/NAME.
step() {
	local kind=$1 name=$2 opt=
	shift 2
	if [ "$1" = --volatile ] || [ "$1" = --sorted ]; then
		opt=--volatile
		shift
	fi
	[ "$1" = -- ] && shift
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	{
		printf '%s\n' "$out" | normalise $opt
		echo "exit $rc"
	} >"$RUN/$kind/$name"
}

# steps KIND DIR: the whole sequence on one cluster.
steps() {
	local kind=$1 dir=$2
	local c=("$CLUSTER" ctdb "$dir")
	mkdir -p "$RUN/$kind"
	step "$kind" 01-attach -- "${c[@]}" 0 attach ptest.tdb persistent
	sleep 1
	local n
	for n in 0 1 2; do
		step "$kind" "02-getdbmap-$n" -- bash -c "\"\$@\" | grep ptest" _ "${c[@]}" "$n" getdbmap
	done
	step "$kind" 03-pstore-0 -- "${c[@]}" 0 pstore ptest.tdb k1 v1
	step "$kind" 04-pfetch-1 -- "${c[@]}" 1 pfetch ptest.tdb k1
	step "$kind" 04-pfetch-2 -- "${c[@]}" 2 pfetch ptest.tdb k1
	step "$kind" 05-ptrans-2 -- bash -c "printf '\"k2\" \"v2\"\n\"k1\" \"v1b\"\n' | \"\$@\"" _ "${c[@]}" 2 ptrans ptest.tdb
	for n in 0 1 2; do
		step "$kind" "06-getdbseqnum-$n" -- "${c[@]}" "$n" getdbseqnum ptest.tdb
		step "$kind" "06-pfetch-k1-$n" -- "${c[@]}" "$n" pfetch ptest.tdb k1
	done
	step "$kind" 07-catdb-persistent-1 --sorted -- "${c[@]}" 1 catdb ptest.tdb
	step "$kind" 08-attach-volatile -- "${c[@]}" 0 attach vtest.tdb
	sleep 1
	step "$kind" 09-writekey-2 -- "${c[@]}" 2 writekey vtest.tdb vk2 vv2
	step "$kind" 09-writekey-0 -- "${c[@]}" 0 writekey vtest.tdb vk0 vv0
	for n in 1 0 2; do
		step "$kind" "10-catdb-volatile-$n" --volatile -- "${c[@]}" "$n" catdb vtest.tdb
	done
	# A replicated database takes transactions like a persistent one.
	step "$kind" 10r-attach-replicated -- "${c[@]}" 0 attach rtest.tdb replicated
	sleep 1
	step "$kind" 10r-pstore-1 -- "${c[@]}" 1 pstore rtest.tdb rk rv
	for n in 0 1 2; do
		step "$kind" "10r-getdbmap-$n" -- bash -c "\"\$@\" | grep rtest" _ "${c[@]}" "$n" getdbmap
		step "$kind" "10r-pfetch-$n" -- "${c[@]}" "$n" pfetch rtest.tdb rk
		step "$kind" "10r-getdbseqnum-$n" -- "${c[@]}" "$n" getdbseqnum rtest.tdb
	done
	step "$kind" 10r-catdb-2 --sorted -- "${c[@]}" 2 catdb rtest.tdb
	# Three writers at once: each commit takes the g_lock record of the
	# database's transaction lock, which migrates between the nodes.
	local pids=()
	for n in 0 1 2; do
		(
			fails=0
			for i in $(seq 1 $LOOPS); do
				"${c[@]}" "$n" pstore ptest.tdb "key$n-$i" "val$i" >/dev/null 2>&1 || fails=$((fails + 1))
			done
			echo "node $n: $fails failed" >"$RUN/$kind/11-loop-$n"
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	for n in 0 1 2; do
		step "$kind" "12-getdbseqnum-$n" -- "${c[@]}" "$n" getdbseqnum ptest.tdb
	done
	step "$kind" 13-catdb-count-0 -- bash -c "\"\$@\" | tail -1" _ "${c[@]}" 0 catdb ptest.tdb
	# A node dies: commits go on among the others; back, it catches up.
	"$CLUSTER" kill "$dir" 2 KILL >/dev/null 2>&1
	"$CLUSTER" wait "$dir" 60 >"$RUN/$kind/wait-after-kill" 2>&1
	step "$kind" 14-pstore-after-kill -- "${c[@]}" 0 pstore ptest.tdb afterkill yes
	for n in 0 1; do
		step "$kind" "15-getdbseqnum-$n" -- "${c[@]}" "$n" getdbseqnum ptest.tdb
	done
	"$CLUSTER" start-node "$dir" 2 >/dev/null 2>&1
	"$CLUSTER" wait "$dir" 60 >"$RUN/$kind/wait-after-restart" 2>&1
	step "$kind" 16-getdbseqnum-back-2 -- "${c[@]}" 2 getdbseqnum ptest.tdb
	step "$kind" 16-pfetch-back-2 -- "${c[@]}" 2 pfetch ptest.tdb afterkill
	glock_steps "$kind" "$dir"
	[ "$KILLS" = 1 ] || return 0
	# Commits in a loop on node 0 while nodes 2 and then 1 are SIGKILLed
	# and restarted: every acknowledged commit is on every node after.
	local acked=$RUN/$kind/acked
	: >"$acked"
	local done_flag=$RUN/$kind/kills-done
	(
		i=0
		while [ ! -e "$done_flag" ] && [ $i -lt $KILL_LOOPS ]; do
			i=$((i + 1))
			if timeout 60 "${c[@]}" 0 pstore ptest.tdb "loop-$i" "$i" >/dev/null 2>&1; then
				echo "$i" >>"$acked"
			fi
		done
		echo "$i" >"$RUN/$kind/loop-tried"
	) &
	local loop=$!
	for n in 2 1; do
		sleep 1
		"$CLUSTER" kill "$dir" "$n" KILL >/dev/null 2>&1
		"$CLUSTER" wait "$dir" 60 >>"$RUN/$kind/wait-loop" 2>&1
		"$CLUSTER" start-node "$dir" "$n" >/dev/null 2>&1
		"$CLUSTER" wait "$dir" 60 >>"$RUN/$kind/wait-loop" 2>&1
	done
	touch "$done_flag"
	wait "$loop"
	# Every node's copy (catdb of a persistent db reads that node's file).
	local lost=0
	for n in 0 1 2; do
		"${c[@]}" "$n" catdb ptest.tdb >"$RUN/$kind/catdb-after-loop-$n" 2>&1
		lost=$((lost + $(/usr/bin/python3 - "$acked" "$RUN/$kind/catdb-after-loop-$n" <<'EOF'
import re, sys
acked = open(sys.argv[1]).read().split()
have = dict(re.findall(r'key\(\d+\) = "loop-(\d+)"\n(?:.*\n){3}data\(\d+\) = "(\d+)"', open(sys.argv[2]).read()))
print(sum(1 for i in acked if have.get(i) != i))
EOF
		)))
	done
	echo "acknowledged $(wc -l <"$acked") of $(cat "$RUN/$kind/loop-tried"), $lost copies missing" >"$RUN/$kind/kill-loop"
}

# glock_steps KIND DIR: Samba's g_lock (what smbd locks with) across nodes
# through `net g_lock` on each node's daemon: a lock held on node 0 is seen
# from node 2 and makes node 1 wait until it is released.
glock_steps() {
	local kind=$1 dir=$2 n g=$RUN/$1/glock
	for n in 0 1 2; do
		mkdir -p "$g/n$n/lock" "$g/n$n/state" "$g/n$n/cache" "$g/n$n/private"
		cat >"$g/n$n/smb.conf" <<EOF
[global]
	clustering = yes
	ctdbd socket = $dir/node$n/run/ctdbd.socket
	lock directory = $g/n$n/lock
	state directory = $g/n$n/state
	cache directory = $g/n$n/cache
	private dir = $g/n$n/private
	pid directory = $g/n$n
	ncalrpc dir = $g/n$n/ncalrpc
	log file = $g/n$n/log
EOF
	done
	local net=(timeout 60 net)
	"${net[@]}" --configfile="$g/n0/smb.conf" g_lock do glk 30000 "sleep 3; echo held" >"$g/holder.out" 2>&1 &
	local holder=$!
	sleep 1
	step "$kind" 20-glock-dump-2 -- bash -c "\"\$@\" | sed 's/^\([0-9]*\):[0-9]*:/\1:PID:/'" _ "${net[@]}" --configfile="$g/n2/smb.conf" g_lock dump glk
	local t0 t1
	t0=$(date +%s%N)
	step "$kind" 21-glock-do-1 -- "${net[@]}" --configfile="$g/n1/smb.conf" g_lock do glk 30000 "echo waited"
	t1=$(date +%s%N)
	wait "$holder"
	# The second taker got the lock only after the holder's 3 s were over.
	if [ $(((t1 - t0) / 1000000)) -ge 1500 ]; then echo waited; else echo "did not wait"; fi >"$RUN/$kind/22-glock-waited"
	step "$kind" 23-glock-holder -- cat "$g/holder.out"
	step "$kind" 24-glock-locks-0 -- "${net[@]}" --configfile="$g/n0/smb.conf" g_lock locks
}

# run_kind KIND BIN BASE: starts a cluster, runs the steps, stops it.
run_kind() {
	local kind=$1 bin=$2 base=$3 dir=$RUN/cluster-$1
	if ! "$CLUSTER" start "$dir" 3 "$base" "$bin" >"$RUN/$kind-start.log" 2>&1; then
		fail "$kind: cluster starts" "$(cat "$RUN/$kind-start.log")"
		return 1
	fi
	STARTED+=("$dir")
	if ! "$CLUSTER" wait "$dir" 90 >"$RUN/$kind-wait.log" 2>&1; then
		fail "$kind: cluster becomes healthy" "$(tail -20 "$RUN/$kind-wait.log")"
		"$CLUSTER" stop "$dir" >/dev/null 2>&1
		return 1
	fi
	pass "$kind: cluster becomes healthy"
	steps "$kind" "$dir"
	"$CLUSTER" stop "$dir" >/dev/null 2>&1
}

# Checks that hold on any cluster: equal sequence numbers, no failed loop.
check_kind() {
	local kind=$1 d=$RUN/$1 n
	[ -d "$d" ] || return
	for s in 06-getdbseqnum 12-getdbseqnum; do
		wanted "$kind: $s" || continue
		local vals
		vals=$(cat "$d/$s-0" "$d/$s-1" "$d/$s-2" 2>/dev/null | sort -u)
		if [ "$(grep -c '^0x' <<<"$vals")" -eq 1 ] && ! grep -q 'exit [^0]' <<<"$vals"; then
			pass "$kind: $s equal on every node ($(grep '^0x' <<<"$vals"))"
		else
			fail "$kind: $s equal on every node" "$vals"
		fi
	done
	if wanted "$kind: pstore loops"; then
		local loops
		loops=$(cat "$d"/11-loop-* 2>/dev/null)
		if [ "$(grep -c ': 0 failed' <<<"$loops")" -eq 3 ]; then
			pass "$kind: concurrent pstore loops on 3 nodes"
		else
			fail "$kind: concurrent pstore loops on 3 nodes" "$loops"
		fi
	fi
	if wanted "$kind: g_lock"; then
		if grep -qx waited "$d/22-glock-waited" 2>/dev/null && grep -q '^0:PID: WRITE' "$d/20-glock-dump-2"; then
			pass "$kind: g_lock held on node 0 is seen on node 2 and waited for on node 1"
		else
			fail "$kind: g_lock held on node 0 is seen on node 2 and waited for on node 1" \
				"$(cat "$d/20-glock-dump-2" "$d/21-glock-do-1" "$d/22-glock-waited" 2>&1)"
		fi
	fi
	if [ "$KILLS" = 1 ] && wanted "$kind: kill loop"; then
		local line
		line=$(cat "$d/kill-loop" 2>/dev/null)
		if [[ "$line" == *", 0 copies missing" ]] && [[ "$line" != "acknowledged 0 "* ]]; then
			pass "$kind: commits across SIGKILLs: $line"
		else
			fail "$kind: commits across SIGKILLs" "$line"
		fi
	fi
	if wanted "$kind: 12-getdbseqnum value"; then
		# 2 (pstore + ptrans) + 3 x LOOPS commits.
		local want
		want=$(printf '0x%x' $((2 + 3 * LOOPS)))
		if grep -qx "$want" "$d/12-getdbseqnum-0"; then
			pass "$kind: every commit counted ($want)"
		else
			fail "$kind: every commit counted ($want)" "$(cat "$d/12-getdbseqnum-0")"
		fi
	fi
}

for kind in $KINDS; do
	case $kind in
	ours) run_kind ours "$CTDBD_BIN" "$OURS_BASE" ;;
	debian) run_kind debian debian "$DEBIAN_BASE" ;;
	*) fail "unknown kind $kind" ;;
	esac
	check_kind "$kind"
done

if [ -d "$RUN/ours" ] && [ -d "$RUN/debian" ]; then
	# The numbered steps; the rest (the kill loop's counts, the waits)
	# depends on timing.
	for f in "$RUN"/debian/[0-9]*; do
		name=$(basename "$f")
		wanted "compare: $name" || continue
		if d=$(diff -u "$f" "$RUN/ours/$name" 2>&1); then
			pass "compare: $name"
		else
			fail "compare: $name" "$d"
		fi
	done
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
