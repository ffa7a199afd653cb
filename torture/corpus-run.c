/*
 * corpus-run: runs the damaged-file corpus (written by
 * `TDB_CORPUS_DIR=dir cargo test --test robustness corpus_written`) through
 * whichever libtdb.so.1 the loader picks (LD_LIBRARY_PATH), one forked child per
 * file and call, with a 10 s alarm and a 1 GiB address-space limit, and prints per
 * file what each call did: ok, err (returned an error), LOOP (a traversal visited
 * more records than the file can hold), CRASH(signal), HANG, or OOM (the child
 * could not allocate).
 *
 *   corpus-run FILE...        (run once per library and diff the outputs)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <tdb.h>

static long max_recs, visited;
static const char *ops[] = { "open", "check", "fetch", "traverse_read", "traverse", "nextkey", "rescue", "freelist_size", "store", "repack" };
#define NOPS (sizeof ops / sizeof ops[0])

static int count_cb(struct tdb_context *t, TDB_DATA k, TDB_DATA d, void *p)
{
	(void)t; (void)k; (void)d; (void)p;
	return ++visited > max_recs;
}
static void rescue_cb(TDB_DATA k, TDB_DATA d, void *p) { (void)k; (void)d; (void)p; }
static void quiet(struct tdb_context *t, enum tdb_debug_level l, const char *f, ...) { (void)t; (void)l; (void)f; }

/* Exit codes: 0 ok, 1 error, 2 loop, 3 could not set up. */
static int run(const char *copy, int op)
{
	struct tdb_logging_context lc = { quiet, NULL };
	int ro = op == 7;
	struct tdb_context *tdb = tdb_open_ex(copy, 0, 0, ro ? O_RDONLY : O_RDWR, 0600, &lc, NULL);
	if (!tdb) return 1;
	char k[16];
	switch (op) {
	case 0: return 0;
	case 1: return tdb_check(tdb, NULL, NULL) == 0 ? 0 : 1;
	case 2: {
		int bad = 0;
		for (int i = 0; i < 46; i++) {
			snprintf(k, sizeof k, "key-%03d", i);
			TDB_DATA key = { (unsigned char *)k, strlen(k) };
			TDB_DATA d = tdb_fetch(tdb, key);
			if (!d.dptr && tdb_error(tdb) != TDB_ERR_NOEXIST) bad = 1;
			free(d.dptr);
		}
		return bad;
	}
	case 3: { int n = tdb_traverse_read(tdb, count_cb, NULL); return visited > max_recs ? 2 : n < 0; }
	case 4: { int n = tdb_traverse(tdb, count_cb, NULL); return visited > max_recs ? 2 : n < 0; }
	case 5: {
		TDB_DATA key = tdb_firstkey(tdb);
		while (key.dptr) {
			if (++visited > max_recs) return 2;
			TDB_DATA n = tdb_nextkey(tdb, key);
			free(key.dptr);
			key = n;
		}
		return 0;
	}
	case 6: return tdb_rescue(tdb, rescue_cb, NULL) == 0 ? 0 : 1;
	case 7: return tdb_freelist_size(tdb) >= 0 ? 0 : 1;
	case 8: {
		TDB_DATA key = { (unsigned char *)"new-key", 7 }, d = { (unsigned char *)"new-value", 9 };
		return tdb_store(tdb, key, d, TDB_REPLACE) == 0 ? 0 : 1;
	}
	case 9: return tdb_repack(tdb) == 0 ? 0 : 1;
	}
	return 3;
}

int main(int argc, char **argv)
{
	char copy[] = "/tmp/corpus-run-XXXXXX";
	int cfd = mkstemp(copy);
	if (cfd < 0) { perror("mkstemp"); return 1; }
	close(cfd);
	int bad_total = 0;
	for (int a = 1; a < argc; a++) {
		struct stat st;
		if (stat(argv[a], &st) != 0) { perror(argv[a]); continue; }
		max_recs = st.st_size / 24 + 1;
		const char *base = strrchr(argv[a], '/');
		printf("%-45s", base ? base + 1 : argv[a]);
		for (unsigned op = 0; op < NOPS; op++) {
			char cmd[4200];
			snprintf(cmd, sizeof cmd, "cp '%s' '%s'", argv[a], copy);
			if (system(cmd) != 0) return 1;
			fflush(stdout);
			pid_t pid = fork();
			if (pid == 0) {
				struct rlimit rl = { 1ul << 30, 1ul << 30 };
				setrlimit(RLIMIT_AS, &rl);
				alarm(10);
				_exit(run(copy, op));
			}
			int s;
			waitpid(pid, &s, 0);
			const char *r;
			char buf[32];
			if (WIFEXITED(s)) r = WEXITSTATUS(s) == 0 ? "ok" : WEXITSTATUS(s) == 1 ? "err" : WEXITSTATUS(s) == 2 ? "LOOP" : "?";
			else if (WTERMSIG(s) == SIGALRM) r = "HANG";
			else if (WTERMSIG(s) == SIGABRT) r = "CRASH(abort/OOM)";
			else { snprintf(buf, sizeof buf, "CRASH(%d)", WTERMSIG(s)); r = buf; }
			if (r[0] >= 'A' && r[0] <= 'Z') bad_total++;
			printf(" %s=%s", ops[op], r);
		}
		printf("\n");
	}
	unlink(copy);
	fprintf(stderr, "corpus-run: %d crash/hang/loop results\n", bad_total);
	return 0;
}
