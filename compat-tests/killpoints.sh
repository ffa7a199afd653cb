#!/usr/bin/env bash
# Every kill point of a commit (issue 11): one transaction commit by our
# library is killed at its 1st, 2nd, ... write/msync/fsync/ftruncate/fallocate/
# utime call (compat-tests/c/crashshim.c) until it completes; after each kill
# our library reopens the file (and recovers it), then
#   - the data is all old or all new (new only from the commit point on),
#   - tdb_check passes without reporting dead space on our library and on
#     Debian's (and Debian's tdbtool check passes),
#   - and so do they after a store (by our library) that grows the file.
# Then the recovery itself is killed at each of its calls (after the commit was
# killed at its last call) and the same holds after the next open.
#   OURS_LIBDIR=target/release compat-tests/killpoints.sh [MODE...] [-k KIND...]
# MODE: fcntl nommap mutex fcntl-nosync nommap-nosync mutex-nosync (default all)
# KIND: small grow grow-moved (default all)
# Prints one matrix row per kill point (state after the reopen; check verdicts
# of ours and Debian's before and after the growth: clean, dead = passed but
# logged dead space, fail), one summary line per mode and kind, and
# "killpoints: N points, M failed"; exits 1 on any failure.
# OURS_LIBDIR=/usr/lib/x86_64-linux-gnu runs the same with Debian's library in
# our place (Samba's behaviour, for comparison).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OURS_LIBDIR=$(cd "${OURS_LIBDIR:-$ROOT/target/release}" && pwd) || exit 2
CC=${CC:-gcc}
MODES=()
KINDS=()
while [ $# -gt 0 ]; do
	case $1 in
	-k) KINDS+=("$2"); shift 2 ;;
	*) MODES+=("$1"); shift ;;
	esac
done
[ ${#MODES[@]} -gt 0 ] || MODES=(fcntl nommap mutex fcntl-nosync nommap-nosync mutex-nosync)
[ ${#KINDS[@]} -gt 0 ] || KINDS=(small grow grow-moved)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/killpoints.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
INC=()
[ -f "$ROOT/include/tdb.h" ] && INC=(-I"$ROOT/include")
"$CC" -O1 -g -Wall -Werror -Wno-deprecated-declarations "${INC[@]}" -I"$HERE/c" \
	-o "$WORK/killpoint" "$HERE/c/killpoint.c" -ltdb -ldl || exit 2
"$CC" -O1 -Wall -shared -fPIC -o "$WORK/crashshim.so" "$HERE/c/crashshim.c" -ldl || exit 2
KP=$WORK/killpoint
DB=$WORK/db.tdb

ours() { LD_LIBRARY_PATH="$OURS_LIBDIR" "$@"; }
deb() { env -u LD_LIBRARY_PATH "$@"; }

points=0
failed=0
summary=()
# verdicts MODE KIND: the state after our reopen and the four check verdicts,
# "STATE ours deb grown-ours grown-deb", then a word for each failed tdbtool check
verdicts() {
	local m=$1 kind=$2 st ck gr gd tt=""
	st=$(ours "$KP" verify "$DB" "$m" "$kind" 2>>"$WORK/err")
	[ -n "$st" ] || st="error error"
	ck=$(deb "$KP" check "$DB" "$m" 2>>"$WORK/err") || ck=error
	deb tdbtool "$DB" check 2>&1 | grep -q "Database integrity is OK" || tt=" tdbtool-fail"
	gr=$(ours "$KP" grow "$DB" "$m" 2>>"$WORK/err") || gr=error
	gd=$(deb "$KP" check "$DB" "$m" 2>>"$WORK/err") || gd=error
	deb tdbtool "$DB" check 2>&1 | grep -q "Database integrity is OK" || tt="$tt tdbtool-grown-fail"
	echo "$st $ck $gr $gd$tt"
}
# judge ROW WANT: counts the row, fails it unless all four checks are clean
# and the state is WANT (old, new, or "any" for old or new)
judge() {
	local row=$1 want=$2 state
	points=$((points + 1))
	state=${row%% *}
	set -- $row
	if [ "$*" != "$state clean clean clean clean" ] || { [ "$want" != any ] && [ "$state" != "$want" ]; }; then
		failed=$((failed + 1))
		return 1
	fi
	return 0
}

printf '%-14s %-10s %-9s %3s %-10s %-5s %-6s %-6s %-12s %-12s\n' \
	mode kind phase n call state ours deb grown-ours grown-deb
for m in "${MODES[@]}"; do
	for kind in "${KINDS[@]}"; do
		seen_new=0
		last=0
		before=$failed
		first=$points
		for ((n = 1; n <= 500; n++)); do
			ours "$KP" prepare "$DB" "$m" "$kind" || { echo "prepare failed"; exit 2; }
			LD_PRELOAD="$WORK/crashshim.so" ours "$KP" commit "$DB" "$m" "$kind" "$n" >"$WORK/out" 2>"$WORK/kill"
			rc=$?
			call=$(sed -n 's/^crashshim: kill at //p' "$WORK/kill")
			if [ $rc = 0 ]; then call=completed; elif [ $rc != 137 ]; then
				echo "$m $kind n=$n: commit exit $rc: $(cat "$WORK/out" "$WORK/kill")"; exit 2
			fi
			row=$(verdicts "$m" "$kind")
			if [ $rc = 0 ]; then want=new; elif [ $seen_new = 1 ]; then want=new; else want=any; fi
			mark=""
			judge "$row" "$want" || mark=" FAIL"
			[ "${row%% *}" = new ] && seen_new=1
			[ "${row%% *}" = old ] && last=$n
			set -- $row
			printf '%-14s %-10s %-9s %3d %-10s %-5s %-6s %-6s %-12s %-12s%s\n' \
				"$m" "$kind" commit "$n" "$call" "$1" "$2" "$3" "$4" "$5" "${*:6}$mark"
			[ $rc = 0 ] && break
		done
		summary+=("$(printf '%-14s %-10s commit   %3d points, %3d failed' "$m" "$kind" $((points - first)) $((failed - before)))")
		[ "$kind" = grow-moved ] || continue
		before=$failed
		first=$points
		# the commit killed at its last call that leaves the old state, then its recovery killed at each of its calls
		for ((r = 1; r <= 200; r++)); do
			ours "$KP" prepare "$DB" "$m" "$kind" || exit 2
			LD_PRELOAD="$WORK/crashshim.so" ours "$KP" commit "$DB" "$m" "$kind" "$last" >/dev/null 2>&1
			LD_PRELOAD="$WORK/crashshim.so" ours "$KP" open "$DB" "$m" "$r" >"$WORK/out" 2>"$WORK/kill"
			rc=$?
			call=$(sed -n 's/^crashshim: kill at //p' "$WORK/kill")
			if [ $rc = 0 ]; then call=completed; elif [ $rc != 137 ]; then
				echo "$m recovery r=$r: open exit $rc: $(cat "$WORK/out" "$WORK/kill")"; exit 2
			fi
			row=$(verdicts "$m" "$kind")
			mark=""
			judge "$row" old || mark=" FAIL"
			set -- $row
			printf '%-14s %-10s %-9s %3d %-10s %-5s %-6s %-6s %-12s %-12s%s\n' \
				"$m" "$kind" recovery "$r" "$call" "$1" "$2" "$3" "$4" "$5" "${*:6}$mark"
			[ $rc = 0 ] && break
		done
		summary+=("$(printf '%-14s %-10s recovery %3d points, %3d failed' "$m" "$kind" $((points - first)) $((failed - before)))")
	done
done
printf '%s\n' "${summary[@]}"
if [ -s "$WORK/err" ] && [ $failed != 0 ]; then
	echo "errors:"; sort "$WORK/err" | uniq -c | head -n 20
fi
echo "killpoints: $points points, $failed failed"
[ $failed = 0 ]
