# tdb-rs: build, install and test a Rust drop-in for Samba's libtdb.so.1.

PREFIX ?= /usr/local
CARGO ?= cargo
RELEASE := target/release

.PHONY: all build install run test

all: build

# ---- build and install (section owned by the C ABI / build work) ----

# Where cargo puts the release build (honours CARGO_TARGET_DIR).
BUILT := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)/release
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
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
	$(CARGO) build --release
	ln -sf libtdb.so $(BUILT)/libtdb.so.1

# DESTDIR-aware install: the library under its SONAME, the development symlink,
# the header and the pkg-config file.
install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	rm -f $(DESTDIR)$(LIBDIR)/libtdb.so.1 $(DESTDIR)$(LIBDIR)/libtdb.so
	install -m 0755 $(BUILT)/libtdb.so $(DESTDIR)$(LIBDIR)/libtdb.so.1
	ln -s libtdb.so.1 $(DESTDIR)$(LIBDIR)/libtdb.so
	install -m 0644 include/tdb.h $(DESTDIR)$(INCLUDEDIR)/tdb.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' pkgconfig/tdb.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/tdb.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/tdb.pc

# SONAME, version nodes and every symbol's version against Samba's libtdb.so.1.
check-abi: build
	@if [ -x $(ABI_CHECK) ]; then $(ABI_CHECK) $(BUILT)/libtdb.so.1; \
	else echo "check-abi: $(ABI_CHECK) not found, skipped"; fi

# Fails (with the diff) when include/tdb.h is not what src/capi.rs generates,
# then compiles the C header checks.
check-header: build
	@diff -u include/tdb.h $(BUILT)/tdb.h || { \
	  echo "check-header: include/tdb.h is stale; run 'make header' and commit it"; exit 1; }
	@echo "check-header: include/tdb.h is up to date"
	@$(MAKE) --no-print-directory check-c-header

# Copies the freshly generated header over include/tdb.h.
header: build
	cp $(BUILT)/tdb.h include/tdb.h

# C programs against the header: every prototype with Samba's types (gcc -Wall
# -Werror, and as C++), the values of every macro and enum (and, where Debian's
# /usr/include/tdb.h exists, the same values there), linked against the library.
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
	@if [ -r /usr/include/tdb.h ]; then set -e; \
	  echo "comparing every value with /usr/include/tdb.h"; \
	  $(CC) $(CWARN) -c -o $(CABI_OUT)/values-other.o $(CABI)/values-other.c; \
	  $(CC) $(CWARN) -DTDB_VALUES_OTHER -o $(CABI_OUT)/values-both $(CABI)/values-main.c \
	    $(CABI_OUT)/values.o $(CABI_OUT)/values-other.o; \
	  $(CABI_OUT)/values-both; fi

# ---- run and test (section owned by the test harness work) ----
