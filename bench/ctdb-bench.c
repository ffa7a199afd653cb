/*
 * ctdb-bench: CTDB's test-client workloads on libctdb, one process per node
 * (bench/ctdb-bench.sh starts them and adds up the figures).
 *
 *   ctdb-bench fetch_ring SOCKET NODES SECONDS GOFILE
 *       A hot record migrates round the nodes: a node that gets the ring's
 *       message locks the record (migrating it here), increments the
 *       counter in it, writes it, and messages the next node.  The last
 *       node starts the ring.
 *   ctdb-bench message_ring SOCKET NODES SECONDS GOFILE
 *       Tokens pass round the nodes as messages (node 0 puts 4 in); each
 *       node forwards every token to the next with its hop count + 1.
 *   ctdb-bench fetch_loop SOCKET NODES SECONDS GOFILE
 *       Lock, increment, write, release a record this node already holds.
 *   ctdb-bench transaction_loop SOCKET NODES SECONDS GOFILE
 *       Persistent transactions on every node at once, as CTDB's
 *       transaction_loop runs them: each adds one to this node's counter in
 *       one record (a uint32 per node) of a persistent database.  Uses this
 *       library's transaction extension (libctdb has none).
 *   ctdb-bench read SOCKET KEY
 *       Prints the counter in KEY (for the checks).
 *   ctdb-bench counters SOCKET NODES
 *       Prints transaction_loop's counters as this node's copy has them.
 *
 * Every workload prints "ready" once its handler is registered, starts when
 * GOFILE exists, runs SECONDS, then prints "ops N seconds S".
 */
#include <ctdb.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define RING_SRVID (CTDB_SRVID_TEST_RANGE | 0x5201)
#define TOKEN_SRVID (CTDB_SRVID_TEST_RANGE | 0x5202)
#define DB_NAME "ctdb-bench.tdb"
#define PERSISTENT_DB "ctdb-bench-persistent.tdb"
#define TRANS_KEY "transaction_loop"

static void die(const char *what)
{
	fprintf(stderr, "ctdb-bench: %s failed (errno %d: %s)\n", what, errno, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static TDB_DATA text(const char *s)
{
	TDB_DATA d;
	d.dptr = (unsigned char *)s;
	d.dsize = strlen(s);
	return d;
}

/* Locks KEY, adds one to the decimal counter in it, writes it back. */
static unsigned long increment(struct ctdb_connection *ctdb, struct ctdb_db *db, const char *key)
{
	TDB_DATA data;
	char buf[32];
	unsigned long value = 0;
	struct ctdb_lock *lock = ctdb_readrecordlock(ctdb, db, text(key), &data);
	if (lock == NULL) die("ctdb_readrecordlock");
	if (data.dsize > 0 && data.dsize < sizeof(buf)) {
		memcpy(buf, data.dptr, data.dsize);
		buf[data.dsize] = 0;
		value = strtoul(buf, NULL, 10);
	}
	value++;
	snprintf(buf, sizeof(buf), "%lu", value);
	if (!ctdb_writerecord(db, lock, text(buf))) die("ctdb_writerecord");
	ctdb_release_lock(db, lock);
	return value;
}

static void service_once(struct ctdb_connection *ctdb, int timeout_ms)
{
	struct pollfd pfd;
	pfd.fd = ctdb_get_fd(ctdb);
	pfd.events = ctdb_which_events(ctdb);
	pfd.revents = 0;
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) die("poll");
	if (!ctdb_service(ctdb, pfd.revents)) die("ctdb_service");
}

static void flush_out(struct ctdb_connection *ctdb)
{
	while (ctdb_which_events(ctdb) & POLLOUT) service_once(ctdb, 100);
}

static void wait_go(struct ctdb_connection *ctdb, const char *gofile)
{
	printf("ready\n");
	fflush(stdout);
	while (access(gofile, F_OK) != 0) service_once(ctdb, 5);
}

struct ring {
	int pending; /* messages received and not yet acted on */
	uint32_t tokens[64];
	int ntokens;
};

static void on_ring(struct ctdb_connection *ctdb, uint64_t srvid, TDB_DATA data, struct ring *r)
{
	r->pending++;
}

static void on_token(struct ctdb_connection *ctdb, uint64_t srvid, TDB_DATA data, struct ring *r)
{
	uint32_t hops = 0;
	if (data.dsize == sizeof(hops)) memcpy(&hops, data.dptr, sizeof(hops));
	if (r->ntokens < 64) r->tokens[r->ntokens++] = hops;
}

static int fetch_ring(struct ctdb_connection *ctdb, uint32_t pnn, uint32_t nodes, double secs,
		      const char *gofile)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, DB_NAME, false, 0);
	struct ring r;
	unsigned long ops = 0;
	double start, end;
	memset(&r, 0, sizeof(r));
	if (db == NULL) die("ctdb_attachdb");
	if (!ctdb_set_message_handler(ctdb, RING_SRVID, on_ring, &r)) die("ctdb_set_message_handler");
	wait_go(ctdb, gofile);
	start = now();
	end = start + secs;
	if (pnn == nodes - 1) r.pending = 1;
	while (now() < end) {
		if (r.pending == 0) {
			service_once(ctdb, 10);
			continue;
		}
		r.pending--;
		increment(ctdb, db, "fetch_ring");
		ops++;
		if (!ctdb_send_message(ctdb, (pnn + 1) % nodes, RING_SRVID, text("ring")))
			die("ctdb_send_message");
		flush_out(ctdb);
	}
	printf("ops %lu seconds %.3f\n", ops, now() - start);
	ctdb_detachdb(ctdb, db);
	return 0;
}

static int message_ring(struct ctdb_connection *ctdb, uint32_t pnn, uint32_t nodes, double secs,
			const char *gofile)
{
	struct ring r;
	unsigned long ops = 0;
	double start, end;
	uint32_t hops;
	int i;
	memset(&r, 0, sizeof(r));
	if (!ctdb_set_message_handler(ctdb, TOKEN_SRVID, on_token, &r)) die("ctdb_set_message_handler");
	wait_go(ctdb, gofile);
	start = now();
	end = start + secs;
	if (pnn == 0) {
		for (i = 0; i < 4; i++) r.tokens[r.ntokens++] = 0;
	}
	while (now() < end) {
		if (r.ntokens == 0) {
			service_once(ctdb, 10);
			continue;
		}
		for (i = 0; i < r.ntokens; i++) {
			TDB_DATA d;
			hops = r.tokens[i] + 1;
			d.dptr = (unsigned char *)&hops;
			d.dsize = sizeof(hops);
			if (!ctdb_send_message(ctdb, (pnn + 1) % nodes, TOKEN_SRVID, d))
				die("ctdb_send_message");
			ops++;
		}
		r.ntokens = 0;
		service_once(ctdb, 0);
	}
	printf("ops %lu seconds %.3f\n", ops, now() - start);
	return 0;
}

static int fetch_loop(struct ctdb_connection *ctdb, uint32_t pnn, double secs, const char *gofile)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, DB_NAME, false, 0);
	char key[32];
	unsigned long ops = 0, last = 0;
	double start, end;
	if (db == NULL) die("ctdb_attachdb");
	snprintf(key, sizeof(key), "fetch_loop_%u", pnn);
	last = increment(ctdb, db, key); /* the record is here from now on */
	wait_go(ctdb, gofile);
	start = now();
	end = start + secs;
	while (now() < end) {
		last = increment(ctdb, db, key);
		ops++;
	}
	printf("ops %lu seconds %.3f final %lu\n", ops, now() - start, last);
	ctdb_detachdb(ctdb, db);
	return 0;
}

/* One transaction: this node's counter in TRANS_KEY + 1; its new value. */
static uint32_t transaction_once(struct ctdb_db *db, uint32_t pnn, uint32_t nodes)
{
	struct ctdb_transaction *h = ctdb_transaction_start(db);
	uint32_t counters[64] = {0};
	TDB_DATA data;
	if (h == NULL) die("ctdb_transaction_start");
	if (!ctdb_transaction_fetch(h, text(TRANS_KEY), &data)) die("ctdb_transaction_fetch");
	if (data.dsize >= nodes * sizeof(uint32_t)) memcpy(counters, data.dptr, nodes * sizeof(uint32_t));
	free(data.dptr);
	counters[pnn] += 1;
	data.dptr = (unsigned char *)counters;
	data.dsize = nodes * sizeof(uint32_t);
	if (!ctdb_transaction_store(h, text(TRANS_KEY), data)) die("ctdb_transaction_store");
	if (!ctdb_transaction_commit(h)) die("ctdb_transaction_commit");
	return counters[pnn];
}

static int transaction_loop(struct ctdb_connection *ctdb, uint32_t pnn, uint32_t nodes,
			    double secs, const char *gofile)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, PERSISTENT_DB, true, 0);
	unsigned long ops = 0;
	uint32_t last = 0;
	double start, end;
	if (db == NULL) die("ctdb_attachdb");
	if (nodes > 64 || pnn >= nodes) die("transaction_loop: too many nodes");
	wait_go(ctdb, gofile);
	start = now();
	end = start + secs;
	while (now() < end) {
		last = transaction_once(db, pnn, nodes);
		ops++;
	}
	printf("ops %lu seconds %.3f final %u\n", ops, now() - start, last);
	ctdb_detachdb(ctdb, db);
	return 0;
}

static int print_counters(struct ctdb_connection *ctdb, uint32_t nodes)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, PERSISTENT_DB, true, 0);
	struct ctdb_transaction *h;
	uint32_t counters[64] = {0}, k;
	TDB_DATA data;
	if (db == NULL) die("ctdb_attachdb");
	if (nodes > 64) die("counters: too many nodes");
	h = ctdb_transaction_start(db);
	if (h == NULL) die("ctdb_transaction_start");
	if (!ctdb_transaction_fetch(h, text(TRANS_KEY), &data)) die("ctdb_transaction_fetch");
	if (data.dsize >= nodes * sizeof(uint32_t)) memcpy(counters, data.dptr, nodes * sizeof(uint32_t));
	free(data.dptr);
	ctdb_transaction_cancel(h);
	for (k = 0; k < nodes; k++) printf("%s%u", k ? " " : "", counters[k]);
	printf("\n");
	ctdb_detachdb(ctdb, db);
	return 0;
}

static int read_counter(struct ctdb_connection *ctdb, const char *key)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, DB_NAME, false, 0);
	TDB_DATA data;
	struct ctdb_lock *lock;
	if (db == NULL) die("ctdb_attachdb");
	lock = ctdb_readrecordlock(ctdb, db, text(key), &data);
	if (lock == NULL) die("ctdb_readrecordlock");
	printf("%.*s\n", (int)data.dsize, (const char *)data.dptr);
	ctdb_release_lock(db, lock);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctdb_connection *ctdb;
	uint32_t pnn;
	int rc = 2;
	if (argc < 3) {
		fprintf(stderr, "usage: see bench/ctdb-bench.c\n");
		return 2;
	}
	ctdb = ctdb_connect(argv[2], ctdb_log_file, stderr);
	if (ctdb == NULL) die("ctdb_connect");
	if (!ctdb_getpnn(ctdb, CTDB_CURRENT_NODE, &pnn)) die("ctdb_getpnn");
	if (!strcmp(argv[1], "read") && argc == 4) {
		rc = read_counter(ctdb, argv[3]);
	} else if (!strcmp(argv[1], "counters") && argc == 4) {
		rc = print_counters(ctdb, (uint32_t)atoi(argv[3]));
	} else if (argc == 6) {
		uint32_t nodes = (uint32_t)atoi(argv[3]);
		double secs = atof(argv[4]);
		if (!strcmp(argv[1], "fetch_ring")) rc = fetch_ring(ctdb, pnn, nodes, secs, argv[5]);
		if (!strcmp(argv[1], "message_ring")) rc = message_ring(ctdb, pnn, nodes, secs, argv[5]);
		if (!strcmp(argv[1], "fetch_loop")) rc = fetch_loop(ctdb, pnn, secs, argv[5]);
		if (!strcmp(argv[1], "transaction_loop"))
			rc = transaction_loop(ctdb, pnn, nodes, secs, argv[5]);
	}
	ctdb_disconnect(ctdb);
	return rc;
}
