/* Concurrency: several processes (of both libraries) on one file.
 *   stress create FILE MODE                  (MODE: fcntl mutex)
 *   stress worker FILE MODE ID SECONDS LOG   random ops; logs committed transactions and counter increments
 *   stress final  FILE MODE LOG...           tdb_check, every logged record present, counter == sum
 */
#include "common.h"
#include <time.h>

static int open_flags(const char *mode, int create) {
	if (strcmp(mode, "mutex") == 0) return create ? (TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST) : TDB_MUTEX_LOCKING;
	return 0;
}

/* self-validating value: "<id>:<n>:<len>:" + filler + ":<sum>" */
static size_t mkval(char *b, size_t cap, int id, int n, int len) {
	int off = snprintf(b, cap, "%d:%d:%d:", id, n, len), i;
	unsigned sum = 0;
	for (i = 0; i < len && off + 16 < (int)cap; i++) b[off++] = (char)('a' + (id * 7 + n + i) % 26);
	for (i = 0; i < off; i++) sum += (unsigned char)b[i];
	off += snprintf(b + off, cap - off, "#%u", sum);
	return (size_t)off;
}
static int valid(TDB_DATA d) {
	unsigned sum = 0, want;
	size_t i;
	char *hash;
	char buf[2048];
	if (d.dsize == 0 || d.dsize >= sizeof buf) return 0;
	memcpy(buf, d.dptr, d.dsize);
	buf[d.dsize] = 0;
	hash = strrchr(buf, '#');
	if (!hash) return 0;
	for (i = 0; i < (size_t)(hash - buf); i++) sum += (unsigned char)buf[i];
	want = (unsigned)strtoul(hash + 1, NULL, 10);
	return sum == want;
}

int main(int argc, char **argv) {
	const char *cmd = argc > 3 ? argv[1] : "", *f = argc > 3 ? argv[2] : "", *mode = argc > 3 ? argv[3] : "";
	struct tdb_context *tdb;
	char k[64], v[2048];

	if (strcmp(cmd, "create") == 0) {
		tdb = tdb_open(f, 37, open_flags(mode, 1), O_RDWR | O_CREAT | O_TRUNC, 0600);
		REQUIRE(tdb != NULL);
		CHECK_EQ(tdb_store(tdb, S("counter"), S("0"), TDB_INSERT), 0);
		tdb_close(tdb);
	} else if (strcmp(cmd, "worker") == 0 && argc > 6) {
		int id = atoi(argv[4]), secs = atoi(argv[5]), n = 0, incs = 0, txns = 0, bad = 0, ops = 0;
		FILE *log = fopen(argv[6], "w");
		time_t end = time(NULL) + secs;
		REQUIRE(log != NULL);
		srand((unsigned)(id * 7919 + getpid()));
		tdb = tdb_open(f, 0, open_flags(mode, 0), O_RDWR, 0600);
		REQUIRE(tdb != NULL);
		while (time(NULL) < end) {
			int op = rand() % 10, sk = rand() % 40;
			TDB_DATA d;
			size_t vl;
			ops++;
			snprintf(k, sizeof k, "shared%d", sk);
			switch (op) {
			case 0: case 1: /* store a shared key */
				vl = mkval(v, sizeof v, id, n++, rand() % 600);
				if (tdb_store(tdb, S(k), B(v, vl), TDB_REPLACE) != 0) { fprintf(stderr, "store failed: %s\n", tdb_errorstr(tdb)); bad++; }
				break;
			case 2: case 3: /* fetch a shared key: must be a whole value */
				d = tdb_fetch(tdb, S(k));
				if (d.dptr && !valid(d)) { fprintf(stderr, "torn value for %s\n", k); bad++; }
				free(d.dptr);
				break;
			case 4: /* delete */
				if (tdb_delete(tdb, S(k)) != 0 && tdb_error(tdb) != TDB_ERR_NOEXIST) bad++;
				break;
			case 5: case 6: { /* transaction: private records + shared churn */
				int j, cnt = 1 + rand() % 5;
				if (tdb_transaction_start(tdb) != 0) { bad++; break; }
				for (j = 0; j < cnt; j++) {
					char pk[64];
					snprintf(pk, sizeof pk, "w%d-%d-%d", id, txns, j);
					vl = mkval(v, sizeof v, id, txns * 10 + j, rand() % 300);
					if (tdb_store(tdb, S(pk), B(v, vl), TDB_INSERT) != 0) bad++;
				}
				vl = mkval(v, sizeof v, id, n++, rand() % 100);
				tdb_store(tdb, S(k), B(v, vl), TDB_REPLACE);
				if (rand() % 4 == 0) {
					tdb_transaction_cancel(tdb);
				} else if (tdb_transaction_commit(tdb) == 0) {
					for (j = 0; j < cnt; j++) {
						char pk[64];
						snprintf(pk, sizeof pk, "w%d-%d-%d", id, txns, j);
						vl = mkval(v, sizeof v, id, txns * 10 + j, 0);
						fprintf(log, "rec %s\n", pk);
					}
					fflush(log);
				} else { fprintf(stderr, "commit failed: %s\n", tdb_errorstr(tdb)); bad++; }
				txns++;
				break;
			}
			case 7: { /* locked counter increment */
				long c;
				if (tdb_chainlock(tdb, S("counter")) != 0) { bad++; break; }
				d = tdb_fetch(tdb, S("counter"));
				c = d.dptr ? strtol((char *)d.dptr, NULL, 10) : -1000000;
				if (d.dptr) { char tmp[32]; memcpy(tmp, d.dptr, d.dsize < 31 ? d.dsize : 31); tmp[d.dsize < 31 ? d.dsize : 31] = 0; c = strtol(tmp, NULL, 10); }
				free(d.dptr);
				snprintf(v, sizeof v, "%ld", c + 1);
				if (tdb_store(tdb, S("counter"), S(v), TDB_REPLACE) == 0) incs++; else bad++;
				tdb_chainunlock(tdb, S("counter"));
				break;
			}
			case 8: /* traverse (not in mutex mode: Debian's 1.4.8 deadlocks there
				 * between traverse_read's record lock and a concurrent commit) */
				if (strcmp(mode, "mutex") == 0) break;
				if (tdb_traverse_read(tdb, NULL, NULL) < 0) bad++;
				break;
			case 9: /* chainlock_read + fetch */
				if (tdb_chainlock_read(tdb, S(k)) == 0) {
					d = tdb_fetch(tdb, S(k));
					if (d.dptr && !valid(d)) bad++;
					free(d.dptr);
					tdb_chainunlock_read(tdb, S(k));
				} else bad++;
				break;
			}
		}
		fprintf(log, "incs %d\n", incs);
		fclose(log);
		tdb_close(tdb);
		if (bad) fprintf(stderr, "worker %d: %d bad results in %d ops\n", id, bad, ops);
		return bad ? 1 : 0;
	} else if (strcmp(cmd, "final") == 0) {
		long total = 0, c;
		int i, recs = 0;
		TDB_DATA d;
		tdb = tdb_open(f, 0, open_flags(mode, 0), O_RDWR, 0600);
		REQUIRE(tdb != NULL);
		CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
		for (i = 4; i < argc; i++) {
			FILE *lf = fopen(argv[i], "r");
			char line[256], name[128];
			int x;
			REQUIRE(lf != NULL);
			while (fgets(line, sizeof line, lf)) {
				if (sscanf(line, "rec %127s", name) == 1) {
					d = tdb_fetch(tdb, S(name));
					if (!d.dptr || !valid(d)) { fprintf(stderr, "committed record %s missing or bad\n", name); failures++; }
					free(d.dptr);
					recs++;
				} else if (sscanf(line, "incs %d", &x) == 1) total += x;
			}
			fclose(lf);
		}
		d = tdb_fetch(tdb, S("counter"));
		{ char tmp[32] = ""; if (d.dptr) { memcpy(tmp, d.dptr, d.dsize < 31 ? d.dsize : 31); } c = strtol(tmp, NULL, 10); }
		free(d.dptr);
		CHECK_EQ(c, total);
		CHECK(recs > 0);
		CHECK(total > 0);
		tdb_close(tdb);
		if (getenv("STRESS_VERBOSE")) printf("records %d increments %ld\n", recs, total);
	} else {
		fprintf(stderr, "usage\n");
		return 2;
	}
	return finish(argv[0]);
}
