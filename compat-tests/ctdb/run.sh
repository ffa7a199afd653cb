#!/usr/bin/env bash
# ctdbd compatibility suite: Debian's `ctdb` tool against our ctdbd and, in
# the same run, against Debian's ctdbd on an identical single-node layout.
#
#   compat-tests/ctdb/run.sh [FILTER]
#
# Environment:
#   CTDBD_BIN         our ctdbd binary (default: the release binary that
#                     `make build` leaves in OURS_LIBDIR)
#   OURS_LIBDIR       make's $(BUILT) (default: $CARGO_TARGET_DIR/release, or
#                     <repo>/target/release); `make test` passes it
#   CARGO_TARGET_DIR  where cargo builds (used when OURS_LIBDIR is unset)
#   DEBIAN_CTDBD      Debian's daemon (default /usr/sbin/ctdbd); the comparison
#                     tests are skipped -- and counted as failures -- without it
#   COMPAT_KEEP=1     keep the temporary directory
#
# Both daemons use node address 127.0.0.1 and the node-transport port 4379
# (CTDB's fixed port), so they run one after the other: Debian's first, then
# ours, each with its own CTDB_BASE under a temp dir.  Every daemon is started
# by this script and stopped by the pid in its pid file.  Phase 4 (smbd.sh)
# runs Debian's smbd clustered on a fresh node of each daemon (127.0.0.4 and
# .5, smbd on 127.0.0.1 port 4455 or the next free one); phase 3b (vacuum)
# uses .6 and .7, phase 3c (recovery controls) .8 and .10.
#
# Prints PASS name / FAIL name lines and ends with "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
FILTER=${1:-}
PY=/usr/bin/python3
CTDB=${CTDB_TOOL:-/usr/bin/ctdb}
DEBIAN_CTDBD=${DEBIAN_CTDBD:-/usr/sbin/ctdbd}

RUN=$(new_run_dir ctdb-compat)
STARTED_PIDS=()

cleanup() {
	local p
	for p in "${STARTED_PIDS[@]:-}"; do
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null && kill "$p" 2>/dev/null
	done
	remove_run
}
trap cleanup EXIT

# --- build ----------------------------------------------------------------
# The suite tests what `make build` ships: the release ctdbd in $(BUILT).
# It does not build; run `make build` first (make test does).
if [ -z "${CTDBD_BIN:-}" ]; then
	# make passes a path relative to the repository's top.
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi
[ -x "$CTDBD_BIN" ] || { fail build "no binary at $CTDBD_BIN (run make build first)"; finish; }
[ -x "$CTDB" ] || { fail setup "Debian's ctdb tool ($CTDB) is not installed"; finish; }

# --- layout ----------------------------------------------------------------
# make_base DIR: a single-node CTDB_BASE like ctdb/tests/local_daemons.sh lays
# out (minus the cluster lock, which a single node does not need).
make_base() { # make_base DIR [NODE-ADDRESS]
	local b=$1 addr=${2:-127.0.0.1}
	ctdb_base "$b" "$addr"
	echo "$addr" >"$b/nodes"
	# Vacuuming deletes emptied records at a point of the sequence that
	# depends on timing: keep it out of the comparison window (phase 3b
	# tests it on nodes of its own).
	echo "VacuumInterval=600" >"$b/ctdb.tunables"
	# Input for `ctdb ptrans`: quoted and unquoted forms, one bad line.
	printf '%s\n' '"k3" "v3"' '"k4" "v 4"' 'k5 v5' '"k1" "v1c"' '"k6" ""' >"$b/ptrans.in"
}

tool() { # tool BASE ARGS...: run Debian's ctdb against the daemon of BASE
	local b=$1
	shift
	CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 30 "$CTDB" "$@"
}

# wait_ready BASE: until the node is RUNNING, OK, out of recovery, with a leader.
wait_ready() {
	local b=$1 i out
	for i in $(seq 1 120); do
		out=$(tool "$b" status 2>/dev/null)
		if tool "$b" runstate RUNNING >/dev/null 2>&1 &&
			grep -q "OK (THIS NODE)" <<<"$out" &&
			grep -q "Recovery mode:NORMAL" <<<"$out" &&
			grep -q "^Leader:0" <<<"$out"; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

stop_daemon() { # stop_daemon BASE: by the pid in its pid file
	local b=$1 pid i
	pid=$(cat "$b/run/ctdbd.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# port_busy: something listens on 127.0.0.1:4379 (or on every address).
# Other loopback addresses do not matter: local clusters of other test runs
# listen on 127.0.X.Y:4379.
port_busy() { ss -Hltn "sport = :4379" 2>/dev/null | awk '{ print $4 }' | grep -qE '^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):4379$'; }

# The clustered-smbd scenario (smbd_suite and its helpers).
# shellcheck source=compat-tests/ctdb/smbd.sh
. "$HERE/smbd.sh"

# --- the command sequence ----------------------------------------------------
# One command per line; both daemons get exactly this sequence, in order
# (setvar/setdebug/attach change state that later lines observe).
COMMANDS=(
	"status"
	"-X status"
	"nodestatus"
	"pnn"
	"listnodes"
	"-X listnodes"
	"uptime"
	"ping"
	"getpid"
	"runstate"
	"runstate RUNNING"
	"runstate STARTUP"
	"runstate BOGUS"
	"getcapabilities"
	"-X getcapabilities"
	"leader"
	"listvars"
	"getvar RecoverInterval"
	"getvar recoverinterval"
	"getvar NoSuchTunable"
	"setvar RecoverInterval 2"
	"getvar RecoverInterval"
	"setvar VacuumLimit 5"
	"setvar NoSuchTunable 1"
	"setvar DatabaseMaxDead 0x10"
	"getvar DatabaseMaxDead"
	"getdbmap"
	"attach test_volatile.tdb"
	"attach test_persistent.tdb persistent"
	"attach test_replicated.tdb replicated"
	"attach test_volatile.tdb"
	"attach test_volatile.tdb persistent"
	"attach test_persistent.tdb"
	"getdbmap"
	"-X getdbmap"
	"getdebug"
	"setdebug DEBUG"
	"getdebug"
	"setdebug bogus"
	"setdebug 2"
	"getdebug"
	"setdebug NOTICE"
	"getdebug"
	"status"
	# --- volatile records (REQ_CALL, traverse, seqnum, wipe) ---
	"getdbstatus test_volatile.tdb"
	"getdbstatus test_persistent.tdb"
	"getdbstatus test_replicated.tdb"
	"getdbstatus 0x88127240"
	"getdbstatus nosuch.tdb"
	"readkey test_volatile.tdb key1"
	"cattdb test_volatile.tdb"
	"catdb test_volatile.tdb"
	"writekey test_volatile.tdb key1 value1"
	"writekey test_volatile.tdb key2 value2"
	"writekey test_volatile.tdb 0x6b6579330a 0x00ff7661"
	'writekey test_volatile.tdb a\"b\\c x'
	"writekey test_volatile.tdb key1 value1b"
	"readkey test_volatile.tdb key1"
	"readkey test_volatile.tdb key2 readonly"
	"readkey test_volatile.tdb nokey"
	"catdb test_volatile.tdb"
	"cattdb test_volatile.tdb"
	"getdbseqnum test_volatile.tdb"
	"getdbseqnum test_persistent.tdb"
	"getdbseqnum test_replicated.tdb"
	"cattdb test_volatile.tdb"
	"deletekey test_volatile.tdb key2"
	"deletekey test_volatile.tdb nokey2"
	"catdb test_volatile.tdb"
	"cattdb test_volatile.tdb"
	"readkey test_persistent.tdb key1"
	"writekey test_replicated.tdb key1 v"
	"deletekey test_persistent.tdb key1"
	"catdb test_persistent.tdb"
	"cattdb test_persistent.tdb"
	"catdb test_replicated.tdb"
	"cattdb test_replicated.tdb"
	"@writemany test_volatile.tdb 40"
	"catdb test_volatile.tdb"
	"cattdb test_volatile.tdb"
	"wipedb test_volatile.tdb"
	"catdb test_volatile.tdb"
	"cattdb test_volatile.tdb"
	"readkey test_volatile.tdb key1"
	"wipedb test_persistent.tdb"
	"cattdb test_persistent.tdb"
	"wipedb test_replicated.tdb"
	"catdb nosuch.tdb"
	"cattdb nosuch.tdb"
	"wipedb nosuch.tdb"
	"getdbseqnum nosuch.tdb"
	"readkey test_volatile.tdb"
	# --- persistent and replicated databases (g_lock + TRANS3_COMMIT) ---
	"pstore test_persistent.tdb k1 v1"
	"pfetch test_persistent.tdb k1"
	"pfetch test_persistent.tdb nokey"
	"cattdb test_persistent.tdb"
	"getdbseqnum test_persistent.tdb"
	"pstore test_persistent.tdb k1 v1b"
	"pstore test_persistent.tdb k2 v2"
	"pstore test_persistent.tdb k2 v2"
	"pstore test_persistent.tdb 0x6b0a33 0x00ff"
	"pdelete test_persistent.tdb k2"
	"pdelete test_persistent.tdb nokey"
	"pfetch test_persistent.tdb k2"
	"catdb test_persistent.tdb"
	"cattdb test_persistent.tdb"
	"getdbseqnum test_persistent.tdb"
	'ptrans test_persistent.tdb $b/ptrans.in'
	"cattdb test_persistent.tdb"
	"getdbseqnum test_persistent.tdb"
	"pstore test_replicated.tdb rk rv"
	"pfetch test_replicated.tdb rk"
	"pdelete test_replicated.tdb rk"
	"cattdb test_replicated.tdb"
	"getdbseqnum test_replicated.tdb"
	"pstore test_volatile.tdb x y"
	"pfetch test_volatile.tdb x"
	'ptrans test_volatile.tdb $b/ptrans.in'
	"pstore nosuch.tdb x y"
	"catdb g_lock.tdb"
	"cattdb g_lock.tdb"
	'tstore $b/db/persistent/test_persistent.tdb.0 tk tv'
	'tfetch $b/db/persistent/test_persistent.tdb.0 tk'
	'tstore $b/db/persistent/test_persistent.tdb.0 tk2 tv2 7 0 0x10000'
	'tfetch $b/db/persistent/test_persistent.tdb.0 tk2 -v'
	'tfetch $b/db/persistent/test_persistent.tdb.0 nokey'
	"pfetch test_persistent.tdb tk"
	"pfetch test_persistent.tdb tk2"
	"catdb test_persistent.tdb"
	"getdbmap"
	# --- backup and restore (local traverse; DB_PUSH_START, record-buffer
	# messages, DB_PUSH_CONFIRM inside a recovery transaction) ---
	"writekey test_volatile.tdb bk1 bv1"
	"writekey test_volatile.tdb bk2 bv2"
	"writekey test_volatile.tdb bk1 bv1b"
	'backupdb test_volatile.tdb $b/vol.bak'
	'dumpdbbackup $b/vol.bak'
	'backupdb test_persistent.tdb $b/pers.bak'
	'dumpdbbackup $b/pers.bak'
	'backupdb test_replicated.tdb $b/rep.bak'
	'dumpdbbackup $b/rep.bak'
	'backupdb nosuch.tdb $b/nosuch.bak'
	'dumpdbbackup $b/nosuch.bak'
	'dumpdbbackup $b/ptrans.in'
	"wipedb test_volatile.tdb"
	"catdb test_volatile.tdb"
	'restoredb $b/vol.bak'
	"catdb test_volatile.tdb"
	"cattdb test_volatile.tdb"
	"readkey test_volatile.tdb bk1"
	'restoredb $b/vol.bak test_vol_copy.tdb'
	"cattdb test_vol_copy.tdb"
	"pstore test_persistent.tdb k1 changed"
	"pstore test_persistent.tdb knew new"
	'restoredb $b/pers.bak'
	"cattdb test_persistent.tdb"
	"getdbseqnum test_persistent.tdb"
	"pfetch test_persistent.tdb k1"
	'restoredb $b/pers.bak test_pers_copy.tdb'
	"cattdb test_pers_copy.tdb"
	'restoredb $b/rep.bak'
	'restoredb $b/nosuch.bak'
	'restoredb $b/ptrans.in'
	# Debian's backups restored into either daemon (in Debian's phase that is
	# its own file; in ours, a file written against the other daemon).
	'restoredb $DEB/vol.bak test_cross_vol.tdb'
	'restoredb $DEB/pers.bak test_cross_pers.tdb'
	"cattdb test_cross_vol.tdb"
	"cattdb test_cross_pers.tdb"
	"getdbmap"
	# --- database flags, detach ---
	"attach test_ro.tdb readonly"
	"attach test_sticky.tdb sticky"
	"setdbreadonly test_volatile.tdb"
	"setdbsticky test_volatile.tdb"
	"setdbreadonly test_volatile.tdb"
	"setdbreadonly test_persistent.tdb"
	"setdbsticky test_replicated.tdb"
	"setdbreadonly nosuch.tdb"
	"getdbstatus test_volatile.tdb"
	"-X getdbmap"
	"readkey test_ro.tdb k readonly"
	"writekey test_ro.tdb k v"
	"readkey test_ro.tdb k readonly"
	"readkey test_ro.tdb k"
	"catdb test_ro.tdb"
	"cattdb test_ro.tdb"
	"detach test_sticky.tdb"
	"setvar AllowClientDBAttach 0"
	"detach test_sticky.tdb"
	"detach test_persistent.tdb"
	"detach test_replicated.tdb"
	"detach nosuch.tdb"
	"getdbmap"
	"attach test_sticky.tdb"
	"setvar AllowClientDBAttach 1"
	"attach test_sticky.tdb"
	"getdbmap"
	"process-exists 1"
	"process-exists 1 0x1234"
	# --- statistics ---
	"statistics"
	"statisticsreset"
	"dbstatistics test_volatile.tdb"
	"writekey test_volatile.tdb st1 v1"
	"readkey test_volatile.tdb st1"
	"readkey test_volatile.tdb st2"
	"statistics"
	"-X statistics"
	"dbstatistics test_volatile.tdb"
	"wipedb test_volatile.tdb"
	"dbstatistics test_volatile.tdb"
	"dbstatistics test_persistent.tdb"
	"statistics"
	"dbstatistics nosuch.tdb"
	"statisticsreset"
	"dbstatistics test_volatile.tdb"
	"statistics"
)

# Masks values that legitimately differ between two daemons / two runs:
#   - the base directory (each daemon has its own CTDB_BASE)
#   - uptime: every digit (clock times, uptimes, recovery duration)
#   - ping: the round-trip time, and the client count (Debian's ctdbd counts
#     its recovery daemon as a client; ours has no separate recovery process)
#   - getpid: the pid (checked separately against the pid file)
#   - status: the generation number (random per recovery)
#   - statistics, dbstatistics: the clock times and every latency
#     min/avg/max (timings), memory_used (allocator-specific), lock_buckets
#     reduced to their total (which bucket depends on how long a lock took);
#     and the traffic counters that Debian's recovery daemon -- a client of
#     its ctdbd with its own timer-driven controls and leader broadcasts --
#     adds to: num_clients, client/node packet counts, req_message,
#     req_control, reply_control.  Those are checked exactly on our daemon by
#     the statistics-counters test.
normalise() { # normalise BASE CMD < out
	local b=$1 cmd=$2
	sed -e "s#$b#BASE#g" | case "$cmd" in
	uptime) sed -e 's/[0-9]/N/g' ;;
	ping) sed -E -e 's/time=[0-9.]+ sec/time=T sec/' -e 's/\([0-9]+ clients\)/(N clients)/' ;;
	getpid) sed -E -e 's/^[0-9]+$/PID/' ;;
	*status) sed -E -e 's/^Generation:[0-9]+$/Generation:G/' ;;
	statistics | dbstatistics*) sed -E \
		-e 's/^(Current time of statistics  : +|Statistics collected since  : ).*/\1TIME/' \
		-e 's/^( +(num_clients|client_packets_sent|client_packets_recv|node_packets_sent|memory_used|req_message|req_control|reply_control)) +[0-9]+$/\1 N/' \
		-e 's#MIN/AVG/MAX +[0-9.]+/[0-9.]+/[0-9.]+ sec#MIN/AVG/MAX T/T/T sec#' |
		awk '/^ lock_buckets:/ { n = 0; for (i = 2; i <= NF; i++) n += $i; print " lock_buckets: total " n; next } { print }' ;;
	"-X statistics") awk -F'|' -v OFS='|' 'NR == 2 && NF > 50 {
		split("2 3 4 8 9 10 19 20 21 24 25 38 43 44 45 47 48 49 51 52 53 55 56 57 59 60 61", m, " ")
		for (i in m) $(m[i]) = "N" } { print }' ;;
	restoredb* | dumpdbbackup*) sed -E -e 's#backup @ [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$#backup @ TIME#' ;;
	*) cat ;;
	esac
}

# Raw-protocol probes run after the command sequence on both daemons; their
# transcripts are compared like the commands' output.
PROBES=("messages" "calls test_volatile.tdb" "smbcontrols test_volatile.tdb")
run_probes() { # run_probes BASE OUTDIR
	local b=$1 out=$2 pr
	for pr in "${PROBES[@]}"; do
		# shellcheck disable=SC2086
		{ timeout 60 $PY "$HERE/rawclient.py" "$b/run/ctdbd.socket" $pr 2>&1; echo "rc=$?"; } >"$out/probe-${pr%% *}"
	done
}

# process_exists BASE OUTFILE: `ctdb process-exists` against a live client
# (rawclient.py hold) with and without srvids (srvid 0 means PROCESS_EXISTS,
# others CHECK_PID_SRVID), the pid masked.
process_exists() {
	local b=$1 out=$2 hp pid line
	coproc HOLD { $PY "$HERE/rawclient.py" "$b/run/ctdbd.socket" hold 0xAE00000000000001 0; }
	hp=$HOLD_PID
	read -r -t 10 line <&"${HOLD[0]}"
	pid=${line#ready }
	{
		echo "$line" | sed -E 's/[0-9]+/PID/'
		for a in "" 0xAE00000000000001 0 0xAE00000000000002; do
			# shellcheck disable=SC2086
			tool "$b" process-exists "$pid" $a 2>&1
			echo "rc=$?"
		done
	} | sed -e "s/\b$pid\b/PID/g" >"$out"
	exec {HOLD[1]}>&-
	wait "$hp" 2>/dev/null
	tool "$b" process-exists "$pid" >>"$out" 2>&1
	echo "after exit rc=$?" >>"$out"
	sed -i -e "s/\b$pid\b/PID/g" "$out"
}

run_sequence() { # run_sequence BASE OUTDIR
	local b=$1 out=$2 i=0 c
	mkdir -p "$out"
	for c in "${COMMANDS[@]}"; do
		if [[ $c == @writemany* ]]; then
			# @writemany DB N: N writekey calls (keyNN = valueNN), one output file
			# with every exit status.
			read -r _ db n <<<"$c"
			for j in $(seq 1 "$n"); do
				tool "$b" writekey "$db" "bulk$j" "value$j" 2>&1
				echo "rc=$?"
			done >"$out/$(printf %03d $i)"
		else
			# Split like the shell would, so quoted words and escapes in the
			# command list reach the tool as written.
			eval "set -- $c"
			{ tool "$b" "$@" 2>&1; echo "rc=$?"; } | normalise "$b" "$c" >"$out/$(printf %03d $i)"
		fi
		i=$((i + 1))
	done
}

DEB=$RUN/debian/node
OUR=$RUN/ours/node
make_base "$DEB"
make_base "$OUR"

# --- phase 1: Debian's ctdbd -------------------------------------------------
have_ref=false
if [ ! -x "$DEBIAN_CTDBD" ]; then
	fail "reference: Debian's ctdbd ($DEBIAN_CTDBD) not installed"
elif port_busy; then
	fail "reference: port 4379 already in use on this host"
elif ! start_daemon "$DEBIAN_CTDBD" "$DEB"; then
	fail "reference: Debian's ctdbd did not start" "$(cat "$DEB/start.out" "$DEB/log.ctdb" 2>/dev/null | tail -20)"
elif ! wait_ready "$DEB"; then
	fail "reference: Debian's ctdbd never became ready" "$(tail -20 "$DEB/log.ctdb")"
	stop_daemon "$DEB"
else
	run_sequence "$DEB" "$RUN/out.debian"
	run_probes "$DEB" "$RUN/out.debian"
	process_exists "$DEB" "$RUN/out.debian/process-exists"
	if wanted raw-unknown-control-debian; then
		if $PY "$HERE/rawclient.py" "$DEB/run/ctdbd.socket" unknown >/dev/null 2>&1; then
			pass raw-unknown-control-debian
		else fail raw-unknown-control-debian; fi
	fi
	if stop_daemon "$DEB"; then have_ref=true; else fail "reference: Debian's ctdbd did not stop"; fi
fi

# --- phase 2: our ctdbd --------------------------------------------------------
for i in $(seq 1 50); do port_busy || break; sleep 0.2; done
if ! start_daemon "$CTDBD_BIN" "$OUR"; then
	fail "ours: ctdbd did not start" "$(cat "$OUR/start.out" "$OUR/log.ctdb" 2>/dev/null | tail -20)"
	finish
fi
if wanted startup-ready; then
	if wait_ready "$OUR"; then pass startup-ready; else fail startup-ready "$(tail -20 "$OUR/log.ctdb")"; fi
fi
OUR_PID=$(cat "$OUR/run/ctdbd.pid")
# Phase 3's Debian node (another loopback address, so it can run beside ours)
# starts now and goes through its first recovery while the sequence runs.
CROSS_DEB=$RUN/debian/cross
cross_deb_started=false
if $have_ref && wanted "compare: cross restore and shutdown"; then
	make_base "$CROSS_DEB" 127.0.0.2
	start_daemon "$DEBIAN_CTDBD" "$CROSS_DEB" && cross_deb_started=true
fi
# Likewise the Debian node the clustered smbd runs on first (127.0.0.4).
SMB_DEB=$RUN/debian/smbnode
smb_deb_started=false
if [ -x "$DEBIAN_CTDBD" ] && smbd_wanted; then
	smbd_make_node "$SMB_DEB" 127.0.0.4
	start_daemon "$DEBIAN_CTDBD" "$SMB_DEB" && smb_deb_started=true
fi

if wanted daemonised-pidfile; then
	# The pid file names a live process that is not our child shell's job, and
	# `ctdb getpid` reports the same pid.
	got=$(tool "$OUR" getpid 2>&1)
	if kill -0 "$OUR_PID" 2>/dev/null && [ "$got" = "$OUR_PID" ]; then
		pass daemonised-pidfile
	else fail daemonised-pidfile "pidfile=$OUR_PID getpid=$got"; fi
fi

if wanted second-instance-refused; then
	out=$(cd "$OUR" && CTDB_TEST_MODE=yes CTDB_BASE=$OUR "$CTDBD_BIN" --interactive 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && [ "$(cat "$OUR/run/ctdbd.pid")" = "$OUR_PID" ] && tool "$OUR" ping >/dev/null 2>&1; then
		pass second-instance-refused
	else fail second-instance-refused "rc=$rc $out"; fi
fi

run_sequence "$OUR" "$RUN/out.ours"
run_probes "$OUR" "$RUN/out.ours"
process_exists "$OUR" "$RUN/out.ours/process-exists"

i=0
for c in "${COMMANDS[@]}"; do
	name="compare: ctdb $c"
	f=$(printf %03d $i)
	i=$((i + 1))
	wanted "$name" || continue
	if ! $have_ref; then
		fail "$name (no reference output)"
		continue
	fi
	if d=$(diff -u "$RUN/out.debian/$f" "$RUN/out.ours/$f"); then
		pass "$name"
	else
		fail "$name" "$d"
	fi
done

for pr in "${PROBES[@]}"; do
	name="compare: raw ${pr%% *}"
	wanted "$name" || continue
	if ! $have_ref; then
		fail "$name (no reference output)"
		continue
	fi
	if d=$(diff -u "$RUN/out.debian/probe-${pr%% *}" "$RUN/out.ours/probe-${pr%% *}"); then
		pass "$name"
	else
		fail "$name" "$d"
	fi
done

if wanted "compare: process-exists with a live client"; then
	if ! $have_ref; then
		fail "compare: process-exists with a live client (no reference output)"
	elif d=$(diff -u "$RUN/out.debian/process-exists" "$RUN/out.ours/process-exists"); then
		pass "compare: process-exists with a live client"
	else fail "compare: process-exists with a live client" "$d"; fi
fi

if wanted "backup files identical"; then
	# The backup files the tool wrote from each daemon's databases are the
	# same bytes, apart from the header's timestamp and each record buffer's
	# db_id (the tool leaves that field of its state uninitialised).
	if ! $have_ref; then
		fail "backup files identical (no reference output)"
	elif out=$($PY - "$DEB" "$OUR" <<'PYEOF' 2>&1
import struct, sys
def canon(path):
    b = bytearray(open(path, "rb").read())
    hdr = 8 * 5 + 64                      # version, timestamp, flags, nbuf, nrec, name
    ver, _, _, nbuf, nrec = struct.unpack_from("<5Q", b, 0)
    assert ver == 3, (path, ver)
    b[8:16] = bytes(8)
    off = hdr
    for _ in range(nbuf):
        b[off:off + 4] = bytes(4)
        buflen = struct.unpack_from("<Q", b, off + 8)[0]
        off += 16 + buflen
    assert off == len(b), (path, off, len(b))
    return bytes(b), nrec
for db in ("vol", "pers", "rep"):
    a, n = canon(f"{sys.argv[1]}/{db}.bak")
    c, _ = canon(f"{sys.argv[2]}/{db}.bak")
    if a != c:
        sys.exit(f"{db}.bak differs")
    print(db, n, "records")
PYEOF
	); then
		pass "backup files identical"
	else fail "backup files identical" "$out"; fi
fi

if wanted db-files; then
	# The attached databases exist where getdbmap says, and our volatile db
	# opens with the flags DB_OPEN_FLAGS reports (the tool already did that
	# through Debian's libtdb during attach; here we check the files).
	ok=true
	for f in db/volatile/test_volatile.tdb.0 db/persistent/test_persistent.tdb.0 db/volatile/test_replicated.tdb.0; do
		[ -s "$OUR/$f" ] || { ok=false; echo "missing $f"; }
	done >"$RUN/dbfiles.out"
	if $ok; then pass db-files; else fail db-files "$(cat "$RUN/dbfiles.out")"; fi
fi

for probe in garbage hugelen unknown survivor; do
	name="raw-$probe"
	wanted "$name" || continue
	if out=$($PY "$HERE/rawclient.py" "$OUR/run/ctdbd.socket" "$probe" 2>&1) && tool "$OUR" ping >/dev/null 2>&1; then
		pass "$name"
	else fail "$name" "$out"; fi
done

if wanted leader-message; then
	# `ctdb leader` learns the leader only from the SRVID_LEADER message; with
	# no message it would wait 10 s and print UNKNOWN.
	start=$(date +%s)
	out=$(tool "$OUR" leader 2>&1)
	el=$(($(date +%s) - start))
	if [ "$out" = "0" ] && [ "$el" -lt 3 ]; then pass leader-message; else fail leader-message "out=$out after ${el}s"; fi
fi

if wanted statistics-counters; then
	# The counters masked in the comparison (Debian's recovery daemon adds to
	# them), checked exactly on our daemon: a reset, then a known workload.
	xs() { tool "$OUR" -X statistics | $PY -c '
import sys
rows = [l.rstrip("|\n").split("|") for l in sys.stdin if l.strip()]
d = dict(zip(rows[0], rows[1]))
print(" ".join(f"{k}={d[k]}" for k in sys.argv[1:]))' "$@"; }
	tool "$OUR" statisticsreset
	a=$(xs num_clients client_packets_recv client.req_control client.req_call node.req_control node.reply_control node_packets_sent total_calls num_call_latency)
	for j in 1 2 3; do tool "$OUR" writekey test_volatile.tdb "sc$j" v >/dev/null; done
	tool "$OUR" pstore test_persistent.tdb sc v >/dev/null
	coproc HOLD2 { $PY "$HERE/rawclient.py" "$OUR/run/ctdbd.socket" hold 0xAE00000000000003 0; }
	read -r -t 10 _ <&"${HOLD2[0]}"
	b=$(xs num_clients client.req_call total_calls num_call_latency pending_calls childwrite_calls pending_childwrite_calls num_childwrite_latency)
	exec {HOLD2[1]}>&-
	wait "$HOLD2_PID" 2>/dev/null
	# After the reset only the statistics tool has talked: its own controls
	# (every one a local node control with a reply, except the STATISTICS
	# reply itself, which is built before it is counted) plus the reset's
	# reply.  Then 3 writekeys are 3 record calls (the pstore's g_lock record
	# is already local, so it needs none), one TRANS3_COMMIT is one child
	# write, and the holding raw client makes two clients.  The recovery
	# daemon (a thread of ours that is a client of the socket, as Samba's
	# ctdb_recoverd is) is one more client, and its timer-driven controls and
	# leader broadcasts add to the packet counts as Debian's do: every
	# control is still answered, so only that equality is checked.
	want_a_re='^num_clients=2 client_packets_recv=([0-9]+) client.req_control=([0-9]+) client.req_call=0 node.req_control=\2 node.reply_control=\2 node_packets_sent=[0-9]+ total_calls=0 num_call_latency=0$'
	want_b='num_clients=3 client.req_call=3 total_calls=3 num_call_latency=3 pending_calls=0 childwrite_calls=1 pending_childwrite_calls=0 num_childwrite_latency=1'
	if [[ $a =~ $want_a_re ]] && [ "$b" = "$want_b" ]; then
		pass statistics-counters
	else fail statistics-counters "after reset: $a
after workload: $b
wanted: $want_b"; fi
fi

if wanted stop-by-pid; then
	if stop_daemon "$OUR" && [ ! -e "$OUR/run/ctdbd.socket" ] && [ ! -e "$OUR/run/ctdbd.pid" ]; then
		pass stop-by-pid
	else fail stop-by-pid "$(ls -la "$OUR/run")"; fi
else
	stop_daemon "$OUR"
fi

# --- phase 3: cross restore and the SHUTDOWN control -------------------------
# A fresh node of each kind restores the other daemon's backups (Debian's
# ctdbd gets the files written against ours and the other way round), dumps
# the restored databases, and is then stopped with `ctdb shutdown`: exit
# status, output, and what is left in run/ (Debian's daemon removes its pid
# file and leaves the socket file behind) are compared.
cross_and_shutdown() { # cross_and_shutdown BASE FROM OUTFILE (daemon started)
	local b=$1 from=$2 out=$3 pid j
	if ! wait_ready "$b"; then
		echo "did not become ready" >"$out"
		stop_daemon "$b"
		return 1
	fi
	pid=$(cat "$b/run/ctdbd.pid")
	{
		for db in vol pers; do
			tool "$b" restoredb "$from/$db.bak" 2>&1
			echo "rc=$?"
		done
		for db in test_volatile.tdb test_persistent.tdb; do
			tool "$b" cattdb "$db" 2>&1
			echo "rc=$?"
			tool "$b" getdbseqnum "$db" 2>&1
			echo "rc=$?"
		done
		tool "$b" getdbmap 2>&1
		tool "$b" shutdown 2>&1
		echo "shutdown rc=$?"
		for j in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && echo "daemon still running"
		echo "run/: $(cd "$b/run" && ls | grep -v '^eventd\.' | tr '\n' ' ')"
		tool "$b" shutdown 2>&1
		echo "second shutdown rc=$?"
	} | normalise "$b" restoredb >"$out"
	if kill -0 "$pid" 2>/dev/null; then kill "$pid"; fi
	return 0
}

if wanted "compare: cross restore and shutdown"; then
	name="compare: cross restore and shutdown"
	if ! $have_ref; then
		fail "$name (no reference output)"
	elif ! $cross_deb_started; then
		fail "$name" "Debian's second node did not start: $(tail -5 "$CROSS_DEB/log.ctdb" 2>/dev/null)"
	else
		cross_and_shutdown "$CROSS_DEB" "$OUR" "$RUN/cross.debian"
		b=$RUN/ours/cross
		make_base "$b" 127.0.0.3
		if start_daemon "$CTDBD_BIN" "$b"; then
			cross_and_shutdown "$b" "$DEB" "$RUN/cross.ours"
		else echo "did not start" >"$RUN/cross.ours"; fi
		if ! grep -q "^Database test_volatile.tdb restored" "$RUN/cross.ours"; then
			fail "$name" "$(cat "$RUN/cross.ours")"
		elif d=$(diff -u "$RUN/cross.debian" "$RUN/cross.ours"); then
			pass "$name"
		else fail "$name" "$d"; fi
	fi
fi

# --- phase 3b: vacuuming ---------------------------------------------------
# A fresh node of each kind (127.0.0.6 Debian's, .7 ours, running side by side)
# with VacuumInterval=2 and VacuumFastPathCount=2, so the first two runs take
# the fast path (the delete queue) and the third scans the whole file.  Right
# after the attach, within the first interval: keys written, some deleted
# again (deletekey: empty record plus SCHEDULE_FOR_DELETION), one deleted and
# refilled, and two empty records stored straight into the file with tstore
# (the daemon never hears of them): "orphan" with this node as dmaster, which
# only the full scan finds, and "foreign" naming node 1 as dmaster, which is
# never this node's to delete.  Once the orphan is gone (polled, 25 s at
# most), cattdb / catdb / tdbdump of the file are compared, and on each
# daemon the deleted keys must be gone from the file while the kept ones stay.
VAC_NAMES=(
	"vacuum-debian: emptied records deleted"
	"vacuum-ours: emptied records deleted"
	"vacuum-debian: vacuum runs counted"
	"vacuum-ours: vacuum runs counted"
	"vacuum-debian: DB_VACUUM deletes"
	"vacuum-ours: DB_VACUUM deletes"
	"compare: vacuum cattdb"
	"compare: vacuum catdb"
	"compare: vacuum tdbdump"
	"compare: vacuum dbvacuum"
	"compare: vacuum cattdb-before-dbvacuum"
	"compare: vacuum cattdb-after-dbvacuum"
)
vacuum_wanted() {
	local n
	for n in "${VAC_NAMES[@]}"; do wanted "$n" && return 0; done
	return 1
}

vacuum_make_node() { # vacuum_make_node DIR ADDRESS
	make_base "$1" "$2"
	printf '%s\n' VacuumInterval=2 VacuumFastPathCount=2 >"$1/ctdb.tunables"
	# Without mutexes, so that `ctdb tstore` (plain tdb_open, no flags) can
	# open the volatile file.
	sed -i 's/^\[database\]$/&\n\ttdb mutexes = false/' "$1/ctdb.conf"
}

# vacuum_steps BASE OUTDIR: the writes, then polls until the full scan ran.
vacuum_steps() {
	local b=$1 out=$2 path i
	mkdir -p "$out"
	path=$b/db/volatile/vac.tdb.0
	{
		tool "$b" attach vac.tdb
		tool "$b" writekey vac.tdb gone1 v1
		tool "$b" writekey vac.tdb gone2 v2
		tool "$b" writekey vac.tdb kept kv
		tool "$b" writekey vac.tdb refilled r1
		tool "$b" deletekey vac.tdb gone1
		tool "$b" deletekey vac.tdb gone2
		tool "$b" deletekey vac.tdb never
		tool "$b" deletekey vac.tdb refilled
		tool "$b" writekey vac.tdb refilled r2
		tool "$b" tstore "$path" orphan "" 7 0
		tool "$b" tstore "$path" foreign "" 3 1
	} >"$out/steps" 2>&1
	echo "steps done in ${SECONDS}s" >>"$out/steps"
	for i in $(seq 1 50); do
		grep -qE '^key\([0-9]+\) = "(gone1|gone2|never|orphan)"' <<<"$(tool "$b" cattdb vac.tdb 2>&1)" || break
		sleep 0.5
	done
	tool "$b" cattdb vac.tdb >"$out/cattdb" 2>&1
	echo "rc=$?" >>"$out/cattdb"
	tool "$b" catdb vac.tdb >"$out/catdb" 2>&1
	echo "rc=$?" >>"$out/catdb"
	tdbdump "$path" 2>&1 | sed -E -e 's/^data\(([0-9]+)\) = .*/data(\1) = .../' >"$out/tdbdump.raw"
	# One record per line, sorted: hash order depends on nothing but the key,
	# but keep the comparison independent of the file's free-space layout.
	awk '/^\{/ { r = "" } /^(key|data)/ { r = r $0 " " } /^\}/ { print r }' "$out/tdbdump.raw" | sort >"$out/tdbdump"
	tool "$b" dbstatistics vac.tdb >"$out/dbstatistics" 2>&1
	# DB_VACUUM on demand.  First the timer is parked: raising VacuumInterval
	# makes the next timer event wait the difference instead of running.
	tool "$b" setvar VacuumInterval 600 >>"$out/steps" 2>&1
	sleep 2.5
	{
		tool "$b" writekey vac.tdb late lv
		tool "$b" deletekey vac.tdb late
	} >>"$out/steps" 2>&1
	{ tool "$b" cattdb vac.tdb 2>&1; echo "rc=$?"; } >"$out/cattdb-before-dbvacuum"
	{ timeout 30 $PY "$HERE/rawclient.py" "$b/run/ctdbd.socket" vacuum vac.tdb 2>&1; echo "rc=$?"; } >"$out/dbvacuum"
	{ tool "$b" cattdb vac.tdb 2>&1; echo "rc=$?"; } >"$out/cattdb-after-dbvacuum"
}

# vacuum_check KIND OUTDIR: the deletion rule's outcome, on one daemon.
vacuum_check() {
	local kind=$1 out=$2 k problems="" n
	for k in gone1 gone2 never orphan; do
		grep -q "^key([0-9]*) = \"$k\"" "$out/cattdb" && problems+="cattdb still has $k; "
		grep -q "key([0-9]*) = \"$k\"" "$out/tdbdump" && problems+="file still has $k; "
	done
	for k in kept refilled foreign; do
		grep -q "^key([0-9]*) = \"$k\"" "$out/cattdb" || problems+="cattdb lost $k; "
		grep -q "key([0-9]*) = \"$k\"" "$out/tdbdump" || problems+="file lost $k; "
	done
	if wanted "vacuum-$kind: emptied records deleted"; then
		if [ -z "$problems" ]; then pass "vacuum-$kind: emptied records deleted"
		else fail "vacuum-$kind: emptied records deleted" "$problems
$(cat "$out/steps" "$out/cattdb")"; fi
	fi
	# At least the two fast runs and the full one (the count of runs is the
	# "out of N" of vacuum_latency).
	if wanted "vacuum-$kind: DB_VACUUM deletes"; then
		if grep -q '^key([0-9]*) = "late"' "$out/cattdb-before-dbvacuum" &&
			! grep -q '^key([0-9]*) = "late"' "$out/cattdb-after-dbvacuum" &&
			grep -q '^db_vacuum fast: 0$' "$out/dbvacuum"; then
			pass "vacuum-$kind: DB_VACUUM deletes"
		else fail "vacuum-$kind: DB_VACUUM deletes" "$(cat "$out/cattdb-before-dbvacuum" "$out/dbvacuum" "$out/cattdb-after-dbvacuum")"; fi
	fi
	n=$(sed -nE 's/^ *vacuum_latency .* out of ([0-9]+)$/\1/p' "$out/dbstatistics")
	if wanted "vacuum-$kind: vacuum runs counted"; then
		if [ "${n:-0}" -ge 3 ]; then pass "vacuum-$kind: vacuum runs counted"
		else fail "vacuum-$kind: vacuum runs counted" "$(cat "$out/dbstatistics")"; fi
	fi
}

if vacuum_wanted; then
	VAC_DEB=$RUN/debian/vacnode
	VAC_OUR=$RUN/ours/vacnode
	vacuum_make_node "$VAC_DEB" 127.0.0.6
	vacuum_make_node "$VAC_OUR" 127.0.0.7
	vac_deb=false
	vac_our=false
	if [ -x "$DEBIAN_CTDBD" ] && start_daemon "$DEBIAN_CTDBD" "$VAC_DEB"; then vac_deb=true; fi
	start_daemon "$CTDBD_BIN" "$VAC_OUR" && vac_our=true
	$vac_deb && { wait_ready "$VAC_DEB" || vac_deb=false; }
	$vac_our && { wait_ready "$VAC_OUR" || vac_our=false; }
	# Both sequences at once (each has its own node and timer).
	$vac_deb && { SECONDS=0; vacuum_steps "$VAC_DEB" "$RUN/vac.debian"; } &
	vd=$!
	$vac_our && { SECONDS=0; vacuum_steps "$VAC_OUR" "$RUN/vac.ours"; } &
	vo=$!
	wait "$vd" "$vo"
	stop_daemon "$VAC_DEB"
	stop_daemon "$VAC_OUR"
	if $vac_deb; then vacuum_check debian "$RUN/vac.debian"
	else
		for n in "${VAC_NAMES[@]}"; do wanted "$n" && [[ $n != vacuum-ours* ]] && fail "$n (Debian's node did not start)" "$(tail -5 "$VAC_DEB/log.ctdb" 2>/dev/null)"; done
	fi
	if $vac_our; then vacuum_check ours "$RUN/vac.ours"
	else
		for n in "${VAC_NAMES[@]}"; do wanted "$n" && [[ $n == vacuum-ours* ]] && fail "$n (our node did not start)" "$(tail -5 "$VAC_OUR/log.ctdb" 2>/dev/null)"; done
	fi
	if $vac_deb && $vac_our; then
		for f in cattdb catdb tdbdump dbvacuum cattdb-before-dbvacuum cattdb-after-dbvacuum; do
			name="compare: vacuum $f"
			wanted "$name" || continue
			if d=$(diff -u "$RUN/vac.debian/$f" "$RUN/vac.ours/$f"); then pass "$name"
			else fail "$name" "$d"; fi
		done
	else
		for f in cattdb catdb tdbdump dbvacuum cattdb-before-dbvacuum cattdb-after-dbvacuum; do
			wanted "compare: vacuum $f" && fail "compare: vacuum $f (a node did not start)"
		done
	fi
fi

# --- phase 3c: the controls a recovery run sends, raw ------------------------
# A fresh node of each kind (127.0.0.8 Debian's, .10 ours).  Once the node is
# ready, RecoverInterval is raised so that Debian's recovery daemon does not
# start a recovery of its own while the probe has the node in recovery mode.
# The tool writes a volatile and a persistent database, then
# `rawclient.py recovery` sends SET_RECMODE, SETVNNMAP, DB_FREEZE,
# DB_TRANSACTION_*, DB_PULL, GET_DB_SEQNUM, MODIFY_FLAGS, FREEZE,
# START/END_RECOVERY... (good and bad input, records pulled listed) and the
# transcripts, `ctdb status` and `ctdb uptime` after it must be the same.
REC_NAMES=("recovery-probe: debian ran" "recovery-probe: ours ran" "compare: recovery-probe")
recprobe_steps() { # recprobe_steps BASE OUTFILE
	local b=$1 out=$2
	{
		tool "$b" setvar RecoverInterval 600
		sleep 2
		tool "$b" attach rv.tdb
		tool "$b" attach rp.tdb persistent
		tool "$b" writekey rv.tdb k1 v1
		tool "$b" writekey rv.tdb k2 v2
		tool "$b" writekey rv.tdb k1 v1b
		tool "$b" pstore rp.tdb pk1 pv1
		tool "$b" pstore rp.tdb pk2 pv2
	} >"$out.steps" 2>&1
	{
		timeout 60 $PY "$HERE/rawclient.py" "$b/run/ctdbd.socket" recovery rv.tdb rp.tdb 2>&1
		echo "rc=$?"
		tool "$b" status 2>&1 | sed -E -e 's/^Generation:[0-9]+$/Generation:G/' \
			-e 's/^Leader:.*/Leader:L/' -e 's/127\.0\.0\.[0-9]+ +/ADDR /'
		tool "$b" uptime 2>&1 | sed -e 's/[0-9]/N/g'
	} >"$out"
}
recprobe_wanted() {
	local n
	for n in "${REC_NAMES[@]}"; do wanted "$n" && return 0; done
	return 1
}
if recprobe_wanted; then
	REC_DEB=$RUN/debian/recnode
	REC_OUR=$RUN/ours/recnode
	make_base "$REC_DEB" 127.0.0.8
	make_base "$REC_OUR" 127.0.0.10
	rec_deb=false
	rec_our=false
	if [ -x "$DEBIAN_CTDBD" ] && start_daemon "$DEBIAN_CTDBD" "$REC_DEB"; then rec_deb=true; fi
	start_daemon "$CTDBD_BIN" "$REC_OUR" && rec_our=true
	$rec_deb && { wait_ready "$REC_DEB" || rec_deb=false; }
	$rec_our && { wait_ready "$REC_OUR" || rec_our=false; }
	$rec_deb && recprobe_steps "$REC_DEB" "$RUN/recprobe.debian" &
	rd=$!
	$rec_our && recprobe_steps "$REC_OUR" "$RUN/recprobe.ours" &
	ro=$!
	wait "$rd" "$ro"
	stop_daemon "$REC_DEB"
	stop_daemon "$REC_OUR"
	for kind in debian ours; do
		name="recovery-probe: $kind ran"
		wanted "$name" || continue
		if grep -q '^rc=0$' "$RUN/recprobe.$kind" 2>/dev/null &&
			grep -q '^set_recmode normal after freeze: 0$' "$RUN/recprobe.$kind"; then pass "$name"
		else fail "$name" "$(cat "$RUN/recprobe.$kind" "$RUN/recprobe.$kind.steps" 2>&1 | tail -20)"; fi
	done
	if wanted "compare: recovery-probe"; then
		if ! $rec_deb || ! $rec_our; then fail "compare: recovery-probe (a node did not start)"
		elif d=$(diff -u "$RUN/recprobe.debian" "$RUN/recprobe.ours"); then pass "compare: recovery-probe"
		else fail "compare: recovery-probe" "$d"; fi
	fi
fi

# --- phase 4: a clustered smbd on each daemon (see smbd.sh) -------------------
if smbd_wanted; then
	smbd_suite "$SMB_DEB" "$smb_deb_started"
fi

# --- configuration errors ----------------------------------------------------
# bad_config NAME CONF-BODY EXPECTED-MESSAGE: our ctdbd must exit non-zero,
# print the message on stderr, and leave no daemon or socket behind.
bad_config() {
	local name="bad-config: $1" body=$2 want=$3 b out rc
	wanted "$name" || return 0
	b=$RUN/bad.$PASSED.$FAILED
	make_base "$b"
	printf '%b\n' "$body" >>"$b/ctdb.conf"
	out=$(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 10 "$CTDBD_BIN" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qF -- "$want" <<<"$out" && [ ! -e "$b/run/ctdbd.socket" ]; then
		pass "$name"
	else
		fail "$name" "rc=$rc output: $out"
		[ -s "$b/run/ctdbd.pid" ] && stop_daemon "$b"
	fi
}
bad_config "unknown key" '[cluster]\n\tbogus key = 1' 'conf: unknown option [cluster] -> "bogus key"'
bad_config "unknown section" '[bogus]\n\tx = 1' 'conf: unknown section [bogus]'
bad_config "invalid boolean" '[legacy]\n\tstart as stopped = maybe' 'conf: invalid value [legacy] -> "start as stopped" = "maybe"'
bad_config "invalid node address" '[cluster]\n\tnode address = 1.2.3.x' 'Invalid value for [cluster] -> node address = 1.2.3.x'
bad_config "invalid log level" '[legacy]\n\tscript log level = LOUD' 'conf: validation for option "script log level" failed'
bad_config "missing db directory" '[database]\n\tstate database directory = /nonexistent/ctdb' 'state database directory "/nonexistent/ctdb" does not exist'
bad_config "invalid transport" '[cluster]\n\ttransport = ib' 'Invalid value for [cluster] -> transport = ib'

if wanted "bad-config: tunables"; then
	b=$RUN/badtun
	make_base "$b"
	echo "NoSuchTunable=1" >"$b/ctdb.tunables"
	out=$(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 10 "$CTDBD_BIN" --interactive 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qF 'Unknown tunable "NoSuchTunable"' <<<"$out"; then
		pass "bad-config: tunables"
	else fail "bad-config: tunables" "rc=$rc $out"; fi
fi

if wanted "bad-config: node address not in nodes"; then
	b=$RUN/badnode
	make_base "$b"
	sed -i 's/node address = 127.0.0.1/node address = 127.0.0.9/' "$b/ctdb.conf"
	out=$(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 10 "$CTDBD_BIN" --interactive 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qF 'Node address 127.0.0.9 is not in the nodes file' <<<"$out"; then
		pass "bad-config: node address not in nodes"
	else fail "bad-config: node address not in nodes" "rc=$rc $out"; fi
fi

finish
