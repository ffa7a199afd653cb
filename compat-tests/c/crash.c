/* Interrupted commit:
 *   crash prepare FILE MODE        old dataset (MODE: mmap nommap mutex)
 *   crash commit  FILE MODE N      big transaction; the preloaded shim kills us at the N-th write/sync call
 *   crash verify  FILE MODE        prints old/new; fails on a mixed state or a failed tdb_check
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "common.h"

#define NREC 300

static int flags_for(const char *mode, int create) {
	if (strcmp(mode, "nommap") == 0) return TDB_NOMMAP;
	if (strcmp(mode, "mutex") == 0) return create ? (TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST) : TDB_MUTEX_LOCKING;
	return 0;
}
static void oldval(char *b, size_t n, int i) { snprintf(b, n, "old-%d", i); }
static void newval(char *b, size_t n, int i) { snprintf(b, n, "NEWVALUE-%d-%0120d", i, i); }

int main(int argc, char **argv) {
	const char *cmd = argc > 3 ? argv[1] : "", *f = argc > 3 ? argv[2] : "", *mode = argc > 3 ? argv[3] : "";
	struct tdb_context *tdb;
	char k[32], v[256];
	int i;

	if (strcmp(cmd, "prepare") == 0) {
		tdb = tdb_open(f, 0, flags_for(mode, 1), O_RDWR | O_CREAT | O_TRUNC, 0600);
		REQUIRE(tdb != NULL);
		for (i = 0; i < NREC; i++) {
			snprintf(k, sizeof k, "key%d", i);
			oldval(v, sizeof v, i);
			CHECK_EQ(tdb_store(tdb, S(k), S(v), TDB_INSERT), 0);
		}
		tdb_close(tdb);
	} else if (strcmp(cmd, "commit") == 0 && argc > 4) {
		void (*arm)(long) = (void (*)(long))dlsym(RTLD_DEFAULT, "compat_crash_arm");
		tdb = tdb_open(f, 0, flags_for(mode, 0), O_RDWR, 0600);
		REQUIRE(tdb != NULL);
		REQUIRE(tdb_transaction_start(tdb) == 0);
		for (i = 0; i < NREC; i++) {
			snprintf(k, sizeof k, "key%d", i);
			newval(v, sizeof v, i);
			if (i % 10 == 9) REQUIRE(tdb_delete(tdb, S(k)) == 0);
			else REQUIRE(tdb_store(tdb, S(k), S(v), TDB_REPLACE) == 0);
		}
		for (i = 0; i < 100; i++) {
			snprintf(k, sizeof k, "added%d", i);
			newval(v, sizeof v, i);
			REQUIRE(tdb_store(tdb, S(k), S(v), TDB_INSERT) == 0);
		}
		REQUIRE(arm != NULL);
		arm(atol(argv[4]));
		i = tdb_transaction_commit(tdb);
		arm(0);
		printf("%s\n", i == 0 ? "committed" : "commit-failed");
		tdb_close(tdb);
		return i == 0 ? 0 : 1;
	} else if (strcmp(cmd, "verify") == 0) {
		int nold = 0, nnew = 0, nbad = 0, n;
		static struct logcount lc;
		struct tdb_logging_context lctx = { count_log, &lc };
		tdb = tdb_open_ex(f, 0, flags_for(mode, 0), O_RDWR, 0600, &lctx, NULL);
		REQUIRE(tdb != NULL);
		for (i = 0; i < NREC; i++) {
			TDB_DATA d;
			snprintf(k, sizeof k, "key%d", i);
			d = tdb_fetch(tdb, S(k));
			oldval(v, sizeof v, i);
			if (d.dptr && d.dsize == strlen(v) && !memcmp(d.dptr, v, d.dsize)) nold++;
			else {
				newval(v, sizeof v, i);
				if (i % 10 == 9 ? d.dptr == NULL : (d.dptr && d.dsize == strlen(v) && !memcmp(d.dptr, v, d.dsize))) nnew++;
				else nbad++;
			}
			free(d.dptr);
		}
		for (i = 0; i < 100; i++) {
			snprintf(k, sizeof k, "added%d", i);
			if (tdb_exists(tdb, S(k))) nnew++; else nold++;
		}
		n = tdb_traverse_read(tdb, NULL, NULL);
		/* Debian's tdb_check reports "Dead space" after some rollbacks (the
		 * file keeps the length it grew to): report the result, the runner
		 * compares it between the libraries */
		i = tdb_check(tdb, NULL, NULL);
		tdb_close(tdb);
		if (nbad == 0 && nold == NREC + 100 && n == NREC) printf("old check=%s\n", i == 0 ? "ok" : "fail");
		else if (nbad == 0 && nnew == NREC + 100 && n == NREC - NREC / 10 + 100) printf("new check=%s\n", i == 0 ? "ok" : "fail");
		else {
			printf("mixed old=%d new=%d bad=%d count=%d\n", nold, nnew, nbad, n);
			failures++;
		}
	} else {
		fprintf(stderr, "usage: crash prepare|commit|verify FILE MODE [N]\n");
		return 2;
	}
	return finish(argv[0]);
}
