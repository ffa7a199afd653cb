/* Shared helpers for the compat-tests C programs. */
#ifndef COMPAT_COMMON_H
#define COMPAT_COMMON_H

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tdb.h>

static int failures;
static const char *cur_test = "";

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d [%s] CHECK failed: %s\n", __FILE__, __LINE__, cur_test, #cond); \
	failures++; } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
	fprintf(stderr, "%s:%d [%s] CHECK_EQ failed: %s == %lld, expected %s == %lld\n", \
		__FILE__, __LINE__, cur_test, #a, _a, #b, _b); failures++; } } while (0)
#define REQUIRE(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d [%s] REQUIRE failed: %s (errno=%d %s)\n", __FILE__, __LINE__, cur_test, #cond, errno, strerror(errno)); \
	exit(2); } } while (0)

static inline TDB_DATA S(const char *s) {
	TDB_DATA d;
	d.dptr = (unsigned char *)s;
	d.dsize = strlen(s);
	return d;
}
static inline TDB_DATA B(const void *p, size_t n) {
	TDB_DATA d;
	d.dptr = (unsigned char *)p;
	d.dsize = n;
	return d;
}
/* fetch and compare with a C string; frees the fetched buffer */
static inline int fetch_is(struct tdb_context *tdb, const char *key, const char *val) {
	TDB_DATA d = tdb_fetch(tdb, S(key));
	int ok;
	if (val == NULL) {
		ok = d.dptr == NULL;
	} else {
		ok = d.dptr != NULL && d.dsize == strlen(val) && memcmp(d.dptr, val, d.dsize) == 0;
	}
	if (!ok) {
		fprintf(stderr, "  fetch(%s) = %s%.*s%s, expected %s\n", key,
			d.dptr ? "\"" : "", d.dptr ? (int)d.dsize : 4, d.dptr ? (char *)d.dptr : "NULL",
			d.dptr ? "\"" : "", val ? val : "NULL");
	}
	free(d.dptr);
	return ok;
}

/* counting log function: log_private must point to struct logcount */
struct logcount {
	int count[4];
	int total;
	int name_ok;        /* tdb_name(tdb) was non-NULL inside the callback */
	int priv_ok;        /* tdb_get_logging_private(tdb) == this inside the callback */
	int calls_with_tdb;
	char last[512];
	int quiet;
};
__attribute__((unused)) static void count_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...) {
	struct logcount *lc = tdb ? (struct logcount *)tdb_get_logging_private(tdb) : NULL;
	va_list ap;
	if (lc == NULL) {
		/* cannot get at the counter: report loudly */
		fprintf(stderr, "count_log: called with tdb=%p and no private\n", (void *)tdb);
		return;
	}
	lc->calls_with_tdb++;
	if (tdb_name(tdb) != NULL) lc->name_ok++;
	lc->priv_ok++;
	if ((int)level >= 0 && (int)level < 4) lc->count[level]++;
	lc->total++;
	va_start(ap, fmt);
	vsnprintf(lc->last, sizeof(lc->last), fmt, ap);
	va_end(ap);
	if (getenv("COMPAT_SHOW_LOG")) fprintf(stderr, "log[%d]: %s", level, lc->last);
}

static inline char *tmpname(const char *dir, const char *base) {
	static char buf[8][4096];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, 4096, "%s/%s", dir, base);
	return p;
}

static inline const char *workdir(int argc, char **argv) {
	const char *d = argc > 1 ? argv[1] : getenv("TMPDIR");
	return d ? d : "/tmp";
}

static inline int finish(const char *prog) {
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", prog, failures);
		return 1;
	}
	return 0;
}

#endif
