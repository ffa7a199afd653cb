#!/usr/bin/env bash
# The event daemon: Debian's /usr/libexec/ctdb/ctdb-eventd and ours side by
# side, driven by Debian's own clients.
#
#   compat-tests/ctdb/eventd.sh
#
# Each daemon gets its own CTDB_BASE in a temp dir (test mode, so its
# socket is $CTDB_BASE/run/eventd.socket; unix sockets only, nothing on the
# network), the same events directory of test scripts (ok, quiet, not
# executable, printing output, failing, hanging past the timeout, slow,
# exiting 64/70 or killed, symlinked to $CTDB_BASE/share, a second empty
# component and a file where a component should be) and runs as
# `CTDB_INTERACTIVE=1 ctdb-eventd -P $$ -S 3`.  The two scenarios run at
# the same time; each step's output (and exit status) must be identical
# after masking times and durations:
#  - `ctdb-event` run/status: status before any run, after ok, after a
#    failure, after a timeout (without and, after a restart with
#    `[event] debug script`, with a debug script, whose arguments, output
#    and the killing of the hung process are compared), after a cancelled
#    monitor; RUN_ALL (CTDB_EVENT_RUN_ALL); a monitor refused while another
#    event runs; queued runs; bad component, component that is a file,
#    never-run event, empty component;
#  - `ctdb-event script list|enable|disable` (existing, missing, already
#    enabled, symlinked) and `ctdb event ...`, `ctdb scriptstatus`;
#  - SCRIPT requests and malformed packets over the raw protocol
#    (eventd_raw.py): results, the daemon survives and answers after;
#  - -S writes four zero bytes once listening and keeps the pipe open
#    (not inherited by scripts) until it exits (eventd_startup.py); -P: the
#    daemon exits when
#    the watched process is gone (status and log line);
#  - Debian's own legacy scripts (00.ctdb, 01.reclock, 05.system,
#    10.interface; 60.nfs disabled) through every event, with
#    CTDB_SCRIPT_VARDIR in the base;
#  - ctdb.conf: refused values, ignored lines; SIGHUP, SIGUSR1, SIGINT;
#  - not interactive: the log file ctdb.conf names, in Samba's line format;
#  - the daemons' log lines, pids masked.
#
# Environment: EVENTD_BIN (ours, default the release build in OURS_LIBDIR
# or target/release), DEBIAN_EVENTD (default /usr/libexec/ctdb/ctdb-eventd),
# COMPAT_KEEP=1 keeps the run directory.  Daemons are stopped by pid.
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILT=${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
OURS=${EVENTD_BIN:-$BUILT/ctdb-eventd}
DEBIAN=${DEBIAN_EVENTD:-/usr/libexec/ctdb/ctdb-eventd}
TOOL=/usr/libexec/ctdb/ctdb-event
RAW=$HERE/eventd_raw.py
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-eventd.XXXXXX")
PASSED=0
FAILED=0
declare -A DPID

cleanup() {
	local k
	for k in "${!DPID[@]}"; do
		kill "${DPID[$k]}" 2>/dev/null && wait "${DPID[$k]}" 2>/dev/null
	done
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT
pass() {
	echo "PASS $1"
	PASSED=$((PASSED + 1))
}
fail() {
	echo "FAIL $1"
	[ -n "${2:-}" ] && sed 's/^/    /' <<<"$2" | head -n 40
	FAILED=$((FAILED + 1))
}
finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

if [ ! -x "$DEBIAN" ] || [ ! -x "$TOOL" ]; then
	fail "Debian's ctdb-eventd and ctdb-event are installed (package ctdb)"
	finish
fi
if [ ! -x "$OURS" ]; then
	fail "our ctdb-eventd is built ($OURS)"
	finish
fi

# Samba's daemon ends an interactive run with a talloc report (addresses
# and sizes of its allocations); that is left out.
notalloc() { sed -E '/^full talloc report/d; /^ +struct /d' "$1"; }

# layout BASE: the events directory and configuration every daemon gets.
layout() {
	local b=$1 l=$1/events/legacy s=$1/share/events/legacy
	mkdir -p "$b/run" "$l" "$s" "$b/events/empty"
	: >"$b/events/notadir"
	printf '#!/bin/sh\n' >"$l/1.badname.script"
	printf '#!/bin/sh\necho "args: $*"\n' >"$l/01.ok.script"
	printf '#!/bin/sh\nexit 0\n' >"$l/02.quiet.script"
	printf '#!/bin/sh\necho "must not run"\nexit 1\n' >"$l/05.disabled.script"
	printf '#!/bin/sh\nprintf "line one\\n\\nline two\\n"\necho "to stderr" >&2\n' >"$l/10.output.script"
	cat >"$l/20.control.script" <<-'EOF'
		#!/bin/sh
		case "$1" in
		fail) echo "failing on $*" >&2; exit 7 ;;
		hang) echo "hanging"; echo $$ > "$CTDB_BASE/hung.pid"; sleep 20 ;;
		slow) sleep 2 ;;
		monitor) [ -e "$CTDB_BASE/slow" ] && sleep 2 ;;
		exit64) exit 64 ;;
		exit70) exit 70 ;;
		killed) kill -9 $$ ;;
		esac
		exit 0
	EOF
	printf '#!/bin/sh\necho "linked $1"\n' >"$s/30.linked.script"
	printf '#!/bin/sh\necho "provided $1"\n' >"$s/50.provided.script"
	ln -s "$s/30.linked.script" "$l/30.linked.script"
	printf '#!/bin/sh\necho "after $1"\n' >"$l/40.after.script"
	chmod 0755 "$l"/*.script "$s"/*.script
	chmod 0644 "$l/05.disabled.script"
	printf '#!/bin/sh\necho "$1 $2" > "$CTDB_BASE/debug.args"\necho "debugging $2"\nkill -0 "$1" && echo "hung process alive"\n' >"$b/debug-hung.sh"
	chmod 0755 "$b/debug-hung.sh"
	printf '[logging]\n\tlog level = NOTICE\n' >"$b/ctdb.conf"
}

# start KIND: starts that kind's daemon on its base (log appended).
start() {
	local k=$1 bin b=$RUN/$1
	bin=$OURS
	[ "$k" = debian ] && bin=$DEBIAN
	rm -f "$b/startup"
	CTDB_TEST_MODE=yes CTDB_BASE=$b CTDB_INTERACTIVE=1 \
		"$bin" -P $$ -S 3 3>"$b/startup" >>"$b/daemon.log" 2>&1 &
	DPID[$k]=$!
	local i
	for i in $(seq 100); do
		[ -S "$b/run/eventd.socket" ] && [ -s "$b/startup" ] && return 0
		sleep 0.05
	done
	return 1
}

stop() {
	local k=$1
	[ -n "${DPID[$k]:-}" ] || return 0
	kill "${DPID[$k]}" 2>/dev/null
	wait "${DPID[$k]}" 2>/dev/null
	unset "DPID[$k]"
}

# The tools against KIND's base; output with the exit status appended.
ev() { CTDB_TEST_MODE=yes CTDB_BASE=$B "$TOOL" "$@" 2>&1; echo "rc=$?"; }
ctdbtool() { CTDB_TEST_MODE=yes CTDB_BASE=$B ctdb "$@" 2>&1; echo "rc=$?"; }
raw() { python3 "$RAW" "$B/run/eventd.socket" "$@" 2>&1; }

# step NAME COMMAND...: records the command's output for KIND.
step() {
	local name=$1
	shift
	"$@" >"$OUT/$name" 2>&1
}

# wait_gone PIDFILE: "gone" once the pid in PIDFILE is no longer running.
wait_gone() {
	local pid i
	pid=$(cat "$1" 2>/dev/null) || { echo "no pid"; return; }
	for i in $(seq 60); do
		kill -0 "$pid" 2>/dev/null || { echo "gone"; return; }
		sleep 0.1
	done
	echo "still running"
}

run_all() { CTDB_EVENT_RUN_ALL=1 "$@"; }
exit_statuses() {
	local e
	for e in exit64 exit70 killed; do
		ev run 10 legacy "$e"
		ev status legacy "$e"
	done
}
raw_scripts() {
	raw script legacy 02.quiet disable
	stat -c %A "$B/events/legacy/02.quiet.script"
	raw script legacy 02.quiet.script enable
	raw script legacy 02.quiet enable
	stat -c %A "$B/events/legacy/02.quiet.script"
	raw script legacy 99.missing enable
	raw script legacy 30.linked disable
	raw script legacy notascript enable
	raw script legacy 50.provided disable
	raw script legacy 1.badname enable
	raw script nosuch 01.ok enable
	raw script notadir 01.ok enable
}
raw_garbage() {
	local g
	for g in badcmd truncated short; do raw garbage "$g"; done
	raw status legacy fail
	ev status legacy fail
}

scenario_basic() {
	step 01-status-before-any-run ev status legacy monitor
	step 02-run-ok ev run 10 legacy startup one two
	step 03-status-after-ok ev status legacy startup
	step 04-run-fail ev run 10 legacy fail x
	step 05-status-after-failure ev status legacy fail
	step 06-run-all run_all ev run 10 legacy fail y
	step 07-status-run-all ev status legacy fail
	step 08-exit-statuses exit_statuses
	step 09-monitor-ok ev run 10 legacy monitor
	step 10-status-monitor ev status legacy monitor
	step 11-timeout ev run 1 legacy hang
	step 12-status-after-timeout ev status legacy hang
	# Without a debug script Samba leaves a timed-out script running;
	# ours terminates its process group (checked below, not compared).
	wait_gone "$B/hung.pid" >"$RUN/hung-without-debug.$KIND"
	step 14-bad-component ev run 10 nosuch startup
	step 15-status-bad-component ev status nosuch startup
	step 16-component-is-a-file ev run 10 notadir startup
	step 17-status-file-component ev status notadir startup
	step 18-never-run-event ev status legacy neverran
	step 19-empty-component ev run 10 empty startup
	step 20-status-empty-component ev status empty startup
	# (A timeout of 0 is left out: in Samba's daemon whether a quick
	# script ends before its already-passed deadline fires is a race.)
}

scenario_cancel() {
	touch "$B/slow"
	ev run 10 legacy monitor >"$OUT/21-monitor-cancelled" 2>&1 &
	local bg=$!
	sleep 0.5
	step 22-run-cancels-monitor ev run 10 legacy startup three
	wait "$bg"
	rm -f "$B/slow"
	step 23-status-after-cancel ev status legacy monitor
	step 24-status-of-cancelling-run ev status legacy startup
	ev run 10 legacy slow >"$OUT/25-slow-run" 2>&1 &
	bg=$!
	sleep 0.5
	step 26-monitor-refused-while-busy ev run 10 legacy monitor
	step 27-queued-run ev run 10 legacy queued
	wait "$bg"
	step 28-status-queued ev status legacy queued
	step 29-status-slow ev status legacy slow
}

scenario_scripts() {
	step 30-script-list ev script list legacy
	step 31-enable-disabled ev script enable legacy 05.disabled
	step 32-enable-again ev script enable legacy 05.disabled
	step 33-run-enabled ev run 10 legacy startup four
	step 34-disable ev script disable legacy 05.disabled
	step 35-enable-missing ev script enable legacy 99.missing
	step 36-enable-provided ev script enable legacy 50.provided
	step 37-disable-linked ev script disable legacy 30.linked
	step 38-list-after ev script list legacy
	step 39-ctdb-event-status ctdbtool event status legacy fail
	step 40-ctdb-scriptstatus ctdbtool scriptstatus
	step 41-ctdb-event-run ctdbtool event run 10 legacy startup five
	step 42-raw-script raw_scripts
	step 43-raw-garbage raw_garbage
}

scenario_debug() {
	rm -f "$B/hung.pid" "$B/debug.args"
	step 50-status-after-restart ev status legacy monitor
	step 51-timeout-with-debug ev run 1 legacy hang
	step 52-status-timeout-debug ev status legacy hang
	step 53-hung-process-ended wait_gone "$B/hung.pid"
	step 54-debug-args sed 's/^[0-9][0-9]* /PID /' "$B/debug.args"
}

# scenario KIND: the whole scenario on KIND's daemon; outputs in $RUN/out.KIND.
scenario() {
	local k=$1
	KIND=$k
	B=$RUN/$k
	OUT=$RUN/out.$k
	mkdir -p "$OUT"
	layout "$B"
	start "$k" || { echo "$k did not start" >"$OUT/00-start"; return; }
	od -An -tx1 "$B/startup" >"$OUT/00-startup-fd"
	scenario_basic
	scenario_cancel
	scenario_scripts
	stop "$k"
	printf '[logging]\n\tlog level = NOTICE\n[event]\n\tdebug script = debug-hung.sh\n' >"$B/ctdb.conf"
	start "$k" || { echo "$k did not restart" >"$OUT/49-restart"; return; }
	scenario_debug
	stop "$k"
}

scenario debian &
DEB_JOB=$!
scenario ours
wait "$DEB_JOB"

# The pid watch: a daemon watching a process that exits soon after.
watch_test() {
	local k=$1 bin=$OURS b=$RUN/watch.$1 w rc
	[ "$k" = debian ] && bin=$DEBIAN
	mkdir -p "$b/run"
	sleep 0.3 &
	w=$!
	CTDB_TEST_MODE=yes CTDB_BASE=$b CTDB_INTERACTIVE=1 timeout 10 "$bin" -P "$w" >"$b/log" 2>&1
	rc=$?
	wait "$w" 2>/dev/null
	echo "rc=$rc"
	notalloc "$b/log" | sed -E -e "s#$b#BASE#" -e "s/[0-9]+/N/g"
	[ -e "$b/run/eventd.socket" ] && echo "socket left behind"
	[ -e "$b/run/eventd.pid" ] && echo "pid file left behind"
}
# -S as ctdbd uses it: the start-up pipe stays open until the daemon ends,
# and a script's background child does not hold it.
startup_test() {
	local k=$1 bin=$OURS b=$RUN/startup.$1
	[ "$k" = debian ] && bin=$DEBIAN
	mkdir -p "$b/run" "$b/events/legacy"
	printf '#!/bin/sh\nsleep 30 >/dev/null 2>&1 &\necho $! > "$CTDB_BASE/bg.pid"\n' >"$b/events/legacy/01.bg.script"
	chmod 0755 "$b/events/legacy/01.bg.script"
	python3 "$HERE/eventd_startup.py" "$bin" "$b" 2>&1
}
# Debian's own legacy scripts (copied, 60.nfs disabled; none that starts
# a service), their state directory in the base: every event, then its
# status; the script output and log lines are compared like the rest.
debian_scripts_test() {
	local k=$1 bin=$OURS b=$RUN/scripts.$1 s e p
	[ "$k" = debian ] && bin=$DEBIAN
	mkdir -p "$b/run" "$b/events/legacy" "$b/var"
	cp /etc/ctdb/functions /etc/ctdb/script.options "$b/"
	for s in 00.ctdb 01.reclock 05.system 10.interface 60.nfs; do
		cp "/usr/share/ctdb/events/legacy/$s.script" "$b/events/legacy/"
	done
	chmod 0644 "$b/events/legacy/60.nfs.script"
	CTDB_TEST_MODE=yes CTDB_BASE=$b CTDB_INTERACTIVE=1 CTDB_SCRIPT_VARDIR=$b/var \
		"$bin" -P $$ >"$b/log" 2>&1 &
	p=$!
	for s in $(seq 100); do [ -S "$b/run/eventd.socket" ] && break; sleep 0.05; done
	for e in init setup startup monitor "takeip lo 192.0.2.1 24" ipreallocated; do
		# shellcheck disable=SC2086
		CTDB_TEST_MODE=yes CTDB_BASE=$b "$TOOL" run 30 legacy $e 2>&1
		echo "rc=$?"
		CTDB_TEST_MODE=yes CTDB_BASE=$b "$TOOL" status legacy "${e%% *}" 2>&1
		echo "rc=$?"
	done
	kill "$p"
	wait "$p" 2>/dev/null
	echo "--- log"
	notalloc "$b/log" | sed -E -e "s#$b#BASE#g" -e 's/pid=[0-9]+/pid=N/'
}
# Not interactive: log lines go where ctdb.conf says, in Samba's file format
# (timestamp, host = basename of CTDB_BASE in test mode, ctdb-eventd[pid]).
logfile_test() {
	local k=$1 bin=$OURS b=$RUN/logfile.$1 p i
	[ "$k" = debian ] && bin=$DEBIAN
	mkdir -p "$b/run" "$b/events/legacy"
	printf '#!/bin/sh\necho "said $1"\nexit 1\n' >"$b/events/legacy/01.say.script"
	chmod 0755 "$b/events/legacy/01.say.script"
	printf '[logging]\n\tlocation = file:%s/log.ctdb\n\tlog level = NOTICE\n' "$b" >"$b/ctdb.conf"
	CTDB_TEST_MODE=yes CTDB_BASE=$b "$bin" -P $$ >"$b/out" 2>&1 &
	p=$!
	for i in $(seq 100); do [ -S "$b/run/eventd.socket" ] && break; sleep 0.05; done
	CTDB_TEST_MODE=yes CTDB_BASE=$b "$TOOL" run 5 legacy something 2>&1
	kill "$p"
	wait "$p" 2>/dev/null
	echo "--- stdout/stderr"
	cat "$b/out"
	echo "--- log.ctdb"
	sed -E -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2} /TIME /' \
		-e 's/\[[0-9]+\]/[PID]/; s/pid=[0-9]+/pid=N/' -e "s#$b#BASE#g" \
		-e 's/logfile\.(debian|ours)/HOST/' "$b/log.ctdb"
}
logfile_test debian >"$RUN/out.debian/63-log-file" &
logfile_test ours >"$RUN/out.ours/63-log-file"
wait
# ctdb.conf as Samba's daemon reads it: refused values (each reported,
# exit EINVAL), lines and sections it ignores; then SIGHUP, SIGUSR1 (the
# file read again: a bad value is reported and changes nothing) and SIGINT.
config_test() {
	local k=$1 bin=$OURS b=$RUN/config.$1 conf p
	[ "$k" = debian ] && bin=$DEBIAN
	mkdir -p "$b/run" "$b/events/legacy"
	for conf in '[logging]\n\tlog level = LOUD\n\tlocation = nowhere\n' \
		'[event]\n debug script = nothere.sh\n' \
		'garbage line\n[Logging]\nLog Level = LOUD\n[logging]\nlog level = info\nbogus = 1\n'; do
		printf "$conf" >"$b/ctdb.conf"
		echo "== $conf"
		CTDB_TEST_MODE=yes CTDB_BASE=$b CTDB_INTERACTIVE=1 timeout 1.5 "$bin" -P $$ >"$b/out" 2>&1
		echo "rc=$?"
		notalloc "$b/out"
	done
	printf '[logging]\n\tlog level = NOTICE\n' >"$b/ctdb.conf"
	CTDB_TEST_MODE=yes CTDB_BASE=$b CTDB_INTERACTIVE=1 "$bin" -P $$ >"$b/out" 2>&1 &
	p=$!
	for _ in $(seq 100); do [ -S "$b/run/eventd.socket" ] && break; sleep 0.05; done
	kill -HUP "$p"
	sleep 0.2
	printf '[logging]\n\tlog level = LOUD\n' >"$b/ctdb.conf"
	kill -USR1 "$p"
	sleep 0.2
	kill -INT "$p"
	wait "$p"
	echo "== signals rc=$?"
	notalloc "$b/out"
}
config_test debian 2>&1 | sed -E -e "s#$RUN/config.debian#BASE#g" -e 's/pid=[0-9]+/pid=N/' >"$RUN/out.debian/64-config" &
config_test ours 2>&1 | sed -E -e "s#$RUN/config.ours#BASE#g" -e 's/pid=[0-9]+/pid=N/' >"$RUN/out.ours/64-config"
wait
debian_scripts_test debian >"$RUN/out.debian/62-debian-legacy-scripts" &
debian_scripts_test ours >"$RUN/out.ours/62-debian-legacy-scripts"
wait
startup_test debian >"$RUN/out.debian/61-startup-pipe" &
startup_test ours >"$RUN/out.ours/61-startup-pipe"
wait
watch_test debian >"$RUN/out.debian/60-watched-pid-gone" &
watch_test ours >"$RUN/out.ours/60-watched-pid-gone"
wait

mask() {
	sed -E -e 's/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}/DATE/g' \
		-e 's/ [0-9]+\.[0-9]{3} / DUR /g' \
		-e "s#$RUN/(watch\.)?(debian|ours)#BASE#g" "$1"
}

for f in "$RUN"/out.debian/*; do
	name=$(basename "$f")
	if [ ! -e "$RUN/out.ours/$name" ]; then
		fail "$name: no output from ours"
		continue
	fi
	d=$(diff <(mask "$f") <(mask "$RUN/out.ours/$name"))
	if [ -z "$d" ]; then pass "$name"; else fail "$name differs (< debian, > ours)" "$d"; fi
done
for f in "$RUN"/out.ours/*; do
	[ -e "$RUN/out.debian/$(basename "$f")" ] || fail "$(basename "$f"): only ours produced it"
done

if [ "$(cat "$RUN/hung-without-debug.ours")" = gone ]; then
	pass "a timed-out script without a debug script is terminated (Samba's: $(cat "$RUN/hung-without-debug.debian"))"
else
	fail "a timed-out script without a debug script is terminated" "$(cat "$RUN/hung-without-debug.ours")"
fi
grep -q "^PID hang$" "$RUN/out.debian/54-debug-args" &&
	pass "the debug script ran with the hung pid and the event on Debian's daemon" ||
	fail "the debug script did not run on Debian's daemon" "$(cat "$RUN/out.debian/54-debug-args")"

# Sanity: the steps really did what they claim on Debian's daemon.
if grep -q "TIMEDOUT" "$RUN/out.debian/12-status-after-timeout" &&
	grep -q "got cancelled" "$RUN/out.debian/21-monitor-cancelled" &&
	grep -q "got cancelled" "$RUN/out.debian/26-monitor-refused-while-busy" &&
	grep -q "event_debug: debugging hang" "$RUN/debian/daemon.log"; then
	pass "scenario reached timeout, cancel, refusal and the debug script on Debian's daemon"
else
	fail "scenario did not reach timeout/cancel/refusal/debug script on Debian's daemon"
fi

logmask() {
	sed -E -e 's/pid=[0-9]+/pid=N/; s/[0-9]+ gone away/N gone away/' \
		-e "s#$RUN/(debian|ours)#BASE#g" \
		-e 's/(debugging|PID) [0-9]+/\1 N/' "$1"
}
d=$(diff <(logmask <(notalloc "$RUN/debian/daemon.log")) <(logmask "$RUN/ours/daemon.log"))
if [ -z "$d" ]; then pass "daemon log lines"; else fail "daemon log lines differ (< debian, > ours)" "$d"; fi
finish
