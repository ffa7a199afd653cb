#!/usr/bin/env bash
# Real Samba programs from Debian's packages on our libtdb.so.1, compared in
# the same run with Debian's libtdb1 (/usr/lib/x86_64-linux-gnu/libtdb.so.1).
#
#   OURS_LIBDIR=target/release compat-tests/samba/run.sh [FILTER]
#
# Sections (FILTER matches test names, e.g. "smbd", "ldb", "mix"):
#   smbd  smbd standalone on 127.0.0.1 (high port), pdbedit, smbclient,
#         byte-range locks, smbpasswd, registry, restart, tdb_check
#   ldb   ldb-tools on tdb:// with each library, outputs must be identical
#   mix   Debian's and our libtdb hammering one file, fcntl and mutex mode
# Environment:
#   OURS_LIBDIR  directory with our libtdb.so.1 (default: <repo>/target/release)
#   MIX_SECS     duration of each mixed-load run (default 60, all run at once)
#   SMB_PORT     first port to try for smbd (default 4450; next free one is used)
#   SMB_USER     existing unix account to add to passdb (default: daemon)
#   LDB_ENTRIES  number of generated ldb entries (default 3000)
#   COMPAT_KEEP  keep the temporary directory
#   NO_INSTALL   do not apt-get install missing packages
# Prints "PASS name"/"FAIL name" per test and "N passed, M failed" at the end;
# exits non-zero if anything failed.  Takes about MIX_SECS + 40 seconds.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/../ctdb/lib.sh"
OURS_LIBDIR=${OURS_LIBDIR:-$ROOT/target/release}
FILTER=${1:-}
MIX_SECS=${MIX_SECS:-60}
SMB_PORT=${SMB_PORT:-4450}
SMB_USER=${SMB_USER:-daemon}
LDB_ENTRIES=${LDB_ENTRIES:-3000}
DEB_LIB=/usr/lib/x86_64-linux-gnu/libtdb.so.1
CC=${CC:-gcc}

OURS_LIBDIR=$(cd "$OURS_LIBDIR" 2>/dev/null && pwd) || OURS_LIBDIR=""
if [ -z "$OURS_LIBDIR" ] || [ ! -e "$OURS_LIBDIR/libtdb.so.1" ]; then
	echo "FAIL samba.setup: no libtdb.so.1 in OURS_LIBDIR"
	FAILED=1
	finish
fi
OURS_SO=$(readlink -f "$OURS_LIBDIR/libtdb.so.1")

RUN=$(new_run_dir compat-samba)
chmod 755 "$RUN"
LOGS=$RUN/logs
mkdir -p "$LOGS"
BGPIDS=()

# Kill a process and wait for it (it must be our child).
stop_pid() {
	local p=$1 i
	kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		# a zombie child counts as gone
		[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}
# Processes whose command line names our temporary directory: smbd's own
# children (smbd-notifyd, cleanupd, per-connection smbd).  Only we start those.
our_stragglers() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = $$ ] && continue
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "$RUN/" && echo "$p"
	done
}
cleanup() {
	local p
	for p in "${BGPIDS[@]:-}"; do [ -n "$p" ] && stop_pid "$p"; done
	for p in $(our_stragglers); do kill -KILL "$p" 2>/dev/null; done
	remove_run
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# envcmd ours|deb: ENVC=(env ...) to start a background command with that
# libtdb, so that $! is the program's own pid (env execs it)
envcmd() {
	if [ "$1" = ours ]; then
		ENVC=(env "LD_LIBRARY_PATH=$OURS_LIBDIR")
	else
		ENVC=(env -u LD_LIBRARY_PATH)
	fi
}
# lib ours|deb CMD...: run CMD with that libtdb
lib() {
	local which=$1; shift
	if [ "$which" = ours ]; then
		LD_LIBRARY_PATH="$OURS_LIBDIR" "$@"
	else
		env -u LD_LIBRARY_PATH "$@"
	fi
}

want() { [ -z "$FILTER" ] || [[ "$1" == *$FILTER* ]]; }
# t NAME FUNCTION ARGS...: run one test; its output goes to a log shown on failure
t() {
	local name=$1; shift
	want "$name" || return 0
	local log="$LOGS/$name.log"
	if "$@" >"$log" 2>&1; then
		echo "PASS $name"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $name"
		sed 's/^/    /' "$log" | head -n 60
		FAILED=$((FAILED + 1))
	fi
}
fail_all() { # mark tests that cannot run
	local why=$1 n; shift
	for n in "$@"; do
		want "$n" || continue
		echo "FAIL $n"
		echo "    $why"
		FAILED=$((FAILED + 1))
	done
}
# same_output A B: diff two files, show the diff
same_output() {
	if cmp -s "$1" "$2"; then return 0; fi
	echo "outputs differ: $1 (deb) vs $2 (ours)"
	diff -u "$1" "$2" | head -n 80
	return 1
}

# ---- packages ----
need_bins=(smbd smbclient pdbedit smbpasswd smbstatus net ldbadd ldbsearch ldbmodify ldbdel ldbrename tdbtool tdbdump)
missing=()
for b in "${need_bins[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
if [ ${#missing[@]} -gt 0 ] && [ -z "${NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
		samba smbclient ldb-tools tdb-tools python3-tdb libtdb1 >"$LOGS/apt.log" 2>&1
	missing=()
	for b in "${need_bins[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
fi
if [ ${#missing[@]} -gt 0 ] || [ ! -e "$DEB_LIB" ]; then
	echo "FAIL samba.setup: missing ${missing[*]} ${DEB_LIB}"
	FAILED=1
	finish
fi

T_START=$SECONDS

# =====================================================================
# smbd
# =====================================================================
SMB=$RUN/smb
CONF=$SMB/smb.conf
SMBD_PID=
PASS1=Tdb-Compat-1
PASS2=Tdb-Compat-2

write_conf() {
	smb_state_dirs "$SMB"
	mkdir -p "$SMB/share" "$SMB/regshare"
	chmod 1777 "$SMB/share" "$SMB/regshare"
	chmod 755 "$SMB"
	cat >"$CONF" <<EOF
[global]
	server role = standalone server
	workgroup = TDBCOMPAT
	netbios name = TDBCOMPAT
	smb ports = $PORT
	interfaces = lo
	bind interfaces only = yes
	disable netbios = yes
$(smb_state_conf "$SMB")
	registry shares = yes
	# SMB1 only for smbclient's "posix" + "lock" commands (byte-range lock test)
	server min protocol = NT1
	client min protocol = NT1
	# fail instead of silently falling back to fcntl locks
	dbwrap_tdb_require_mutexes:* = yes
[share]
	path = $SMB/share
	read only = no
EOF
}

start_smbd() {
	# smbd's parent sends SIGTERM to its whole process group when it exits
	# (killkids()), and --no-process-group would leave it in ours: setsid
	# gives it a group of its own (without forking: we are not a group leader).
	envcmd ours
	setsid "${ENVC[@]}" smbd --foreground --no-process-group --configfile="$CONF" -d1 --debug-stdout \
		>>"$SMB/smbd.out" 2>&1 </dev/null &
	SMBD_PID=$!
	BGPIDS+=("$SMBD_PID")
	local i
	for i in $(seq 50); do
		[ "$(cat "/proc/$SMBD_PID/comm" 2>/dev/null)" = smbd ] && break
		sleep 0.05
	done
	if [ "$(cat "/proc/$SMBD_PID/comm" 2>/dev/null)" != smbd ]; then
		echo "pid $SMBD_PID is not smbd"; return 1
	fi
	if [ "$(ps -o pgid= -p "$SMBD_PID" | tr -d ' ')" = "$(ps -o pgid= -p $$ | tr -d ' ')" ]; then
		echo "smbd is in our process group"; stop_pid "$SMBD_PID"; return 1
	fi
	for i in $(seq 150); do
		if ! kill -0 "$SMBD_PID" 2>/dev/null; then
			echo "smbd exited:"; tail -n 20 "$SMB/smbd.out"; return 1
		fi
		if [ -n "$(ss -Htln "sport = :$PORT" 2>/dev/null)" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "smbd does not listen on $PORT after 15s"; tail -n 20 "$SMB/smbd.out"
	return 1
}
stop_smbd() {
	[ -n "$SMBD_PID" ] && stop_pid "$SMBD_PID"
	SMBD_PID=
	local i
	for i in $(seq 50); do
		[ -z "$(our_stragglers)" ] && return 0
		sleep 0.1
	done
	echo "smbd children still running: $(our_stragglers)"
	return 1
}

smbc() { # smbclient against the share as the test user, with our library
	local pass=$1 share=$2; shift 2
	lib ours timeout -k 5 60 smbclient "//127.0.0.1/$share" -p "$PORT" \
		--configfile="$CONF" -U "$SMB_USER%$pass" "$@"
}

maps_ours() { # PID: its maps show our libtdb and not Debian's
	local maps
	maps=$(awk '$6 ~ /libtdb\.so/ {print $6}' "/proc/$1/maps" | sort -u)
	echo "libtdb mapped by $1: $maps"
	grep -qxF "$OURS_SO" <<<"$maps" || { echo "our $OURS_SO not mapped"; return 1; }
	! grep -q "^/usr/lib/x86_64-linux-gnu/libtdb\|^/lib/x86_64-linux-gnu/libtdb" <<<"$maps" ||
		{ echo "Debian's libtdb mapped too"; return 1; }
}

test_smbd_start() {
	start_smbd || return 1
	maps_ours "$SMBD_PID" || return 1
	# the databases smbd opened are there
	local f
	for f in lock/locking.tdb lock/brlock.tdb lock/smbXsrv_session_global.tdb \
		private/secrets.tdb private/passdb.tdb state/registry.tdb; do
		[ -e "$SMB/$f" ] || { echo "$f missing"; return 1; }
	done
}

test_smbd_mutex() {
	# TDB_FEATURE_FLAG_MUTEX in the header (feature_flags at 60, mutex_size at 64)
	local f ff ms
	for f in lock/locking.tdb lock/brlock.tdb lock/smbXsrv_open_global.tdb; do
		read -r ff ms < <(od -An -tu4 -j60 -N8 "$SMB/$f")
		echo "$f feature_flags=$ff mutex_size=$ms"
		[ "$ff" = 1 ] && [ "$ms" -gt 0 ] || { echo "$f is not a mutex tdb"; return 1; }
	done
}

test_pdbedit() {
	printf '%s\n%s\n' "$PASS1" "$PASS1" |
		lib ours timeout 30 pdbedit --configfile="$CONF" -a -u "$SMB_USER" -t || return 1
	lib ours timeout 30 pdbedit --configfile="$CONF" -L >"$SMB/pdb.ours" || return 1
	lib deb timeout 30 pdbedit --configfile="$CONF" -L >"$SMB/pdb.deb" || return 1
	cat "$SMB/pdb.ours"
	grep -q "^$SMB_USER:" "$SMB/pdb.ours" || { echo "user not listed"; return 1; }
	same_output "$SMB/pdb.deb" "$SMB/pdb.ours"
}

test_files() {
	local d=$SMB/files
	mkdir -p "$d"
	head -c 1048576 /dev/urandom >"$d/big.bin"
	printf 'hello from the tdb compat suite\n' >"$d/small.txt"
	smbc "$PASS1" share -c "put $d/big.bin big.bin; put $d/small.txt small.txt; mkdir sub; put $d/small.txt sub/s2.txt" || return 1
	smbc "$PASS1" share -c "ls" >"$d/ls1" || return 1
	cat "$d/ls1"
	grep -q ' big.bin ' "$d/ls1" && grep -q ' small.txt ' "$d/ls1" && grep -q ' sub ' "$d/ls1" ||
		{ echo "ls does not show the files"; return 1; }
	smbc "$PASS1" share -c "get big.bin $d/big.back; get sub/s2.txt $d/s2.back" || return 1
	cmp "$d/big.bin" "$d/big.back" && cmp "$d/small.txt" "$d/s2.back" || return 1
	smbc "$PASS1" share -c "rename small.txt renamed.txt; rm sub/s2.txt; rmdir sub" || return 1
	smbc "$PASS1" share -c "ls" >"$d/ls2" || return 1
	cat "$d/ls2"
	grep -q ' renamed.txt ' "$d/ls2" || { echo "renamed file missing"; return 1; }
	! grep -q ' small.txt \| sub ' "$d/ls2" || { echo "old name or sub still there"; return 1; }
	smbc "$PASS1" share -c "rm renamed.txt" || return 1
	smbc "$PASS1" share -c "ls" | grep -q ' renamed.txt ' && { echo "rm did not remove"; return 1; }
	return 0
}

test_sessions() {
	local d=$SMB/sess n=8 i pids=() rc=0
	mkdir -p "$d"
	for i in $(seq $n); do
		head -c $((100000 + i * 4099)) /dev/urandom >"$d/f$i"
		( smbc "$PASS1" share -c "mkdir s$i; put $d/f$i s$i/f$i; ls s$i/*; get s$i/f$i $d/f$i.back; rename s$i/f$i s$i/g$i; get s$i/g$i $d/g$i.back; rm s$i/g$i; rmdir s$i" \
			>"$d/out$i" 2>&1 ) &
		pids+=($!)
	done
	for i in $(seq $n); do
		wait "${pids[$((i - 1))]}" || { echo "session $i failed:"; cat "$d/out$i"; rc=1; }
		cmp "$d/f$i" "$d/f$i.back" && cmp "$d/f$i" "$d/g$i.back" || rc=1
	done
	# smbstatus sees no leftover sessions/opens afterwards, with either library
	[ $rc = 0 ] && echo "$n concurrent sessions ok"
	return $rc
}

# brlock: client A takes a POSIX byte-range lock (SMB1 unix extensions,
# smbclient's "posix" + "lock" commands); smbstatus -B (both libraries) shows
# it in brlock.tdb; client B gets a lock on a free range at once, while its
# lock on an overlapping range blocks until A unlocks.
# smbclient reads stdin with poll()+fgets(), so feed one line at a time.
waitfor() { # FILE PATTERN [COUNT]: wait until PATTERN appears COUNT times (10s)
	local i
	for i in $(seq 100); do
		[ "$(grep -c -- "$2" "$1")" -ge "${3:-1}" ] && return 0
		sleep 0.1
	done
	echo "timeout waiting for '$2' in $1:"; cat "$1"
	return 1
}
test_brlock() {
	local d=$SMB/brl rc=1 fa fb N M
	mkdir -p "$d"
	printf '0123456789abcdef0123456789abcdef0123456789abcdef\n' >"$d/lockme"
	smbc "$PASS1" share -c "put $d/lockme lockme.txt" >/dev/null || return 1
	mkfifo "$d/a.in" "$d/b.in"
	envcmd ours
	"${ENVC[@]}" timeout -k 5 60 stdbuf -oL -eL smbclient //127.0.0.1/share -p "$PORT" --configfile="$CONF" \
		-U "$SMB_USER%$PASS1" -m NT1 <"$d/a.in" >"$d/a.out" 2>&1 &
	local apid=$!
	exec {fa}>"$d/a.in"
	"${ENVC[@]}" timeout -k 5 60 stdbuf -oL -eL smbclient //127.0.0.1/share -p "$PORT" --configfile="$CONF" \
		-U "$SMB_USER%$PASS1" -m NT1 <"$d/b.in" >"$d/b.out" 2>&1 &
	local bpid=$!
	exec {fb}>"$d/b.in"
	(
		set -e
		echo posix >&$fa; waitfor "$d/a.out" 'CIFS capabilities'
		echo "open lockme.txt" >&$fa; waitfor "$d/a.out" 'fnum'
		N=$(sed -n 's/.*fnum \([0-9]*\).*/\1/p' "$d/a.out")
		echo "lock $N w 0 10" >&$fa; sleep 0.3
		echo pwd >&$fa; waitfor "$d/a.out" 'Current directory'
		grep -q 'lock failed' "$d/a.out" && { echo "A could not lock"; cat "$d/a.out"; exit 1; }
		# both libraries read the lock out of smbd's brlock.tdb
		lib ours timeout 30 smbstatus --configfile="$CONF" -B >"$d/st.ours"
		lib deb timeout 30 smbstatus --configfile="$CONF" -B >"$d/st.deb"
		sed -n '/^Byte range locks:/,$p' "$d/st.ours" >"$d/brl.ours"
		sed -n '/^Byte range locks:/,$p' "$d/st.deb" >"$d/brl.deb"
		cat "$d/brl.ours"
		grep -q ' W .*lockme.txt' "$d/brl.ours" || { echo "smbstatus (ours) does not show the lock"; cat "$d/st.ours"; exit 1; }
		same_output "$d/brl.deb" "$d/brl.ours"
		# the live mutex databases, read by both libraries (tdbdump: TDB_NOLOCK)
		for db in brlock locking; do
			lib deb timeout 30 tdbdump "$SMB/lock/$db.tdb" >"$d/$db.deb"
			lib ours timeout 30 tdbdump "$SMB/lock/$db.tdb" >"$d/$db.ours"
			[ -s "$d/$db.ours" ] || { echo "live $db.tdb is empty"; exit 1; }
			same_output "$d/$db.deb" "$d/$db.ours"
		done
		echo posix >&$fb; waitfor "$d/b.out" 'CIFS capabilities'
		echo "open lockme.txt" >&$fb; waitfor "$d/b.out" 'fnum'
		M=$(sed -n 's/.*fnum \([0-9]*\).*/\1/p' "$d/b.out")
		echo "lock $M w 20 10" >&$fb; sleep 0.3
		echo pwd >&$fb; waitfor "$d/b.out" 'Current directory' 1
		grep -q 'lock failed' "$d/b.out" && { echo "B could not lock a free range"; exit 1; }
		echo "lock $M w 8 10" >&$fb; sleep 0.3
		echo pwd >&$fb
		sleep 2
		if [ "$(grep -c 'Current directory' "$d/b.out")" -ge 2 ]; then
			echo "B's conflicting lock did not wait for A's lock"; cat "$d/b.out"; exit 1
		fi
		echo "B's lock on 0x8-0x18 is waiting for A's lock on 0x0-0x10 (good)"
		echo "unlock $N 0 10" >&$fa
		waitfor "$d/b.out" 'Current directory' 2
		grep -q 'lock failed' "$d/b.out" && { echo "B's lock failed"; cat "$d/b.out"; exit 1; }
		echo "B got its lock after A unlocked"
		echo quit >&$fa; echo quit >&$fb
	)
	rc=$?
	exec {fa}>&- {fb}>&-
	wait "$apid" "$bpid" 2>/dev/null
	stop_pid "$apid"; stop_pid "$bpid"
	return $rc
}

test_smbpasswd() {
	printf '%s\n%s\n' "$PASS2" "$PASS2" |
		lib ours timeout 30 smbpasswd -c "$CONF" -s "$SMB_USER" || return 1
	smbc "$PASS2" share -c ls >/dev/null || { echo "new password rejected"; return 1; }
	if smbc "$PASS1" share -c ls >"$SMB/oldpw.out" 2>&1; then
		echo "old password still accepted"; return 1
	fi
	grep -q 'NT_STATUS_LOGON_FAILURE' "$SMB/oldpw.out" || { cat "$SMB/oldpw.out"; return 1; }
	echo "new password works, old one gives NT_STATUS_LOGON_FAILURE"
}

# registry.tdb (transactions): a key/value and a registry share via net
test_registry() {
	local key='HKLM\Software\TdbCompat'
	lib ours timeout 30 net --configfile="$CONF" registry createkey "$key" || return 1
	lib ours timeout 30 net --configfile="$CONF" registry setvalue "$key" testval sz "value-from-ours" || return 1
	lib deb timeout 30 net --configfile="$CONF" registry setvalue "$key" debval dword 1234 || return 1
	lib ours timeout 30 net --configfile="$CONF" conf addshare regshare "$SMB/regshare" writeable=y || return 1
	lib ours timeout 30 net --configfile="$CONF" registry enumerate "$key" >"$SMB/reg.ours" || return 1
	lib deb timeout 30 net --configfile="$CONF" registry enumerate "$key" >"$SMB/reg.deb" || return 1
	cat "$SMB/reg.ours"
	grep -q 'value-from-ours' "$SMB/reg.ours" && grep -q '1234' "$SMB/reg.ours" || return 1
	same_output "$SMB/reg.deb" "$SMB/reg.ours" || return 1
	lib ours timeout 30 net --configfile="$CONF" conf list >"$SMB/conf.ours" || return 1
	lib deb timeout 30 net --configfile="$CONF" conf list >"$SMB/conf.deb" || return 1
	same_output "$SMB/conf.deb" "$SMB/conf.ours" || return 1
	lib ours timeout 30 net --configfile="$CONF" getlocalsid >"$SMB/sid.ours" || return 1
	lib deb timeout 30 net --configfile="$CONF" getlocalsid >"$SMB/sid.deb" || return 1
	same_output "$SMB/sid.deb" "$SMB/sid.ours" || return 1
	printf 'in the registry share\n' >"$SMB/regfile"
	smbc "$PASS2" regshare -c "put $SMB/regfile r.txt; ls" || return 1
}

# smbd crashes (SIGKILL to all its processes) while a client holds a
# byte-range lock: the stale records stay in brlock.tdb/locking.tdb; the new
# smbd's CLEAR_IF_FIRST open (our library) wipes them, and everything persistent
# (passdb, secrets, registry) is still there.
test_restart() {
	local d=$SMB/crash fa p n
	mkdir -p "$d"
	mkfifo "$d/a.in"
	envcmd ours
	"${ENVC[@]}" timeout -k 5 60 stdbuf -oL -eL smbclient //127.0.0.1/share -p "$PORT" --configfile="$CONF" \
		-U "$SMB_USER%$PASS2" -m NT1 <"$d/a.in" >"$d/a.out" 2>&1 &
	local apid=$!
	exec {fa}>"$d/a.in"
	echo posix >&$fa; waitfor "$d/a.out" 'CIFS capabilities' || return 1
	echo "open lockme.txt" >&$fa; waitfor "$d/a.out" 'fnum' || return 1
	n=$(sed -n 's/.*fnum \([0-9]*\).*/\1/p' "$d/a.out")
	echo "lock $n w 0 20" >&$fa; sleep 0.3
	echo pwd >&$fa; waitfor "$d/a.out" 'Current directory' || return 1
	lib ours timeout 30 tdbdump "$SMB/lock/brlock.tdb" >"$d/brlock.before"
	[ -s "$d/brlock.before" ] || { echo "no lock record before the crash"; return 1; }
	# crash: SIGKILL smbd and its children (not the client) in one go. smbd
	# leads the process group setsid gave it, so one kill of that group hits
	# every smbd process at the same instant: none survives long enough to
	# clean up after the others (smbd-cleanupd would remove the stale lock).
	kill -KILL -- "-$SMBD_PID" 2>/dev/null
	wait "$SMBD_PID" 2>/dev/null
	SMBD_PID=
	exec {fa}>&-
	stop_pid "$apid"
	for p in $(seq 50); do [ -z "$(our_stragglers)" ] && break; sleep 0.1; done
	lib deb timeout 30 tdbdump "$SMB/lock/brlock.tdb" >"$d/brlock.stale"
	[ -s "$d/brlock.stale" ] || { echo "expected a stale brlock record after the crash"; echo "before:"; cat "$d/brlock.before"; echo "client:"; cat "$d/a.out"; ps -ef | grep -F "$RUN/" | grep -v grep; return 1; }
	echo "stale brlock.tdb record after the crash: $(grep -c '^{' "$d/brlock.stale") record(s)"
	start_smbd || return 1
	maps_ours "$SMBD_PID" || return 1
	for db in brlock locking; do
		lib deb timeout 30 tdbdump "$SMB/lock/$db.tdb" >"$d/$db.after"
		[ ! -s "$d/$db.after" ] || { echo "$db.tdb not cleared by CLEAR_IF_FIRST:"; head "$d/$db.after"; return 1; }
	done
	lib deb timeout 30 smbstatus --configfile="$CONF" -B >"$d/status" 2>&1
	grep -q 'lockme.txt' "$d/status" && { echo "stale lock still visible:"; cat "$d/status"; return 1; }
	local before=$SMB/files/restart.bin
	head -c 70000 /dev/urandom >"$before"
	smbc "$PASS2" share -c "put $before after.bin; get after.bin $before.back; get lockme.txt $d/lockme.back" || return 1
	cmp "$before" "$before.back" && cmp "$SMB/brl/lockme" "$d/lockme.back" || return 1
	smbc "$PASS2" regshare -c "get r.txt $SMB/regfile.back" || return 1
	cmp "$SMB/regfile" "$SMB/regfile.back" || return 1
	lib deb timeout 30 net --configfile="$CONF" registry getvalue 'HKLM\Software\TdbCompat' testval >"$d/regval" || return 1
	grep -q 'value-from-ours' "$d/regval" || { cat "$d/regval"; return 1; }
	lib deb timeout 30 pdbedit --configfile="$CONF" -L | grep -q "^$SMB_USER:" || return 1
	echo "after the restart: locks cleared; user (new password), files, registry share and value are there"
}

test_tdbcheck() {
	stop_smbd || return 1
	local f n=0 rc=0 which
	for f in "$SMB"/lock/*.tdb "$SMB"/state/*.tdb "$SMB"/private/*.tdb "$SMB"/cache/*.tdb; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		for which in deb ours; do
			lib $which timeout 30 tdbtool "$f" check >"$f.check.$which" 2>&1
			if ! grep -q 'Database integrity is OK' "$f.check.$which"; then
				echo "$which: tdbtool $f check:"; cat "$f.check.$which"; rc=1
			fi
			lib $which timeout 30 tdbdump "$f" >"$f.dump.$which" 2>&1
		done
		same_output "$f.dump.deb" "$f.dump.ours" || rc=1
		echo "$(basename "$f"): $(tail -n 1 "$f.check.ours")"
	done
	[ $n -ge 15 ] || { echo "only $n tdb files"; rc=1; }
	return $rc
}

SMB_TESTS=(samba.smbd.start samba.smbd.mutex_dbs samba.smbd.pdbedit samba.smbd.files
	samba.smbd.sessions samba.smbd.brlock samba.smbd.smbpasswd samba.smbd.registry
	samba.smbd.restart samba.smbd.tdb_check)
if want samba.smbd; then
	if ! PORT=$(free_port "$SMB_PORT"); then
		fail_all "no free port from $SMB_PORT" "${SMB_TESTS[@]}"
	elif ! getent passwd "$SMB_USER" >/dev/null; then
		fail_all "unix user $SMB_USER does not exist (set SMB_USER)" "${SMB_TESTS[@]}"
	else
		write_conf
		t samba.smbd.start test_smbd_start
		if [ -n "$SMBD_PID" ] && kill -0 "$SMBD_PID" 2>/dev/null; then
			t samba.smbd.mutex_dbs test_smbd_mutex
			t samba.smbd.pdbedit test_pdbedit
			t samba.smbd.files test_files
			t samba.smbd.sessions test_sessions
			t samba.smbd.brlock test_brlock
			t samba.smbd.smbpasswd test_smbpasswd
			t samba.smbd.registry test_registry
			t samba.smbd.restart test_restart
			t samba.smbd.tdb_check test_tdbcheck
		else
			fail_all "smbd did not start" "${SMB_TESTS[@]:1}"
		fi
		stop_smbd >/dev/null
	fi
fi
T_SMB=$((SECONDS - T_START))

# =====================================================================
# ldb-tools on tdb://, same script with each library, identical results
# =====================================================================
LDB=$RUN/ldb

# normalise ldbsearch output: records sorted (full scans come in traverse order)
ldif_sorted() {
	awk 'BEGIN{RS=""; ORS="\n\n"} /^# returned|^# [0-9]+ entries|^# [0-9]+ referrals/ {print; next} {gsub(/^# record [0-9]+\n/, ""); print}' |
		awk 'BEGIN{RS=""; ORS="\0"} {print}' | sort -z | tr '\0' '\n'
}

gen_ldif() {
	cat >"$LDB/base.ldif" <<'EOF'
dn: @INDEXLIST
@IDXATTR: uid
@IDXATTR: mail
@IDXATTR: objectClass
@IDXONE: 1

dn: @ATTRIBUTES
uid: CASE_INSENSITIVE
mail: CASE_INSENSITIVE

dn: dc=example,dc=com
objectClass: top
objectClass: domain
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=moved,dc=example,dc=com
objectClass: organizationalUnit
ou: moved
EOF
	awk -v n="$LDB_ENTRIES" 'BEGIN{for(i=0;i<n;i++){
		printf "dn: cn=user%d,ou=people,dc=example,dc=com\nobjectClass: person\ncn: user%d\nsn: Surname%d\nuid: u%d\nmail: u%d@example.com\ndescription: group %d\nemployeeNumber: %d\n", i,i,i%97,i,i,i%37,i*7;
		if (i % 5 == 0) printf "telephoneNumber: +1 555 %04d\n", i;
		printf "\n"}}' >"$LDB/users.ldif"
	# modifications: indexed attribute replaced, values added/deleted, attribute removed
	awk -v n="$LDB_ENTRIES" 'BEGIN{for(i=0;i<n;i+=6){
		printf "dn: cn=user%d,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: changed%d@example.org\n-\nadd: description\ndescription: extra %d\n-\n", i,i,i%11;
		if (i % 4 == 0) printf "delete: sn\n-\n";
		if (i % 3 == 0) printf "add: uid\nuid: alias%d\n-\n", i;
		printf "\n"}}' >"$LDB/modify.ldif"
	cat >"$LDB/reindex.ldif" <<'EOF'
dn: @INDEXLIST
changetype: modify
add: @IDXATTR
@IDXATTR: description
@IDXATTR: employeeNumber
-
EOF
}

# ldb_script LIB DIR: the whole ldb session; every step's output in DIR/NN-name.out
ldb_script() {
	local which=$1 d=$2 url="tdb://$2/test.ldb" i dns
	mkdir -p "$d"
	s() { # name cmd...: run, keep output; ldbsearch output sorted
		local name=$1 rc; shift
		if [ "$1" = ldbsearch ]; then
			lib $which timeout 120 "$@" 2>&1 | ldif_sorted >"$d/$name.out"
			rc=${PIPESTATUS[0]}
		else
			lib $which timeout 120 "$@" >"$d/$name.out" 2>&1
			rc=$?
		fi
		echo "rc=$rc" >>"$d/$name.out"
	}
	s 01-add-base ldbadd -H "$url" "$LDB/base.ldif"
	s 02-add-users ldbadd -H "$url" "$LDB/users.ldif"
	s 03-uid ldbsearch -H "$url" '(uid=U1234)'
	s 04-mail ldbsearch -H "$url" '(mail=u77@example.com)'
	s 05-desc-unindexed ldbsearch -H "$url" '(description=group 5)' dn uid
	s 06-and ldbsearch -H "$url" '(&(objectClass=person)(description=group 3)(uid=u1*))' dn
	s 07-or ldbsearch -H "$url" '(|(uid=u5)(mail=u6@example.com)(employeeNumber=70))' dn
	s 08-onelevel ldbsearch -H "$url" -s one -b 'ou=people,dc=example,dc=com' '(telephoneNumber=*)' dn telephoneNumber
	s 09-base ldbsearch -H "$url" -s base -b 'cn=user42,ou=people,dc=example,dc=com'
	s 10-idxrec ldbsearch -H "$url" -s base -b '@INDEX:UID:U1234'
	s 11-modify ldbmodify -H "$url" "$LDB/modify.ldif"
	s 12-mail-after ldbsearch -H "$url" '(mail=changed12@example.org)'
	s 13-old-mail ldbsearch -H "$url" '(mail=u12@example.com)' dn
	s 14-alias ldbsearch -H "$url" '(uid=alias18)' dn uid
	s 15-extra ldbsearch -H "$url" '(description=extra 3)' dn
	dns=()
	for ((i = 1; i < LDB_ENTRIES; i += 10)); do dns+=("cn=user$i,ou=people,dc=example,dc=com"); done
	s 16-del ldbdel -H "$url" "${dns[@]}"
	s 17-deleted ldbsearch -H "$url" '(|(uid=u1)(uid=u11)(uid=u21)(uid=u2))' dn
	: >"$d/18-rename.out"
	for ((i = 2; i < LDB_ENTRIES; i += 40)); do
		lib $which timeout 60 ldbrename -H "$url" "cn=user$i,ou=people,dc=example,dc=com" \
			"cn=renamed$i,ou=moved,dc=example,dc=com" >>"$d/18-rename.out" 2>&1
		echo "rc=$?" >>"$d/18-rename.out"
	done
	s 19-renamed ldbsearch -H "$url" -s one -b 'ou=moved,dc=example,dc=com' '(objectClass=*)' dn uid
	s 20-renamed-uid ldbsearch -H "$url" '(uid=u42)' dn
	s 21-desc-before-reindex ldbsearch -H "$url" '(description=group 5)' dn
	s 22-reindex ldbmodify -H "$url" "$LDB/reindex.ldif"
	s 23-desc-after-reindex ldbsearch -H "$url" '(description=group 5)' dn
	s 24-idx-desc ldbsearch -H "$url" -s base -b '@INDEX:DESCRIPTION:group 5'
	s 25-empno ldbsearch -H "$url" '(employeeNumber=700)' dn
	s 26-indexlist ldbsearch -H "$url" -s base -b '@INDEXLIST'
	s 27-all ldbsearch -H "$url" '(objectClass=*)'
	s 28-count-people ldbsearch -H "$url" -s one -b 'ou=people,dc=example,dc=com' '(objectClass=person)' dn
	# unsorted: a full scan returns records in tdb traverse order
	lib $which timeout 120 ldbsearch -H "$url" '(objectClass=*)' dn >"$d/29-all-unsorted.out" 2>&1
	echo "rc=$?" >>"$d/29-all-unsorted.out"
	# every record of the file (tdbdump), in file order; @BASEINFO is masked
	# (its whenChanged time and, depending on that, its attribute order vary)
	lib $which timeout 120 tdbdump "$d/test.ldb" |
		sed 's/^data([0-9]*) = "g.*@BASEINFO\\00.*/data(@BASEINFO masked)/' >"$d/30-tdbdump.out"
	echo "rc=${PIPESTATUS[0]}" >>"$d/30-tdbdump.out"
}

test_ldb_linkage() {
	# ldb's tdb backend (samba/ldb/tdb.so) is dlopen()ed: check what ld.so loads
	local which out
	for which in deb ours; do
		out=$(LD_DEBUG=libs lib $which timeout 30 ldbsearch -H "tdb://$LDB/link.ldb" '(cn=x)' 2>&1 |
			sed -n 's/.*calling init: \(.*libtdb\.so.*\)/\1/p' | sort -u)
		echo "$which: $out"
		if [ $which = ours ]; then
			[ "$(readlink -f "$out")" = "$OURS_SO" ] || return 1
		else
			[ "$(readlink -f "$out")" = "$(readlink -f "$DEB_LIB")" ] || return 1
		fi
	done
}

test_ldb_run() {
	gen_ldif
	ldb_script deb "$LDB/deb" &
	local p1=$!
	ldb_script ours "$LDB/ours" &
	local p2=$!
	wait $p1; wait $p2
	ls "$LDB/deb"/*.out | wc -l
}
ldb_step() { # compare one step
	same_output "$LDB/deb/$1.out" "$LDB/ours/$1.out" || return 1
	head -n 4 "$LDB/ours/$1.out"
	grep -q '^rc=0$' "$LDB/ours/$1.out" || { echo "command failed"; cat "$LDB/ours/$1.out" | tail; return 1; }
}
test_ldb_reindex() {
	ldb_step 22-reindex || return 1
	ldb_step 23-desc-after-reindex || return 1
	ldb_step 24-idx-desc || return 1
	# the index created by the reindex gives the same answer as the full scan did
	same_output "$LDB/ours/21-desc-before-reindex.out" "$LDB/ours/23-desc-after-reindex.out" || return 1
	grep -q '^@IDX: ' "$LDB/ours/24-idx-desc.out" || { echo "no index record for description"; return 1; }
	# counts: entries minus deleted, renamed ones moved out
	local want=$((LDB_ENTRIES - (LDB_ENTRIES + 8) / 10 - (LDB_ENTRIES + 37) / 40))
	grep -q "^# returned $want records" "$LDB/ours/28-count-people.out" ||
		{ echo "expected $want people:"; grep '^# returned' "$LDB/ours/28-count-people.out"; return 1; }
}
test_ldb_cross() {
	# each library reads the database the other one wrote
	local a b
	for a in deb ours; do
		[ $a = deb ] && b=ours || b=deb
		lib $b timeout 120 ldbsearch -H "tdb://$LDB/$a/test.ldb" '(objectClass=*)' 2>&1 | ldif_sorted >"$LDB/cross.$a-by-$b"
		same_output "$LDB/$a/27-all.out" <(cat "$LDB/cross.$a-by-$b"; echo rc=0) || return 1
		lib $b timeout 60 ldbsearch -H "tdb://$LDB/$a/test.ldb" '(description=group 7)' dn 2>&1 | ldif_sorted >"$LDB/cross2.$a-by-$b"
		grep -q '^# returned' "$LDB/cross2.$a-by-$b" || return 1
	done
	same_output "$LDB/cross2.deb-by-ours" "$LDB/cross2.ours-by-deb"
}
test_ldb_check() {
	local a which rc=0
	for a in deb ours; do
		for which in deb ours; do
			lib $which timeout 60 tdbtool "$LDB/$a/test.ldb" check >"$LDB/chk.$a.$which" 2>&1
			echo "$a file, $which tdbtool: $(tail -n1 "$LDB/chk.$a.$which")"
			grep -q 'Database integrity is OK' "$LDB/chk.$a.$which" || rc=1
		done
	done
	# same number of records in both files
	same_output <(sed 's/.*has \([0-9]*\) records.*/\1/' "$LDB/chk.deb.deb") \
		<(sed 's/.*has \([0-9]*\) records.*/\1/' "$LDB/chk.ours.ours") || rc=1
	return $rc
}

if want samba.ldb; then
	mkdir -p "$LDB"
	t samba.ldb.linkage test_ldb_linkage
	t samba.ldb.run test_ldb_run
	for step in 01-add-base 02-add-users 03-uid 04-mail 05-desc-unindexed 06-and 07-or \
		08-onelevel 09-base 10-idxrec 11-modify 12-mail-after 13-old-mail 14-alias 15-extra \
		16-del 17-deleted 18-rename 19-renamed 20-renamed-uid 25-empno 26-indexlist 27-all; do
		t "samba.ldb.$step" ldb_step "$step"
	done
	t samba.ldb.29-all-unsorted ldb_step 29-all-unsorted
	t samba.ldb.30-tdbdump ldb_step 30-tdbdump
	t samba.ldb.reindex test_ldb_reindex
	t samba.ldb.cross_read test_ldb_cross
	t samba.ldb.tdb_check test_ldb_check
fi
T_LDB=$((SECONDS - T_START - T_SMB))

# =====================================================================
# mixed load: Debian's libtdb and ours on one file at the same time
# =====================================================================
MIX=$RUN/mix
MIXBIN=$MIX/mixload
MIX_NDEB=${MIX_NDEB:-2}
MIX_NOURS=${MIX_NOURS:-2}
# scenario name, mode, library that creates the file and keeps it open
MIX_SCEN=("fcntl fcntl ours" "mutex_deb_created mutex deb" "mutex_ours_created mutex ours")

test_mix_build() {
	mkdir -p "$MIX"
	"$CC" -O2 -g -Wall -Wextra -Werror -I"$ROOT/include" -o "$MIXBIN" "$HERE/mixload.c" -ltdb
}

# start every scenario at once; results land in $MIX/<name>/
mix_start() {
	local sc name mode creator d i seed
	for sc in "${MIX_SCEN[@]}"; do
		read -r name mode creator <<<"$sc"
		d=$MIX/$name
		mkdir -p "$d"
		envcmd $creator
		"${ENVC[@]}" "$MIXBIN" hold "$d/db.tdb" $mode "$d/stop" $((MIX_SECS * 3 + 120)) >"$d/hold.out" 2>"$d/hold.err" &
		BGPIDS+=($!)
		echo $! >"$d/hold.pid"
	done
	for sc in "${MIX_SCEN[@]}"; do
		read -r name mode creator <<<"$sc"
		d=$MIX/$name
		for i in $(seq 50); do grep -q ready "$d/hold.out" && break; sleep 0.1; done
		: >"$d/workers"
		for i in $(seq "$MIX_NDEB"); do
			envcmd deb
			seed=$RANDOM
			"${ENVC[@]}" timeout -k 5 $((MIX_SECS * 2 + 60)) "$MIXBIN" work "$d/db.tdb" $mode "d$i" "$MIX_SECS" "$seed" "$d/log.d$i" 2>"$d/err.d$i" &
			BGPIDS+=($!); echo "$! d$i $seed" >>"$d/workers"
		done
		for i in $(seq "$MIX_NOURS"); do
			envcmd ours
			seed=$RANDOM
			"${ENVC[@]}" timeout -k 5 $((MIX_SECS * 2 + 60)) "$MIXBIN" work "$d/db.tdb" $mode "o$i" "$MIX_SECS" "$seed" "$d/log.o$i" 2>"$d/err.o$i" &
			BGPIDS+=($!); echo "$! o$i $seed" >>"$d/workers"
		done
	done
	for sc in "${MIX_SCEN[@]}"; do
		read -r name mode creator <<<"$sc"
		d=$MIX/$name
		local p w seed
		while read -r p w seed; do
			wait "$p"; echo "$?" >"$d/rc.$w"
		done <"$d/workers"
	done
}

test_mix() { # name mode creator
	local name=$1 mode=$2 creator=$3 d=$MIX/$1 rc=0 p w seed which
	grep -q ready "$d/hold.out" || { echo "holder did not open:"; cat "$d/hold.err"; rc=1; }
	while read -r p w seed; do
		echo "worker $w ($( [ ${w:0:1} = d ] && echo deb || echo ours ), seed $seed): exit $(cat "$d/rc.$w"): $(tail -n 1 "$d/err.$w")"
		if [ "$(cat "$d/rc.$w")" != 0 ]; then
			rc=1; grep -v '^\[.*\] [0-9]* ops' "$d/err.$w" | head -n 20
		fi
	done <"$d/workers"
	# committed transactions, counters and every record, checked by each library
	for which in deb ours; do
		echo -n "$which check: "
		lib $which timeout 120 "$MIXBIN" check "$d/db.tdb" $mode "$d"/log.* || rc=1
	done
	touch "$d/stop"
	p=$(cat "$d/hold.pid")
	for w in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	stop_pid "$p"
	for which in deb ours; do
		lib $which timeout 60 tdbtool "$d/db.tdb" check >"$d/tdbtool.$which" 2>&1
		echo "tdbtool ($which): $(tail -n 1 "$d/tdbtool.$which")"
		grep -q 'Database integrity is OK' "$d/tdbtool.$which" || rc=1
		lib $which timeout 60 tdbdump "$d/db.tdb" >"$d/dump.$which" 2>&1
	done
	# the same file traversed by both libraries gives the same dump, same order
	same_output "$d/dump.deb" "$d/dump.ours" || rc=1
	return $rc
}

if want samba.mix; then
	t samba.mix.build test_mix_build
	if [ -x "$MIXBIN" ]; then
		mix_start
		for sc in "${MIX_SCEN[@]}"; do
			read -r name mode creator <<<"$sc"
			t "samba.mix.$name" test_mix "$name" "$mode" "$creator"
		done
	fi
fi
T_MIX=$((SECONDS - T_START - T_SMB - T_LDB))

echo "time: smbd ${T_SMB}s, ldb ${T_LDB}s, mix ${T_MIX}s (MIX_SECS=$MIX_SECS)" >&2
finish
