#!/usr/bin/env bash
# Compatibility suite: our libtdb.so.1 ("ours", from $OURS_LIBDIR) against
# Debian's libtdb1 ("deb", the system library, no LD_LIBRARY_PATH).
#   OURS_LIBDIR=target/release compat-tests/run.sh [FILTER]
# Prints one PASS/FAIL line per test and "N passed, M failed" at the end.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OURS_LIBDIR=${OURS_LIBDIR:-$ROOT/target/release}
OURS_LIBDIR=$(cd "$OURS_LIBDIR" 2>/dev/null && pwd) || { echo "OURS_LIBDIR does not exist" >&2; echo "0 passed, 1 failed"; exit 1; }
FILTER=${1:-}
PY=/usr/bin/python3
CC=${CC:-gcc}

RUN=$(mktemp -d "${TMPDIR:-/tmp}/compat-tests.XXXXXX")
BIN=$RUN/bin
LOGS=$RUN/logs
mkdir -p "$BIN" "$LOGS"
BGPIDS=()
cleanup() {
	kill_bg
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

PASSED=0
FAILED=0
kill_bg() { # only those of BGPIDS that are still this shell's unreaped jobs
	local p j
	for p in "${BGPIDS[@]:-}"; do
		for j in $(jobs -p); do
			if [ "$p" = "$j" ]; then kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
		done
	done
	return 0
}

if [ ! -e "$OURS_LIBDIR/libtdb.so.1" ]; then
	echo "FAIL setup: $OURS_LIBDIR/libtdb.so.1 missing"
	echo "0 passed, 1 failed"
	exit 1
fi

# ---- build ----
if [ -f "$ROOT/include/tdb.h" ]; then
	INC=(-I"$ROOT/include")
else
	INC=()
fi
CFLAGS=(-O1 -g -Wall -Werror -Wno-deprecated-declarations "${INC[@]}" -I"$HERE/c")
build() { # name, extra args
	local name=$1; shift
	"$CC" "${CFLAGS[@]}" -o "$BIN/$name" "$HERE/c/$name.c" "$@" -ltdb >>"$LOGS/build.log" 2>&1
}
BUILD_OK=1
for p in api_open api_data api_lock api_txn interop stress; do build "$p" || BUILD_OK=0; done
build crash -ldl || BUILD_OK=0
"$CC" -O1 -Wall -shared -fPIC -o "$BIN/crashshim.so" "$HERE/c/crashshim.c" -ldl >>"$LOGS/build.log" 2>&1 || BUILD_OK=0
if [ $BUILD_OK = 0 ]; then
	echo "FAIL build"
	cat "$LOGS/build.log"
	echo "0 passed, 1 failed"
	exit 1
fi

# ---- helpers ----
# lib ours|deb CMD...: run CMD with that library
lib() {
	local which=$1; shift
	if [ "$which" = ours ]; then
		LD_LIBRARY_PATH="$OURS_LIBDIR" "$@"
	else
		env -u LD_LIBRARY_PATH "$@"
	fi
}
# lib_exec ours|deb CMD...: like lib, but replaces the (sub)shell, so that
# "lib_exec L cmd &" gives the command's own pid in $!
lib_exec() {
	local which=$1; shift
	if [ "$which" = ours ]; then
		exec env LD_LIBRARY_PATH="$OURS_LIBDIR" "$@"
	else
		exec env -u LD_LIBRARY_PATH "$@"
	fi
}
other() { if [ "$1" = ours ]; then echo deb; else echo ours; fi; }

# t NAME FUNCTION ARGS...: run one test in its own directory, output to a log
t() {
	local name=$1; shift
	if [ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]]; then return 0; fi
	local dir log rc
	dir=$RUN/w/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_')
	log=$LOGS/$(basename "$dir").log
	mkdir -p "$dir"
	# background processes a test starts go into its own BGPIDS (this
	# subshell's copy): whatever is left of them is killed when it ends
	( BGPIDS=(); trap 'kill_bg' EXIT; cd "$dir" && "$@" ) >"$log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		echo "PASS $name"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL $name (exit $rc)"
		sed -e 's/^/    /' "$log" | tail -n 60
		FAILED=$((FAILED + 1))
	fi
	rm -rf "$dir"
}
# fail MESSAGE: ends the test (each test runs in its own subshell)
fail() { echo "$*" >&2; exit 1; }
# same_output DESC FILE_A FILE_B: unified diff on mismatch
same_output() {
	if ! cmp -s "$2" "$3"; then
		echo "$1: outputs differ" >&2
		diff -u "$2" "$3" | head -n 80 >&2
		return 1
	fi
}

# ---- C API programs ----
api() { lib "$1" timeout 300 "$BIN/$2" "$PWD"; }

# ---- interop ----
PROFILES="default jenkins bigendian nommap dead freelist seqnum mutex volatile"
interop_dir() { # A B PROFILE: A writes, B reads and modifies
	local a=$1 b=$2 p=$3 f=$PWD/db.tdb
	lib "$a" "$BIN/interop" write "$f" "$p" || fail "$a write"
	lib "$b" "$BIN/interop" verify "$f" "$p" 0 || fail "$b verify stage 0"
	lib "$a" "$BIN/interop" verify "$f" "$p" 0 || fail "$a verify stage 0"
	lib "$a" "$BIN/interop" dump "$f" "$p" >dump.a || fail "$a dump"
	lib "$b" "$BIN/interop" dump "$f" "$p" >dump.b || fail "$b dump"
	same_output "dump of $a's file" dump.a dump.b || return 1
	lib "$b" "$BIN/interop" modify "$f" "$p" || fail "$b modify"
	lib "$a" "$BIN/interop" verify "$f" "$p" 1 || fail "$a verify stage 1"
	lib "$b" "$BIN/interop" verify "$f" "$p" 1 || fail "$b verify stage 1"
	lib "$a" "$BIN/interop" check "$f" "$p" >check.a || fail "$a check"
	lib "$b" "$BIN/interop" check "$f" "$p" >check.b || fail "$b check"
	same_output "check" check.a check.b || return 1
	lib "$a" "$BIN/interop" dump "$f" "$p" >dump.a || fail "$a dump"
	lib "$b" "$BIN/interop" dump "$f" "$p" >dump.b || fail "$b dump"
	same_output "dump after $b's modify" dump.a dump.b
}

# the same operations by both libraries give byte-identical files
byte_identical() { # PROFILE
	local p=$1 w
	for w in deb ours; do
		mkdir -p "$w"
		lib "$w" "$BIN/interop" write "$PWD/$w/db.tdb" "$p" || fail "$w write"
		lib "$w" "$BIN/interop" modify "$PWD/$w/db.tdb" "$p" || fail "$w modify"
		lib "$w" "$BIN/interop" verify "$PWD/$w/db.tdb" "$p" 1 || fail "$w verify"
	done
	if [ "$p" = mutex ]; then
		mutex_files_equal deb/db.tdb ours/db.tdb
		return
	fi
	if ! cmp deb/db.tdb ours/db.tdb >&2; then
		echo "first differing bytes (offset deb ours, octal):" >&2
		cmp -l deb/db.tdb ours/db.tdb | head -n 20 >&2
		return 1
	fi
}

# Two mutex files are equal when the database (everything after the mutex
# area) and the header copy in front are byte-identical, and in both every
# mutex is unlocked and the allrecord state is F_UNLCK. The other bytes of an
# unlocked pthread mutex are the C library's bookkeeping of past lock calls
# (a count, robust-list links), which depend on which locks were cycled, not
# on the data.
mutex_files_equal() { # A B
	"$PY" - "$1" "$2" <<'PYEOF' >&2
import struct, sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
msize = struct.unpack_from("<I", a, 64)[0]
hash_size = struct.unpack_from("<I", a, 36)[0]
ok = True
def fail(msg):
    global ok
    ok = False
    print(msg)
if len(a) != len(b):
    fail("sizes differ: %d %d" % (len(a), len(b)))
if struct.unpack_from("<I", b, 64)[0] != msize or msize == 0:
    fail("mutex_size differs or is 0")
if a[:168] != b[:168]:
    fail("header copies in front of the mutex area differ")
if a[msize:] != b[msize:]:
    first = next(i for i in range(msize, min(len(a), len(b))) if a[i] != b[i]) if len(a) == len(b) else msize
    fail("database parts differ, first at byte %d" % first)
for name, f in (("deb", a), ("ours", b)):
    mutexes = [168] + [216 + 40 * i for i in range(hash_size + 1)]
    locked = [o for o in mutexes if struct.unpack_from("<i", f, o)[0] != 0]
    if locked:
        fail("%s: %d mutexes left locked" % (name, len(locked)))
    if struct.unpack_from("<h", f, 208)[0] != 2:
        fail("%s: allrecord state is not F_UNLCK" % name)
sys.exit(0 if ok else 1)
PYEOF
}

# cross-library locking: HOLDER holds a lock, PROBER tries nonblocking
wait_for_line() { # FILE PATTERN SECONDS
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
lock_matrix() { # HOLDER PROBER PROFILE
	local h=$1 pr=$2 p=$3 f=$PWD/db.tdb line hold probe want got pid bad=0
	lib "$h" "$BIN/interop" write "$f" "$p" || fail "write"
	# HOLD:PROBE=WANT ... ; a probe is what,key (key "-" for whole-db locks)
	if [ "$p" = mutex ]; then
		# chain "read" locks are exclusive mutexes in mutex mode
		MATRIX="chain,alpha: chain,alpha=busy chainread,alpha=busy all,-=busy allread,-=busy chain,beta=free
chainread,alpha: chainread,alpha=busy chain,beta=free
all,-: chain,beta=busy chainread,beta=busy allread,-=busy
allread,-: chain,alpha=busy allread,-=busy
transaction,-: transaction,-=busy chainread,alpha=free"
	else
		MATRIX="chain,alpha: chain,alpha=busy chainread,alpha=busy all,-=busy allread,-=busy chain,beta=free
chainread,alpha: chainread,alpha=free chain,alpha=busy allread,-=free all,-=busy chain,beta=free
all,-: chain,beta=busy chainread,beta=busy allread,-=busy
allread,-: allread,-=free chainread,alpha=free chain,alpha=busy all,-=busy
transaction,-: transaction,-=busy chainread,alpha=free chain,alpha=busy"
	fi
	while IFS= read -r line; do
		hold=${line%%:*}
		rm -f hold.out
		( lib_exec "$h" "$BIN/interop" lockhold "$f" "$p" "${hold%,*}" "${hold#*,}" 30 >hold.out 2>&1 ) &
		pid=$!
		BGPIDS+=("$pid")
		if ! wait_for_line hold.out locked 10; then
			echo "$h: holder $hold did not lock: $(cat hold.out)" >&2
			kill -9 "$pid"; wait "$pid"; return 1
		fi
		for probe in ${line#*:}; do
			want=${probe#*=}; probe=${probe%=*}
			got=$(lib "$pr" timeout 20 "$BIN/interop" lockprobe "$f" "$p" "${probe%,*}" "${probe#*,}" 2>&1)
			if [ "$got" != "$want" ]; then
				echo "$h holds '$hold', $pr probes '$probe': got '$got', want '$want'" >&2
				bad=1
			fi
		done
		kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	done <<<"$MATRIX"
	lib "$pr" "$BIN/interop" verify "$f" "$p" 0 || fail "verify after locking"
	return $bad
}

# concurrency: 2 workers per library on one file
concurrency() { # MODE
	local m=$1 f=$PWD/db.tdb pids=() i l rc=0 secs=${COMPAT_STRESS_SECONDS:-4}
	lib deb "$BIN/stress" create "$f" "$m" || fail "create"
	for i in 1 2 3 4; do
		if [ $((i % 2)) = 0 ]; then l=ours; else l=deb; fi
		( lib_exec "$l" timeout $((secs + 60)) "$BIN/stress" worker "$f" "$m" "$i" "$secs" "log$i" ) &
		pids+=("$!")
		BGPIDS+=("$!")
	done
	for i in "${pids[@]}"; do wait "$i" || { echo "worker pid $i failed (exit $?; 124 = hang)" >&2; rc=1; }; done
	lib deb "$BIN/stress" final "$f" "$m" log1 log2 log3 log4 || { echo "deb final check failed" >&2; rc=1; }
	lib ours "$BIN/stress" final "$f" "$m" log1 log2 log3 log4 || { echo "ours final check failed" >&2; rc=1; }
	return $rc
}

# interrupted commit: WRITER is killed at the N-th write/sync of its commit
# (N = 1, 2, ... until the commit completes); the other library opens the
# file: the state must be all-old or all-new, old until the commit point and
# new after it; both libraries must agree on the recovered data, tdb_check
# must pass on the file our library recovered, and at least one torn file
# must have been rolled back.
crash_test() { # WRITER MODE
	local w=$1 m=$2 r n rc torn st_other st_self st_ours seen_new=0 rolled_back=0 completed=0
	r=$(other "$w")
	for ((n = 1; n <= 400; n++)); do
		lib "$w" "$BIN/crash" prepare "$PWD/db.tdb" "$m" || fail "prepare"
		LD_PRELOAD="$BIN/crashshim.so" lib "$w" "$BIN/crash" commit "$PWD/db.tdb" "$m" "$n" >commit.out 2>&1
		rc=$?
		if [ $rc = 0 ]; then completed=1; fi
		if [ $rc != 0 ] && [ $rc != 137 ]; then fail "commit N=$n: exit $rc: $(cat commit.out)"; fi
		torn=$(grep -c NEWVALUE db.tdb)
		cp db.tdb copy.tdb
		st_other=$(lib "$r" "$BIN/crash" verify "$PWD/db.tdb" "$m" 2>&1) || fail "N=$n: $r verify: $st_other"
		st_self=$(lib "$w" "$BIN/crash" verify "$PWD/copy.tdb" "$m" 2>&1) || fail "N=$n: $w verify: $st_self"
		# the same data either way; tdb_check passes on the file our library
		# recovered (Debian's recovery may leave space no record accounts
		# for: its check then fails, see docs/robustness.md)
		[ "${st_other%% *}" = "${st_self%% *}" ] || fail "N=$n: $r says '$st_other', $w says '$st_self'"
		if [ "$r" = ours ]; then st_ours=$st_other; else st_ours=$st_self; fi
		[ "${st_ours#* }" = "check=ok" ] || fail "N=$n: after our recovery: '$st_ours'"
		# after the other library recovered it, the writer sees the same
		st_self=$(lib "$w" "$BIN/crash" verify "$PWD/db.tdb" "$m" 2>&1) || fail "N=$n: $w re-verify: $st_self"
		[ "${st_other%% *}" = "${st_self%% *}" ] || fail "N=$n: after $r's recovery $w says '$st_self'"
		case "$st_other" in
		old*) [ $seen_new = 0 ] || fail "N=$n: old after new"
		      [ "$torn" -gt 0 ] && rolled_back=$((rolled_back + 1)) ;;
		new*) seen_new=1 ;;
		esac
		[ $rc = 0 ] && break
	done
	[ $completed = 1 ] || fail "commit never completed"
	[ $rolled_back -gt 0 ] || fail "no kill point left new data in the file that was then rolled back"
	echo "kill points: $((n - 1)), torn-and-rolled-back: $rolled_back"
}

# every kill point of one commit by our library, and of its recovery
# (compat-tests/killpoints.sh prints the matrix)
killpoints_mode() { # MODE
	OURS_LIBDIR="$OURS_LIBDIR" bash "$HERE/killpoints.sh" "$1"
}

# ---- Samba's tools on our library ----
# tool_session LIB: run a fixed sequence of tool commands in ./LIB/ on a copy
# of src.tdb; the transcript (stdout, stderr, exit codes) goes to LIB.out
tool_session() {
	local L=$1
	mkdir -p "$L"
	cp src.tdb "$L/db.tdb"
	(
		cd "$L" || exit 1
		step() { echo "== $*"; lib "$L" timeout 60 "$@" 2>&1; echo "rc=$?"; }
		step tdbtool db.tdb info
		step tdbtool db.tdb keys
		step tdbtool db.tdb hexkeys
		step tdbtool db.tdb dump
		step tdbtool db.tdb show k00001
		step tdbtool db.tdb show no-such-key
		step tdbtool db.tdb check
		step tdbtool db.tdb freelist_size
		step tdbtool db.tdb list
		step tdbtool db.tdb free
		step tdbtool db.tdb insert newkey newvalue
		step tdbtool db.tdb insert newkey again
		step tdbtool db.tdb store newkey replaced
		step tdbtool db.tdb show newkey
		step tdbtool db.tdb storehex 6869 776f726c64
		step tdbtool db.tdb show hi
		step tdbtool db.tdb delete k00004
		step tdbtool db.tdb delete k00004
		step tdbtool db.tdb repack
		step tdbtool db.tdb check
		step tdbtool db.tdb info
		printf 'open db.tdb\nfirst\nnext\nnext\ntransaction_start\nstore tk tv\nshow tk\ntransaction_cancel\nshow tk\ntransaction_start\nstore tk tv2\ntransaction_commit\nshow tk\nfreelist_size\ncheck\nquit\n' >script1
		echo "== tdbtool < script1"; lib "$L" timeout 60 tdbtool <script1 2>&1; echo "rc=$?"
		printf 'create fresh.tdb\ninsert a 1\ninsert b 2\ninsert c 3\ndelete b\nkeys\ndump\ninfo\ncheck\nerase\nkeys\ninfo\nquit\n' >script2
		echo "== tdbtool < script2"; lib "$L" timeout 60 tdbtool <script2 2>&1; echo "rc=$?"
		step tdbdump db.tdb
		step tdbdump -k newkey db.tdb
		step tdbdump -k absent db.tdb
		step tdbdump -e db.tdb
		step tdbdump missing.tdb
		step tdbbackup db.tdb
		step tdbdump db.tdb.bak
		step tdbbackup -v db.tdb
		step tdbbackup -s .sfx -n 1009 db.tdb
		step tdbtool db.tdb.sfx info
		step tdbdump db.tdb.sfx
		# a corrupt file: -v restores it from the backup
		cp db.tdb db2.tdb
		step tdbbackup db2.tdb
		# hash chain pointers become 0x41414141: traversal fails, -v restores
		printf 'A%.0s' $(seq 400) | dd of=db2.tdb bs=1 seek=200 conv=notrunc 2>/dev/null
		step tdbbackup -v db2.tdb
		step tdbtool db2.tdb check
		step tdbdump db2.tdb
		tdbdump db.tdb >dump.txt 2>/dev/null
		echo "== tdbrestore restored.tdb < dump.txt"; lib "$L" timeout 60 tdbrestore restored.tdb <dump.txt 2>&1; echo "rc=$?"
		step tdbdump restored.tdb
		step tdbtool restored.tdb check
		echo "== tdbrestore restored.tdb (exists)"; lib "$L" timeout 60 tdbrestore restored.tdb <dump.txt 2>&1; echo "rc=$?"
		# a file written by one tool run is read by the next: print a digest
		for f in db.tdb db.tdb.bak db.tdb.sfx restored.tdb fresh.tdb; do
			[ -f "$f" ] && echo "size $f $(stat -c %s "$f")"
		done
	) >"$L.out" 2>&1
}
tools_test() { # SOURCE-LIB PROFILE
	local s=$1 p=$2
	lib "$s" "$BIN/interop" write "$PWD/src.tdb" "$p" || fail "write"
	lib "$s" "$BIN/interop" modify "$PWD/src.tdb" "$p" || fail "modify"
	tool_session deb
	tool_session ours
	same_output "tools (deb vs ours) on $s's $p file" deb.out ours.out || return 1
	# the transcript must contain real work, not a row of errors
	grep -q '^Number of records: 600' deb.out || fail "tdbtool info did not report 600 records"
	grep -q 'Database integrity is OK' deb.out || fail "no successful check in transcript"
	grep -q '^key(6) = "newkey"' deb.out || fail "tdbdump did not show newkey"
	grep -q '^restoring db2.tdb' deb.out || fail "tdbbackup -v did not restore the corrupt file"
	grep -A1 "^== tdbtool db2.tdb check" deb.out | grep -q "Database integrity is OK and has 601 records" || fail "restored file incomplete"
}

# ---- python3-tdb ----
pytest_run() { lib "$1" timeout 300 "$PY" "$HERE/python/test_pytdb.py" "$PWD"; }

# ---- which library is really loaded ----
lib_selection() {
	local want_ours want_deb got
	want_ours=$(readlink -f "$OURS_LIBDIR/libtdb.so.1")
	want_deb=$(readlink -f "$(env -u LD_LIBRARY_PATH /sbin/ldconfig -p | awk '/libtdb.so.1 .*x86-64/ { print $NF; exit }')")
	[ -n "$want_deb" ] && [ -e "$want_deb" ] || fail "Debian's libtdb.so.1 not found by ldconfig"
	got=$(lib ours "$BIN/interop" whichlib x default) || fail "whichlib (ours) failed"
	[ "$(readlink -f "$got")" = "$want_ours" ] || fail "ours: loaded $got, expected $want_ours"
	got=$(lib deb "$BIN/interop" whichlib x default) || fail "whichlib (deb) failed"
	[ "$(readlink -f "$got")" = "$want_deb" ] || fail "deb: loaded $got, expected $want_deb"
	got=$(lib ours /usr/bin/python3 -c 'import tdb; print(open("/proc/self/maps").read())' | awk '/libtdb.so/ { print $NF; exit }')
	[ "$(readlink -f "$got")" = "$want_ours" ] || fail "python3-tdb under ours loaded $got"
	got=$(LD_LIBRARY_PATH="$OURS_LIBDIR" ldd /usr/bin/tdbtool | awk '/libtdb.so.1/ { print $3 }')
	[ "$(readlink -f "$got")" = "$want_ours" ] || fail "tdbtool under ours resolves $got"
	if [ "$want_ours" = "$want_deb" ]; then echo "note: OURS_LIBDIR points at Debian's library" >&2; fi
}

# ---- the suite ----
t "setup/library selection" lib_selection
for L in deb ours; do
	for p in api_open api_data api_lock api_txn; do
		t "c-api/$p [$L]" api "$L" "$p"
	done
done
for p in $PROFILES; do
	t "interop/$p deb->ours" interop_dir deb ours "$p"
	t "interop/$p ours->deb" interop_dir ours deb "$p"
done
for p in $PROFILES; do
	t "byte-identical/$p" byte_identical "$p"
done
for p in default mutex; do
	t "locks/$p deb-holds ours-probes" lock_matrix deb ours "$p"
	t "locks/$p ours-holds deb-probes" lock_matrix ours deb "$p"
done
for m in fcntl mutex; do
	t "concurrency/$m 2xdeb+2xours" concurrency "$m"
done
for m in mmap nommap mutex; do
	t "crash-commit/$m killed deb, ours recovers" crash_test deb "$m"
	t "crash-commit/$m killed ours, deb recovers" crash_test ours "$m"
done
for m in fcntl nommap mutex fcntl-nosync nommap-nosync mutex-nosync; do
	t "kill-points/$m every commit and recovery kill point" killpoints_mode "$m"
done
for s in deb ours; do
	for p in default bigendian; do
		t "tools/$p file by $s" tools_test "$s" "$p"
	done
done
for L in deb ours; do
	t "python3-tdb [$L]" pytest_run "$L"
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
