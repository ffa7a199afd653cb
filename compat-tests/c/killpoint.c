/* One transaction commit, killed at a chosen system call (issue 11):
 *   killpoint prepare FILE MODE KIND      the old dataset (and, for KIND grow-moved, a
 *                                         first commit so that a recovery area exists)
 *   killpoint commit FILE MODE KIND N     the commit; the preloaded crash shim kills
 *                                         us at its N-th write/sync/truncate/utime call
 *   killpoint open FILE MODE N            an open (which recovers), killed at its N-th call
 *   killpoint verify FILE MODE KIND       prints "old|new clean|dead|fail": which state
 *                                         the file holds, and tdb_check's verdict
 *                                         (dead: passed but logged dead space)
 *   killpoint check FILE MODE             tdb_check's verdict alone
 *   killpoint grow FILE MODE              a store that grows the file, then the same verdict
 * MODE: fcntl, nommap or mutex, each optionally with "-nosync" (TDB_NOSYNC).
 * KIND: small (rewrites two records in place), grow (adds records: the file grows)
 * or grow-moved (grows, and the recovery area of an earlier commit moves to the end).
 * verify and grow exit 1 on a state that is neither old nor new. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "common.h"

#define NOLD 40
#define NADD 30

static int flags_for(const char *mode) {
	int f = 0;
	if (strncmp(mode, "nommap", 6) == 0) f |= TDB_NOMMAP;
	if (strncmp(mode, "mutex", 5) == 0) f |= TDB_MUTEX_LOCKING;
	if (strstr(mode, "-nosync")) f |= TDB_NOSYNC;
	return f;
}

static int dead_space_logged;
static void kp_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...) {
	char buf[512];
	va_list ap;
	(void)tdb;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (strstr(buf, "Dead space")) dead_space_logged = 1;
	if (getenv("KILLPOINT_LOG")) fprintf(stderr, "log: %s", buf);
}

static struct tdb_context *open_db(const char *f, const char *mode, int create) {
	struct tdb_logging_context lctx = { kp_log, NULL };
	int fl = flags_for(mode);
	if (create && (fl & TDB_MUTEX_LOCKING)) fl |= TDB_CLEAR_IF_FIRST;
	return tdb_open_ex(f, 0, fl, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600, &lctx, NULL);
}

static void oldval(char *b, size_t n, int i) { snprintf(b, n, "old-%d", i); }
static void newval(char *b, size_t n, int i) { snprintf(b, n, "new-%d-%0150d", i, i); }

static void store(struct tdb_context *tdb, const char *k, const char *v) {
	REQUIRE(tdb_store(tdb, S(k), S(v), TDB_REPLACE) == 0);
}

/* the commit's writes: two rewritten records, or NADD new ones */
static void change(struct tdb_context *tdb, const char *kind) {
	char k[32], v[256];
	int i;
	if (strcmp(kind, "small") == 0) {
		for (i = 0; i < 2; i++) {
			snprintf(k, sizeof k, "key%d", i);
			snprintf(v, sizeof v, "NEW%d", i);
			store(tdb, k, v);
		}
		return;
	}
	for (i = 0; i < NADD; i++) {
		snprintf(k, sizeof k, "added%d", i);
		newval(v, sizeof v, i);
		store(tdb, k, v);
	}
	store(tdb, "key0", "NEW0");
}

/* 1 = old state, 2 = new state, 0 = neither */
static int state(struct tdb_context *tdb, const char *kind) {
	char k[32], v[256];
	int i, old = 1, new = 1;
	for (i = 0; i < NOLD; i++) {
		TDB_DATA d;
		snprintf(k, sizeof k, "key%d", i);
		d = tdb_fetch(tdb, S(k));
		oldval(v, sizeof v, i);
		if (!(d.dptr && d.dsize == strlen(v) && !memcmp(d.dptr, v, d.dsize))) old = 0;
		if (strcmp(kind, "small") == 0 ? i < 2 : i < 1) snprintf(v, sizeof v, "NEW%d", i);
		if (!(d.dptr && d.dsize == strlen(v) && !memcmp(d.dptr, v, d.dsize))) new = 0;
		free(d.dptr);
	}
	if (strcmp(kind, "small") != 0) {
		for (i = 0; i < NADD; i++) {
			snprintf(k, sizeof k, "added%d", i);
			if (tdb_exists(tdb, S(k))) old = 0; else new = 0;
		}
	}
	return old ? 1 : new ? 2 : 0;
}

static const char *verdict(struct tdb_context *tdb) {
	dead_space_logged = 0;
	if (tdb_check(tdb, NULL, NULL) != 0) return "fail";
	return dead_space_logged ? "dead" : "clean";
}

int main(int argc, char **argv) {
	const char *cmd = argc > 3 ? argv[1] : "", *f = argc > 3 ? argv[2] : "", *mode = argc > 3 ? argv[3] : "";
	struct tdb_context *tdb;
	char k[32], v[256];
	int i;

	if (strcmp(cmd, "prepare") == 0 && argc > 4) {
		tdb = open_db(f, mode, 1);
		REQUIRE(tdb != NULL);
		for (i = 0; i < NOLD; i++) {
			snprintf(k, sizeof k, "key%d", i);
			oldval(v, sizeof v, i);
			REQUIRE(tdb_store(tdb, S(k), S(v), TDB_INSERT) == 0);
		}
		if (strcmp(argv[4], "grow-moved") == 0) {
			/* a small committed transaction: its recovery area sits at the
			 * end, and the growing commit will have to move it */
			REQUIRE(tdb_transaction_start(tdb) == 0);
			store(tdb, "key1", "old-1");
			REQUIRE(tdb_transaction_commit(tdb) == 0);
		}
		tdb_close(tdb);
	} else if (strcmp(cmd, "commit") == 0 && argc > 5) {
		void (*arm)(long) = (void (*)(long))dlsym(RTLD_DEFAULT, "compat_crash_arm");
		REQUIRE(arm != NULL);
		tdb = open_db(f, mode, 0);
		REQUIRE(tdb != NULL);
		REQUIRE(tdb_transaction_start(tdb) == 0);
		change(tdb, argv[4]);
		arm(atol(argv[5]));
		i = tdb_transaction_commit(tdb);
		arm(0);
		printf("%s\n", i == 0 ? "committed" : "commit-failed");
		tdb_close(tdb);
		return i == 0 ? 0 : 1;
	} else if (strcmp(cmd, "open") == 0 && argc > 4) {
		void (*arm)(long) = (void (*)(long))dlsym(RTLD_DEFAULT, "compat_crash_arm");
		REQUIRE(arm != NULL);
		arm(atol(argv[4]));
		tdb = open_db(f, mode, 0);
		arm(0);
		REQUIRE(tdb != NULL);
		tdb_close(tdb);
	} else if (strcmp(cmd, "verify") == 0 && argc > 4) {
		tdb = open_db(f, mode, 0);
		REQUIRE(tdb != NULL);
		i = state(tdb, argv[4]);
		printf("%s %s\n", i == 1 ? "old" : i == 2 ? "new" : "mixed", verdict(tdb));
		tdb_close(tdb);
		return i == 0 ? 1 : 0;
	} else if (strcmp(cmd, "check") == 0) {
		tdb = open_db(f, mode, 0);
		REQUIRE(tdb != NULL);
		printf("%s\n", verdict(tdb));
		tdb_close(tdb);
	} else if (strcmp(cmd, "grow") == 0) {
		static char big[40000];
		memset(big, 'g', sizeof big - 1);
		tdb = open_db(f, mode, 0);
		REQUIRE(tdb != NULL);
		REQUIRE(tdb_store(tdb, S("growth"), S(big), TDB_REPLACE) == 0);
		printf("%s\n", verdict(tdb));
		tdb_close(tdb);
	} else {
		fprintf(stderr, "usage: killpoint prepare|commit|open|verify|grow FILE MODE [KIND] [N]\n");
		return 2;
	}
	return 0;
}
