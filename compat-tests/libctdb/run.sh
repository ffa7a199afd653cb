#!/usr/bin/env bash
# libctdb (the ctdb_* C API of our libtdb.so.1) against our ctdbd and
# Debian's ctdbd 4.17, with C programs.
#
#   flock /work/ctdb-compat.lock bash compat-tests/libctdb/run.sh
#
# Header checks first: libctdb-test.c, written against the original ctdb.h,
# compiles against include/ctdb.h with -Wall -Werror as C and as C++ (and
# against the original headers from Samba's history when the mirror is
# there); layout.c prints every structure's size and offsets and the
# constants, which must equal layout.expected (recorded from the original
# headers) and, with the mirror, the original headers' own output; `make
# install` into a scratch prefix and `pkg-config --cflags --libs ctdb` build
# and link a program.
#
# Then, for each daemon (Debian's on 127.0.19.11-13, ours on 127.0.19.1-3),
# a one-node cluster and a three-node one (scripts/cluster.sh): every getter
# (outputs compared between the daemons), a record locked and written on
# node 0 and locked on node 2 (it migrates there with its value), written
# there and read on node 1, a traverse, messages from nodes 0 and 2 to a
# client on node 1, the async API in one poll() loop with 11 requests in
# flight (one of them cancelled), a persistent attach and the remaining calls;
# last, a client of node 1 waiting for a record whose chain lock a client of
# node 0 holds sees its daemon killed: a clean error, no hang.
#
# Environment: OURS_LIBDIR (the release build, default target/release),
# CTDBD_BIN, DEBIAN_CTDBD, SAMBA_REPO (Samba's git mirror), COMPAT_KEEP=1.
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/../ctdb/lib.sh"
BUILT=$(cd "$BUILT" && pwd)
OURS=${CTDBD_BIN:-$BUILT/ctdbd}
SAMBA_REPO=${SAMBA_REPO:-/work/.mirror/samba-team+samba/repo}
CC=${CC:-cc}
CXX=${CXX:-c++}
RUN=$(new_run_dir libctdb)
T=$RUN/libctdb-test
TT=$RUN/trans-test
DB=libctdb.tdb
SRVID=0xCE00000000001234

cleanup() {
	[ -n "${HOLD_FD:-}" ] && exec 7>&-
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT
# check NAME COMMAND...: PASS when COMMAND exits 0 (its output shown otherwise).
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

CFLAGS=(-std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter)

header_checks() {
	check "libctdb-test.c compiles and links against include/ctdb.h (C, -Wall -Werror)" \
		"$CC" "${CFLAGS[@]}" -I"$ROOT/include" -o "$T" "$HERE/libctdb-test.c" -L"$BUILT" -ltdb
	check "libctdb-test.c compiles as C++ against include/ctdb.h (-Wall -Werror)" \
		"$CXX" -x c++ -Wall -Werror -Wno-unused-parameter -I"$ROOT/include" -fsyntax-only "$HERE/libctdb-test.c"
	check "trans-test.c (the transaction extension) compiles and links against include/ctdb.h" \
		"$CC" "${CFLAGS[@]}" -I"$ROOT/include" -o "$TT" "$HERE/trans-test.c" -L"$BUILT" -ltdb
	check "layout.c compiles against include/ctdb.h" \
		"$CC" "${CFLAGS[@]}" -I"$ROOT/include" -o "$RUN/layout" "$HERE/layout.c"
	check "struct layouts and constants equal layout.expected" \
		diff -u "$HERE/layout.expected" <("$RUN/layout")
	if [ -d "$SAMBA_REPO" ]; then
		local o=$RUN/orig h
		mkdir -p "$o"
		for h in ctdb.h ctdb_protocol.h ctdb_typesafe_cb.h; do
			git -C "$SAMBA_REPO" show "20b82ea28eb^:ctdb/include/$h" >"$o/$h"
		done
		check "libctdb-test.c compiles against the original headers too" \
			"$CC" "${CFLAGS[@]}" -I"$o" -I"$ROOT/include" -fsyntax-only "$HERE/libctdb-test.c"
		check "layout.c: the original headers give the same output" \
			bash -c "'$CC' -std=gnu11 -Wall -Werror -I'$o' -I'$ROOT/include' -o '$RUN/layout-orig' '$HERE/layout.c' && diff -u <('$RUN/layout-orig') <('$RUN/layout')"
	else
		echo "note: $SAMBA_REPO absent; layouts compared with layout.expected only"
	fi
	local prefix=$RUN/prefix
	check "make install puts ctdb.h and ctdb.pc in place" \
		make -C "$ROOT" --no-print-directory install PREFIX="$prefix" BUILT="$BUILT"
	check "pkg-config --cflags --libs ctdb builds and links libctdb-test.c" \
		bash -c "PKG_CONFIG_PATH='$prefix/lib/pkgconfig' '$CC' ${CFLAGS[*]} -o '$RUN/pc-test' '$HERE/libctdb-test.c' \$(PKG_CONFIG_PATH='$prefix/lib/pkgconfig' pkg-config --cflags --libs ctdb) && LD_LIBRARY_PATH='$prefix/lib' ldd '$RUN/pc-test' | grep -q '$prefix/lib/libtdb.so.1'"
}

sock() { echo "$1/node$2/run/ctdbd.socket"; }
t() { LD_LIBRARY_PATH=$BUILT timeout 60 "$T" "$@"; }
tt() { LD_LIBRARY_PATH=$BUILT timeout 60 "$TT" "$@"; }

# normalise DIR: the cluster's addresses as nodeK, so outputs compare.
normalise() {
	local dir=$1 k=0 a expr=()
	while read -r a; do
		expr+=(-e "s/\\b${a//./\\.}\\b/node$k/g")
		k=$((k + 1))
	done <"$dir/nodes"
	sed "${expr[@]}"
}

# has_text FILE TEXT: FILE holds TEXT, within 10 s.
has_text() { wait_for 10 grep -q "$2" "$1"; }

# records NAME DIR N: the lock, write, migrate and read steps.
records() {
	local name=$1 dir=$2 n=$3 last=$(($3 - 1)) out
	out=$(t write "$(sock "$dir" 0)" $DB key1 "from node 0")
	[ "$out" = "old ''" ] && pass "$name: lock key1 on node 0 (new, empty) and write it" ||
		fail "$name: lock key1 on node 0 and write it" "$out"
	out=$(t read "$(sock "$dir" "$last")" $DB key1 2>>"$RUN/expected-errors.log")
	[ "$out" = "value 'from node 0'" ] && pass "$name: lock key1 on node $last: the value is there" ||
		fail "$name: lock key1 on node $last" "$out"
	out=$(t write "$(sock "$dir" "$last")" $DB key1 "from node $last")
	[ "$out" = "old 'from node 0'" ] && pass "$name: write key1 on node $last" ||
		fail "$name: write key1 on node $last" "$out"
	out=$(t read "$(sock "$dir" $((n > 1 ? 1 : 0)))" $DB key1 2>>"$RUN/expected-errors.log")
	[ "$out" = "value 'from node $last'" ] && pass "$name: lock key1 on node $((n > 1 ? 1 : 0)) after it" ||
		fail "$name: read key1 after node $last wrote it" "$out"
	t write "$(sock "$dir" 0)" $DB key2 "two" >/dev/null
	out=$(t traverse "$(sock "$dir" "$last")" $DB | sort)
	[ "$out" = "$(printf "record 'key1' 'from node %s'\nrecord 'key2' 'two'" "$last")" ] &&
		pass "$name: traverse from node $last sees both records; a callback returning 1 stops it" || fail "$name: traverse" "$out"
}

# messages NAME DIR N: a client of the last node gets messages from every node.
messages() {
	local name=$1 dir=$2 n=$3 last=$(($3 - 1)) k out lpid
	# (emptied first: the background job's own truncation may come after
	# the first look for "ready", which must not find the last run's)
	: >"$RUN/listen.out"
	t listen "$(sock "$dir" "$last")" $SRVID "$n" >"$RUN/listen.out" 2>&1 &
	lpid=$!
	if ! has_text "$RUN/listen.out" ready; then
		fail "$name: message handler registered" "$(cat "$RUN/listen.out")"
		kill "$lpid" 2>/dev/null
		return
	fi
	for k in $(seq 0 "$last"); do
		t send "$(sock "$dir" "$k")" "$last" $SRVID "hello from $k"
	done
	wait "$lpid"
	out=$(grep '^message' "$RUN/listen.out" | sort)
	local want
	want=$(for k in $(seq 0 "$last"); do echo "message 0xce00000000001234 'hello from $k'"; done)
	[ "$out" = "$want" ] && pass "$name: messages from every node reach a client of node $last" ||
		fail "$name: messages" "$(cat "$RUN/listen.out")"
}

# transactions NAME DIR N: 10 transactions on every node at once, each adding
# one to its node's counter; every node's copy then holds 10 for every node,
# and the database's sequence number is the same on every node.
transactions() {
	local name=$1 dir=$2 n=$3 k pids=() out want seq first=
	for k in $(seq 0 $((n - 1))); do
		tt run "$(sock "$dir" "$k")" "$n" 10 >"$RUN/trans.$k" 2>&1 &
		pids+=($!)
	done
	for k in $(seq 0 $((n - 1))); do
		wait "${pids[$k]}" || { fail "$name: transactions on node $k" "$(cat "$RUN/trans.$k")"; return; }
	done
	want=$(for k in $(seq 0 $((n - 1))); do echo 10; done | paste -sd' ')
	for k in $(seq 0 $((n - 1))); do
		out=$(tt show "$(sock "$dir" "$k")" "$n" 2>&1)
		[ "$out" = "$want" ] || { fail "$name: counters on node $k after the transactions" "$out"; return; }
		seq=$(bash "$CLUSTER" ctdb "$dir" "$k" getdbseqnum libctdb-trans.tdb 2>&1)
		[ -z "$first" ] && first=$seq
		[ "$seq" = "$first" ] || { fail "$name: seqnum on node $k" "$seq, node 0: $first"; return; }
	done
	pass "$name: transaction extension: $((10 * n)) transactions from $n nodes at once, every node holds counters '$want' and sequence number $first"
	out=$(tt volatile "$(sock "$dir" 0)" 2>>"$RUN/expected-errors.log")
	[ "$out" = "volatile refused" ] && pass "$name: a transaction on a volatile database fails with EINVAL" ||
		fail "$name: transaction on a volatile database" "$out"
}

# stranded NAME DIR: node 0's client holds a record, node 1's waits for it
# and its daemon is killed.
stranded() {
	local name=$1 dir=$2 spid out
	rm -f "$RUN/hold.fifo"
	mkfifo "$RUN/hold.fifo"
	: >"$RUN/hold.out"
	: >"$RUN/stranded.out"
	t hold "$(sock "$dir" 0)" $DB stuck <"$RUN/hold.fifo" >"$RUN/hold.out" 2>&1 &
	exec 7>"$RUN/hold.fifo"
	HOLD_FD=7
	if ! has_text "$RUN/hold.out" held; then
		fail "$name: hold a record on node 0" "$(cat "$RUN/hold.out")"
		return
	fi
	t stranded "$(sock "$dir" 1)" $DB stuck >"$RUN/stranded.out" 2>&1 &
	spid=$!
	if ! has_text "$RUN/stranded.out" inflight; then
		fail "$name: a lock request in flight on node 1" "$(cat "$RUN/stranded.out")"
	else
		bash "$CLUSTER" kill "$dir" 1 KILL
		if wait "$spid"; then
			pass "$name: node 1 killed mid-request: $(grep clean "$RUN/stranded.out")"
		else
			fail "$name: node 1 killed mid-request" "$(cat "$RUN/stranded.out")"
		fi
	fi
	echo >&7
	exec 7>&-
	HOLD_FD=
	wait
}

# one_kind KIND NAME N ADDR: every check on an N-node cluster of KIND.
one_kind() {
	local kind=$1 name=$2 n=$3 addr=$4 dir=$RUN/c-$2 k out id
	cluster_up "$name" "$dir" "$RUN/$name" "$n" "$addr" "$kind" || return
	for k in $(seq 0 $((n - 1))); do
		if t getters "$(sock "$dir" "$k")" >"$RUN/$name.getters.$k" 2>&1; then
			normalise "$dir" <"$RUN/$name.getters.$k" >"$RUN/$name.getters.$k.n"
			pass "$name: every getter on node $k"
		else
			fail "$name: getters on node $k" "$(cat "$RUN/$name.getters.$k")"
		fi
	done
	records "$name" "$dir" "$n"
	messages "$name" "$dir" "$n"
	out=$(t async "$(sock "$dir" 0)" $DB 2>&1)
	echo "$out" | grep -q "async ok: pnn 0, $n nodes" && pass "$name: $out" || fail "$name: async API" "$out"
	out=$(t persistent "$(sock "$dir" 0)" libctdb-persistent.tdb 2>&1) &&
		pass "$name: persistent attach, getters of a missing db fail, $(echo "$out" | tail -n 1)" ||
		fail "$name: persistent attach" "$out"
	id=$(bash "$CLUSTER" ctdb "$dir" 0 getdbstatus $DB | sed -n 's/^dbid: //p')
	out=$(t dbinfo "$(sock "$dir" 0)" "$id" 2>&1) && pass "$name: dbstat and seqnum of $DB ($id): $(echo $out)" ||
		fail "$name: dbstat and seqnum" "$out"
	transactions "$name" "$dir" "$n"
	[ "$n" -gt 1 ] && stranded "$name" "$dir"
	bash "$CLUSTER" stop "$dir" >/dev/null 2>&1
}

header_checks
[ -x "$T" ] || finish
for n in 1 3; do
	one_kind debian "debian-$n" "$n" 127.0.19.11
	one_kind "$OURS" "ours-$n" "$n" 127.0.19.1
	for k in $(seq 0 $((n - 1))); do
		if [ -e "$RUN/debian-$n.getters.$k.n" ] && [ -e "$RUN/ours-$n.getters.$k.n" ]; then
			check "$n nodes: getters on node $k give what Debian's do" \
				diff -u "$RUN/debian-$n.getters.$k.n" "$RUN/ours-$n.getters.$k.n"
		fi
	done
done
finish
