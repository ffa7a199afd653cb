# tdb-rs: build, install and test a Rust drop-in for Samba's libtdb.so.1.

PREFIX ?= /usr/local
CARGO ?= cargo
RELEASE := target/release

.PHONY: all build install run test deps

all: build

# ---- build and install (section owned by the C ABI / build work) ----

# Where cargo puts the release build (honours CARGO_TARGET_DIR).
BUILT := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)/release
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SBINDIR ?= $(PREFIX)/sbin
# Samba's helper directory: the event daemon and ctdb_killtcp live there.
HELPERDIR ?= $(PREFIX)/libexec/ctdb
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CC ?= cc
# libdir and includedir in tdb.pc, relative to ${prefix} where they are under it.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
ABI_CHECK := ../shared/abi/check-abi

.PHONY: check-abi check-header header check-c-header

# The shared library, with libtdb.so.1 beside it so LD_LIBRARY_PATH=target/release
# finds it under its SONAME. build.rs also leaves the freshly generated header
# at $(BUILT)/tdb.h.
build:
	$(CARGO) build --release --workspace
	ln -sf libtdb.so $(BUILT)/libtdb.so.1

# DESTDIR-aware install: the library under its SONAME, the development symlink,
# the headers and the pkg-config file; ctdbd in SBINDIR, the event daemon
# ctdb-eventd and ctdb_killtcp in HELPERDIR, as Debian lays Samba's out
# (ctdbd finds ctdb-eventd in ../libexec/ctdb beside itself).
install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(HELPERDIR)
	install -m 0755 $(BUILT)/ctdbd $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(BUILT)/ctdb-eventd $(BUILT)/ctdb_killtcp $(DESTDIR)$(HELPERDIR)/
	rm -f $(DESTDIR)$(LIBDIR)/libtdb.so.1 $(DESTDIR)$(LIBDIR)/libtdb.so
	install -m 0755 $(BUILT)/libtdb.so $(DESTDIR)$(LIBDIR)/libtdb.so.1
	ln -s libtdb.so.1 $(DESTDIR)$(LIBDIR)/libtdb.so
	install -m 0644 include/tdb.h $(DESTDIR)$(INCLUDEDIR)/tdb.h
	install -m 0644 include/ctdb.h $(DESTDIR)$(INCLUDEDIR)/ctdb.h
	for pc in tdb ctdb; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	      -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' pkgconfig/$$pc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc; \
	  chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc; done

# SONAME, version nodes and every symbol's version against Samba's libtdb.so.1.
check-abi: build
	@if [ -x $(ABI_CHECK) ]; then $(ABI_CHECK) $(BUILT)/libtdb.so.1; \
	else echo "check-abi: $(ABI_CHECK) not found (shared/ must sit beside the checkout)"; exit 1; fi

# Fails (with the diff) when include/tdb.h or include/ctdb.h is not what
# src/ffi/tdb.rs or src/ffi/ctdb.rs generates, then compiles the C header checks.
check-header: build
	@for h in tdb.h ctdb.h; do diff -u include/$$h $(BUILT)/$$h || { \
	  echo "check-header: include/$$h is stale; run 'make header' and commit it"; exit 1; }; done
	@echo "check-header: include/tdb.h and include/ctdb.h are up to date"
	@$(MAKE) --no-print-directory check-c-header

# Copies the freshly generated header over include/tdb.h.
header: build
	cp $(BUILT)/tdb.h include/tdb.h
	cp $(BUILT)/ctdb.h include/ctdb.h

# C programs against the header: every prototype with Samba's types (gcc -Wall
# -Werror, and as C++), the values of every macro and enum (and, where Debian's
# /usr/include/tdb.h exists, the same values there), linked against the library.
# For ctdb.h: compat-tests/libctdb/libctdb-test.c (written against libctdb's
# original header) as C and C++, and the struct layouts and constants against
# compat-tests/libctdb/layout.expected (recorded from the original headers).
CABI := tests/c-abi
CABI_OUT := $(BUILT)/c-abi
CWARN := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
check-c-header: build
	@mkdir -p $(CABI_OUT)
	$(CC) $(CWARN) -Iinclude -o $(CABI_OUT)/api $(CABI)/api.c -L$(BUILT) -ltdb
	LD_LIBRARY_PATH=$(BUILT) $(CABI_OUT)/api
	$(CC) $(CWARN) -Iinclude -c -o $(CABI_OUT)/values.o $(CABI)/values.c
	$(CC) $(CWARN) -o $(CABI_OUT)/values $(CABI)/values-main.c $(CABI_OUT)/values.o
	$(CABI_OUT)/values
	@if command -v c++ >/dev/null; then \
	  echo "c++ -fsyntax-only $(CABI)/api.c"; \
	  c++ -x c++ -Wall -Werror -Wno-unused-parameter -Iinclude -fsyntax-only $(CABI)/api.c; fi
	$(CC) $(CWARN) -Iinclude -o $(CABI_OUT)/libctdb-test compat-tests/libctdb/libctdb-test.c -L$(BUILT) -ltdb
	c++ -x c++ -Wall -Werror -Wno-unused-parameter -Iinclude -fsyntax-only compat-tests/libctdb/libctdb-test.c
	$(CC) $(CWARN) -Iinclude -o $(CABI_OUT)/ctdb-layout compat-tests/libctdb/layout.c
	$(CABI_OUT)/ctdb-layout | diff -u compat-tests/libctdb/layout.expected -
	@if [ -r /usr/include/tdb.h ]; then set -e; \
	  echo "comparing every value with /usr/include/tdb.h"; \
	  $(CC) $(CWARN) -c -o $(CABI_OUT)/values-other.o $(CABI)/values-other.c; \
	  $(CC) $(CWARN) -DTDB_VALUES_OTHER -o $(CABI_OUT)/values-both $(CABI)/values-main.c \
	    $(CABI_OUT)/values.o $(CABI_OUT)/values-other.o; \
	  $(CABI_OUT)/values-both; fi

# ---- run and test (section owned by the test harness work) ----

# `make test`: every gate and suite (scripts/test.sh says which), against
# $(BUILT); one line per part and the total "N passed, M failed" last.
.PHONY: compat-test
test: deps
	@MAKE="$(MAKE)" CARGO="$(CARGO)" BUILT="$(BUILT)" bash scripts/test.sh

# Only the compat suite, against $(BUILT) (or OURS_LIBDIR=...).
compat-test: build
	OURS_LIBDIR=$${OURS_LIBDIR:-$(BUILT)} bash compat-tests/run.sh

# `make run`: Samba's own tools (Debian's tdb-tools binaries, unchanged) on our
# library: tdbtool creates a database and stores records, tdbdump prints it,
# tdbbackup backs it up and tdbbackup -v verifies it. Then a cluster of three
# ctdbd nodes of ours on free 127.0.0.x addresses (scripts/run-cluster.sh):
# all OK in Debian's `ctdb status`, a record written on node 0 read on node 2.
# `make run KIND=debian` runs the cluster part on Debian's ctdbd instead.
KIND ?= $(BUILT)/ctdbd
run: deps build
	@d=$$(mktemp -d); lib=$(abspath $(BUILT)); \
	export LD_LIBRARY_PATH=$$lib; set -e; \
	echo "== tdbtool resolves libtdb.so.1 to:"; ldd $$(command -v tdbtool) | grep libtdb; \
	echo "== tdbtool: create $$d/demo.tdb, insert and store records"; \
	printf 'create %s\ninsert hello world\ninsert answer 42\nstore motto same-files-same-locks\ninsert answer 43\nshow answer\ninfo\ncheck\nquit\n' $$d/demo.tdb | tdbtool; \
	echo; echo "== tdbdump $$d/demo.tdb"; tdbdump $$d/demo.tdb; \
	echo "== tdbbackup $$d/demo.tdb"; tdbbackup $$d/demo.tdb; \
	echo "== tdbbackup -v $$d/demo.tdb (verify)"; tdbbackup -v $$d/demo.tdb; \
	echo "== tdbdump $$d/demo.tdb.bak"; tdbdump $$d/demo.tdb.bak; \
	rm -rf $$d
	@bash scripts/run-cluster.sh $(KIND)

# Debian packages the build, `make run` and the tests need (installed if missing).
deps:
	@bash scripts/deps.sh

# ---- benchmark (section owned by the benchmark work, issue 4) ----
# bench/run.sh builds the library and bench/tdbbench.c, runs the same binary on
# Debian's libtdb.so.1 and on ours (LD_LIBRARY_PATH), and prints the table.
# See docs/benchmarks.md. Not a timed test: bench-smoke only checks that every
# workload runs (tiny sizes, < 30 s) and fails if the program fails.
.PHONY: bench bench-smoke bench-cluster bench-ctdb
# bench/ctdb-bench.sh: libctdb's workloads (bench/ctdb-bench.c: fetch_ring,
# message_ring, fetch_loop) on 3 nodes of Debian's ctdbd, then 3 of ours;
# results checked, ops/s per node side by side, peak RSS (docs/benchmarks.md).
bench-ctdb: build
	OURS_LIBDIR=$(BUILT) bash bench/ctdb-bench.sh
# bench/cluster.sh: 3 nodes of Debian's ctdbd, then 3 of ours, on the same
# layout: start until all OK, recovery of 100,000 volatile records, SIGKILL of
# a node until normal, peak RSS; ratios printed (docs/benchmarks.md).
bench-cluster: build
	OURS_LIBDIR=$(BUILT) bash bench/cluster.sh
bench:
	CARGO="$(CARGO)" CC="$(CC)" sh bench/run.sh

bench-smoke:
	BENCH_SMOKE=1 CARGO="$(CARGO)" CC="$(CC)" sh bench/run.sh

# ---- robustness (issue 5) ----
# torture/tdb-torture.c: N processes on one file, killable workers SIGKILLed at
# random moments (mostly timed to land inside a commit); afterwards tdb_check and
# an exact comparison with every worker's log, by the library that ran it and by
# the other one. See docs/robustness.md.
# Mutex-mode runs leave traversals out (-R) for both libraries: in mutex mode a
# traversal holds an fcntl record lock while it waits for the allrecord mutex,
# which a committing process holds while it waits for the fcntl range up to EOF.
# That deadlock is in the lock protocol itself; Samba's libtdb hangs the same way.
#   make robustness-smoke   short runs (< 90 s): the torn-log self-test, the
#                           watchdog made to fire (fcntl and mutex), fcntl,
#                           fcntl+nosync, mutex, mixed
#                           libraries, Debian's library, plus the disk-full,
#                           corrupt-file and lock-guard cargo tests (release and
#                           debug profile, which checks for integer overflow)
#   make torture TORTURE_SECS=600 TORTURE_PROCS=8 TORTURE_KILL_MS=100
#                           (TORTURE_SEED=N replays a run's seed; TORTURE_WATCHDOG=SEC
#                           is the no-progress time before a stall report, default 30)
#   make corpus-compare     the corrupt-file corpus through Debian's libtdb and ours
.PHONY: robustness-smoke torture-smoke torture torture-build corpus-compare
TORTURE_SECS ?= 120
TORTURE_PROCS ?= 8
TORTURE_KILL_MS ?= 150
TORTURE_WATCHDOG ?= 30
TORTURE_SEED ?=
TORTURE_LONG_OPTS = -n $(TORTURE_PROCS) -t $(TORTURE_SECS) -i $(TORTURE_KILL_MS) -w $(TORTURE_WATCHDOG) $(if $(TORTURE_SEED),-s $(TORTURE_SEED))
TORTURE_OUT := $(BUILT)/torture
TORTURE_BIN := $(TORTURE_OUT)/tdb-torture
DEBLIB_HAS_TDB := $(wildcard /usr/lib/x86_64-linux-gnu/libtdb.so.1)

torture-build: build
	@mkdir -p $(TORTURE_OUT)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -o $(TORTURE_BIN) torture/tdb-torture.c -L$(BUILT) -ltdb -ldl
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -o $(TORTURE_OUT)/corpus-run torture/corpus-run.c -L$(BUILT) -ltdb
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -o $(TORTURE_OUT)/mutex-ownerdead torture/mutex-ownerdead.c -L$(BUILT) -ltdb

# One run: $(1) = label, $(2) = LD_LIBRARY_PATH ("" = Debian's), $(3) = options.
# The other library verifies the same file while the run still holds it open.
define torture_run
	@d=$$(mktemp -d); lib=$(abspath $(BUILT)); \
	if [ -n "$(2)" ]; then other="env -u LD_LIBRARY_PATH"; else other="env LD_LIBRARY_PATH=$$lib"; fi; \
	if env $(if $(2),LD_LIBRARY_PATH=$(2),-u LD_LIBRARY_PATH) $(TORTURE_BIN) $(3) \
	     -V "$$other $(abspath $(TORTURE_BIN)) -c \$$TORTURE_DIR" $$d/run > $$d/out 2>&1; then \
	  echo "PASS torture $(1)"; sed 's/^/    /' $$d/out | grep -E '^    (torture|verify)'; rm -rf $$d; \
	else echo "FAIL torture $(1)"; grep -m1 '^torture:' $$d/out | sed 's/^/    /'; sed 's/^/    /' $$d/out | tail -n 60; \
	  echo "    (files kept in $$d)"; exit 1; fi
endef

robustness-smoke: torture-smoke
	$(CARGO) test --release -p tdb-engine --test diskfull --test robustness --test guards
	$(CARGO) test -p tdb-engine --test diskfull --test robustness --test guards

# The watchdog, made to fire: $(1) = label, $(2) = options. Worker 3 hangs holding
# a chain lock (-X 3, no kills); the run must stop with exit status 2 within a few
# seconds, naming worker 3 as the holder in the lock report ($(3): a regex) and,
# where gdb is installed, with stack frames.
define torture_stall_check
	@d=$$(mktemp -d); LD_LIBRARY_PATH=$(abspath $(BUILT)) $(TORTURE_BIN) -n 4 -t 20 -i 0 -w 3 -X 3 $(2) $$d/run > $$d/out 2>&1; rc=$$?; \
	why=""; [ $$rc = 2 ] || why="exit status $$rc, not 2"; \
	grep -q 'STALL during the run' $$d/out || why="$$why; no STALL report"; \
	grep -Eq '$(3)' $$d/out || why="$$why; the lock report does not name worker 3"; \
	if command -v gdb >/dev/null; then grep -q '^    #[0-9]' $$d/out || why="$$why; no stack frames"; fi; \
	if [ -z "$$why" ]; then echo "PASS torture watchdog $(1)"; grep -E '$(3)' $$d/out | head -n 1; rm -rf $$d; \
	else echo "FAIL torture watchdog $(1): $$why"; sed 's/^/    /' $$d/out | tail -n 40; echo "    (files kept in $$d)"; exit 1; fi
endef

# The torture part of robustness-smoke (make test runs it; cargo test covers the rest).
torture-smoke: torture-build
	@d=$$(mktemp -d); for l in ours debian; do \
	  if [ $$l = ours ]; then e="env LD_LIBRARY_PATH=$(abspath $(BUILT))"; else e="env -u LD_LIBRARY_PATH"; fi; \
	  if $$e $(TORTURE_OUT)/mutex-ownerdead $$d > $$d/out 2>&1; then echo "PASS mutex-ownerdead $$l"; \
	  else echo "FAIL mutex-ownerdead $$l"; sed 's/^/    /' $$d/out; rm -rf $$d; exit 1; fi; \
	  if $$e $(TORTURE_BIN) -T $$d/selftest > $$d/out 2>&1; then echo "PASS torture torn-log self-test $$l"; \
	  else echo "FAIL torture torn-log self-test $$l"; sed 's/^/    /' $$d/out; rm -rf $$d; exit 1; fi; done; rm -rf $$d
	$(call torture_stall_check,fcntl ours,,= worker 3\])
	$(call torture_stall_check,mutex ours,-m mutex -S -R,chain mutex [0-9]+: .*= worker 3)
	$(call torture_run,fcntl ours,$(abspath $(BUILT)),-n 6 -t 6 -i 150)
	$(call torture_run,fcntl+nosync ours,$(abspath $(BUILT)),-n 6 -t 4 -i 100 -S)
	$(call torture_run,mutex+nosync ours (no traversals),$(abspath $(BUILT)),-n 6 -t 4 -i 100 -m mutex -S -R)
	$(call torture_run,mutex ours (no traversals),$(abspath $(BUILT)),-n 4 -t 3 -i 150 -m mutex -R)
	$(call torture_run,fcntl mixed,$(abspath $(BUILT)),-n 6 -t 4 -i 150 -M $(abspath $(BUILT)))
	$(if $(DEBLIB_HAS_TDB),$(call torture_run,fcntl debian,,-n 6 -t 3 -i 150))
	$(if $(DEBLIB_HAS_TDB),$(call torture_run,mutex+nosync debian (no traversals),,-n 6 -t 3 -i 100 -m mutex -S -R))

torture: torture-build
	$(call torture_run,fcntl ours $(TORTURE_SECS)s,$(abspath $(BUILT)),$(TORTURE_LONG_OPTS))
	$(call torture_run,fcntl+nosync ours $(TORTURE_SECS)s,$(abspath $(BUILT)),$(TORTURE_LONG_OPTS) -S)
	$(call torture_run,mutex ours $(TORTURE_SECS)s (no traversals),$(abspath $(BUILT)),$(TORTURE_LONG_OPTS) -m mutex -R)
	$(call torture_run,mutex+nosync ours $(TORTURE_SECS)s (no traversals),$(abspath $(BUILT)),$(TORTURE_LONG_OPTS) -m mutex -S -R)
	$(call torture_run,fcntl+nosync mixed $(TORTURE_SECS)s,$(abspath $(BUILT)),$(TORTURE_LONG_OPTS) -S -M $(abspath $(BUILT)))

# Issue 11's long comparison: mutex+nosync (no traversals) for TORTURE_SECS on
# our library, then on Debian's: make torture-compare TORTURE_SECS=1800
.PHONY: torture-compare
torture-compare: torture-build
	$(call torture_run,mutex+nosync ours $(TORTURE_SECS)s (no traversals),$(abspath $(BUILT)),$(TORTURE_LONG_OPTS) -m mutex -S -R)
	$(if $(DEBLIB_HAS_TDB),$(call torture_run,mutex+nosync debian $(TORTURE_SECS)s (no traversals),,$(TORTURE_LONG_OPTS) -m mutex -S -R))

corpus-compare: torture-build
	@d=$$(mktemp -d); $(CARGO) run --release -q -p tdb-engine --example write_corpus -- $$d/corpus >/dev/null || exit 1; \
	for f in engine/tests/corpus/*.bin; do tail -c +2 $$f > $$d/corpus/$$(basename $$f .bin).tdb; done; \
	env -u LD_LIBRARY_PATH $(TORTURE_OUT)/corpus-run $$d/corpus/*.tdb > $$d/debian.txt; \
	LD_LIBRARY_PATH=$(abspath $(BUILT)) $(TORTURE_OUT)/corpus-run $$d/corpus/*.tdb > $$d/ours.txt; \
	echo "== results that differ (< debian, > ours):"; diff $$d/debian.txt $$d/ours.txt; \
	echo "== LOOP/HANG/CRASH with Debian's:"; grep -cE 'LOOP|HANG|CRASH' $$d/debian.txt; \
	echo "== LOOP/HANG/CRASH with ours:"; grep -cE 'LOOP|HANG|CRASH' $$d/ours.txt; rm -rf $$d; true

# ---- kill points of a commit (issue 11) ----
# The matrix: every write/msync/fsync/ftruncate/fallocate/utime of one commit by
# our library (and of its recovery) killed in turn, both libraries' checks after
# our reopen and after a growth; then the same run with Debian's library in our
# place, for comparison (its failures are expected).
.PHONY: killpoints
killpoints: build
	OURS_LIBDIR=$(BUILT) bash compat-tests/killpoints.sh
	-OURS_LIBDIR=/usr/lib/x86_64-linux-gnu bash compat-tests/killpoints.sh | tail -n 25

# The recovery daemon's deterministic cluster simulation with many seeds
# (cargo test runs 200 per CI run). SIM_SEEDS=n per scenario, SIM_SEED=s for
# one seed, SIM_TRACE=1 for every step's log.
.PHONY: sim
SIM_SEEDS ?= 1000
sim:
	SIM_SEEDS=$(SIM_SEEDS) SIM_VERBOSE=1 cargo test --release -p ctdbd sim_ -- --nocapture --test-threads=2
