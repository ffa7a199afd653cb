# tdb-rs: build, install and test a Rust drop-in for Samba's libtdb.so.1.

PREFIX ?= /usr/local
CARGO ?= cargo
RELEASE := target/release

.PHONY: all build install run test

all: build

# ---- build and install (section owned by the C ABI / build work) ----

# ---- run and test (section owned by the test harness work) ----
