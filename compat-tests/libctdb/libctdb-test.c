/*
 * libctdb-test: every function of libctdb's ctdb.h, one subcommand per check,
 * run by compat-tests/libctdb/run.sh against our ctdbd and Debian's.  Written
 * against the original ctdb.h (it compiles with that header too): callbacks
 * take their private data with its own type, through the typesafe macros.
 *
 *   libctdb-test getters SOCKET         prints what every getter returns
 *   libctdb-test write SOCKET DB KEY VALUE   locks KEY, prints the old value, writes
 *   libctdb-test read SOCKET DB KEY     locks KEY (migrating it), prints the value
 *   libctdb-test traverse SOCKET DB     prints every record (sorted by run.sh)
 *   libctdb-test listen SOCKET SRVID N  prints "ready", then N messages
 *   libctdb-test send SOCKET PNN SRVID TEXT   sends a message
 *   libctdb-test async SOCKET DB        several requests in flight, one poll loop
 *   libctdb-test hold SOCKET DB KEY     locks KEY, prints "held", waits for stdin
 *   libctdb-test stranded SOCKET DB KEY asks for KEY (held elsewhere), prints
 *                                       "inflight", then must see the daemon go
 *   libctdb-test persistent SOCKET DB   attach persistent, seqnum and dbstat
 *
 * Exit status 0 when the check held; messages on stderr otherwise.
 */
#include <ctdb.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "FAILED: %s (errno %d: %s)\n", what, errno, strerror(errno));
	exit(1);
}

/* The log function the library gets: its lines go to stderr, prefixed. */
static void log_to(FILE *out, int severity, const char *format, va_list ap)
{
	fprintf(out, "libctdb[%d]: ", severity);
	vfprintf(out, format, ap);
	fputc('\n', out);
}

static struct ctdb_connection *connect_to(const char *socket)
{
	struct ctdb_connection *ctdb = ctdb_connect(socket, log_to, stderr);
	if (ctdb == NULL) {
		die("ctdb_connect");
	}
	return ctdb;
}

static TDB_DATA text(const char *s)
{
	TDB_DATA d;
	d.dptr = (unsigned char *)s;
	d.dsize = strlen(s);
	return d;
}

static void print_addr(const ctdb_sock_addr *a)
{
	char buf[64];
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->ip.sin_addr, buf, sizeof(buf));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->ip6.sin6_addr, buf, sizeof(buf));
	} else {
		snprintf(buf, sizeof(buf), "family-%d", a->sa.sa_family);
	}
	printf("%s", buf);
}

static int getters(const char *socket)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	uint32_t pnn, recmode, caps, recmaster;
	struct ctdb_node_map *nodemap;
	struct ctdb_vnn_map *vnnmap;
	struct ctdb_ifaces_list *ifaces;
	struct ctdb_all_public_ips *ips;
	uint32_t i;

	if (!ctdb_getpnn(ctdb, CTDB_CURRENT_NODE, &pnn)) die("ctdb_getpnn");
	printf("pnn %u\n", pnn);
	if (!ctdb_getrecmode(ctdb, CTDB_CURRENT_NODE, &recmode)) die("ctdb_getrecmode");
	printf("recmode %u\n", recmode);
	if (!ctdb_getcapabilities(ctdb, CTDB_CURRENT_NODE, &caps)) die("ctdb_getcapabilities");
	printf("capabilities 0x%x\n", caps);
	if (!ctdb_getrecmaster(ctdb, CTDB_CURRENT_NODE, &recmaster)) die("ctdb_getrecmaster");
	printf("recmaster %u\n", recmaster);
	if (!ctdb_getnodemap(ctdb, CTDB_CURRENT_NODE, &nodemap)) die("ctdb_getnodemap");
	printf("nodemap %u\n", nodemap->num);
	for (i = 0; i < nodemap->num; i++) {
		printf("  node %u flags 0x%x addr ", nodemap->nodes[i].pnn, nodemap->nodes[i].flags);
		print_addr(&nodemap->nodes[i].addr);
		printf("\n");
	}
	ctdb_free_nodemap(nodemap);
	if (!ctdb_getvnnmap(ctdb, CTDB_CURRENT_NODE, &vnnmap)) die("ctdb_getvnnmap");
	printf("vnnmap size %u generation-valid %d\n", vnnmap->size,
	       vnnmap->generation != INVALID_GENERATION);
	for (i = 0; i < vnnmap->size; i++) {
		printf("  lmaster %u\n", vnnmap->map[i]);
	}
	ctdb_free_vnnmap(vnnmap);
	if (!ctdb_getifaces(ctdb, CTDB_CURRENT_NODE, &ifaces)) die("ctdb_getifaces");
	printf("ifaces %u\n", ifaces->num);
	ctdb_free_ifaces(ifaces);
	if (!ctdb_getpublicips(ctdb, CTDB_CURRENT_NODE, &ips)) die("ctdb_getpublicips");
	printf("publicips %u\n", ips->num);
	ctdb_free_publicips(ips);
	/* The last node's pnn, asked through this one. */
	if (!ctdb_getnodemap(ctdb, CTDB_CURRENT_NODE, &nodemap)) die("ctdb_getnodemap");
	i = nodemap->nodes[nodemap->num - 1].pnn;
	ctdb_free_nodemap(nodemap);
	if (!ctdb_getpnn(ctdb, i, &recmode)) die("ctdb_getpnn of another node");
	printf("last node's pnn %u\n", recmode);
	ctdb_disconnect(ctdb);
	return 0;
}

static struct ctdb_db *attach(struct ctdb_connection *ctdb, const char *name, bool persistent)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, name, persistent, 0);
	if (db == NULL) die("ctdb_attachdb");
	return db;
}

static int write_record(const char *socket, const char *name, const char *key, const char *value)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, false);
	TDB_DATA data;
	struct ctdb_lock *lock = ctdb_readrecordlock(ctdb, db, text(key), &data);
	if (lock == NULL) die("ctdb_readrecordlock");
	printf("old '%.*s'\n", (int)data.dsize, (const char *)data.dptr);
	if (!ctdb_writerecord(db, lock, text(value))) die("ctdb_writerecord");
	ctdb_release_lock(db, lock);
	ctdb_detachdb(ctdb, db);
	ctdb_disconnect(ctdb);
	return 0;
}

static int read_record(const char *socket, const char *name, const char *key)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, false);
	TDB_DATA data;
	struct ctdb_lock *lock = ctdb_readrecordlock(ctdb, db, text(key), &data);
	if (lock == NULL) die("ctdb_readrecordlock");
	printf("value '%.*s'\n", (int)data.dsize, (const char *)data.dptr);
	/* A second lock while holding one is refused, as libctdb does. */
	if (ctdb_readrecordlock(ctdb, db, text("other"), &data) != NULL) {
		fprintf(stderr, "FAILED: a second lock was granted\n");
		return 1;
	}
	ctdb_release_lock(db, lock);
	ctdb_detachdb(ctdb, db);
	ctdb_disconnect(ctdb);
	return 0;
}

/* Runs the poll loop until *done or the connection breaks. */
static bool loop_until(struct ctdb_connection *ctdb, const bool *done, int seconds)
{
	time_t end = time(NULL) + seconds;
	while (!*done) {
		struct pollfd pfd;
		pfd.fd = ctdb_get_fd(ctdb);
		pfd.events = ctdb_which_events(ctdb);
		pfd.revents = 0;
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) die("poll");
		if (!ctdb_service(ctdb, pfd.revents)) return false;
		if (time(NULL) > end) {
			fprintf(stderr, "FAILED: no answer in %d s\n", seconds);
			exit(1);
		}
	}
	return true;
}

struct traverse_state {
	int records;
	bool done;
	int status;
};

static int traverse_cb(struct ctdb_connection *ctdb, struct ctdb_db *db, int status,
		       TDB_DATA key, TDB_DATA data, void *private_data)
{
	struct traverse_state *s = (struct traverse_state *)private_data;
	if (status == TRAVERSE_STATUS_RECORD) {
		printf("record '%.*s' '%.*s'\n", (int)key.dsize, (const char *)key.dptr,
		       (int)data.dsize, (const char *)data.dptr);
		s->records++;
		return 0;
	}
	s->status = status;
	s->done = true;
	return 0;
}

struct stop_state {
	int calls;
};

static int stop_cb(struct ctdb_connection *ctdb, struct ctdb_db *db, int status,
		   TDB_DATA key, TDB_DATA data, void *private_data)
{
	struct stop_state *st = (struct stop_state *)private_data;
	st->calls++;
	return 1;
}

/* One poll of up to ms and a service; false once the connection broke. */
static bool loop_until_or(struct ctdb_connection *ctdb, const bool *done, int ms)
{
	struct pollfd pfd;
	if (*done) return true;
	pfd.fd = ctdb_get_fd(ctdb);
	pfd.events = ctdb_which_events(ctdb);
	pfd.revents = 0;
	if (poll(&pfd, 1, ms) < 0 && errno != EINTR) die("poll");
	return ctdb_service(ctdb, pfd.revents);
}

static int traverse(const char *socket, const char *name)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, false);
	struct traverse_state s = {0, false, -1};
	if (!ctdb_traverse_async(db, traverse_cb, &s)) die("ctdb_traverse_async");
	if (!loop_until(ctdb, &s.done, 30)) die("connection lost in traverse");
	if (s.status != TRAVERSE_STATUS_FINISHED) {
		fprintf(stderr, "FAILED: traverse ended with %d\n", s.status);
		return 1;
	}
	/* A callback returning non-zero stops the traverse: no more calls. */
	{
		struct stop_state st = {0};
		bool never = false;
		time_t end = time(NULL) + 2;
		if (!ctdb_traverse_async(db, stop_cb, &st)) die("ctdb_traverse_async (stop)");
		while (time(NULL) < end) {
			if (!loop_until_or(ctdb, &never, 200)) die("connection lost (stop)");
		}
		if (st.calls != 1) {
			fprintf(stderr, "FAILED: %d calls after the callback stopped the traverse\n", st.calls);
			return 1;
		}
	}
	ctdb_detachdb(ctdb, db);
	ctdb_disconnect(ctdb);
	return 0;
}

struct listen_state {
	int wanted;
	int got;
	bool done;
};

static void message_cb(struct ctdb_connection *ctdb, uint64_t srvid, TDB_DATA data,
		       struct listen_state *s)
{
	printf("message 0x%llx '%.*s'\n", (unsigned long long)srvid, (int)data.dsize,
	       (const char *)data.dptr);
	fflush(stdout);
	if (++s->got >= s->wanted) s->done = true;
}

static int listen_for(const char *socket, const char *srvid_text, int wanted)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	uint64_t srvid = strtoull(srvid_text, NULL, 0);
	struct listen_state s = {wanted, 0, false};
	if (!ctdb_set_message_handler(ctdb, srvid, message_cb, &s)) die("ctdb_set_message_handler");
	printf("ready\n");
	fflush(stdout);
	if (!loop_until(ctdb, &s.done, 30)) die("connection lost while listening");
	if (!ctdb_remove_message_handler(ctdb, srvid, message_cb, &s)) die("ctdb_remove_message_handler");
	ctdb_disconnect(ctdb);
	return 0;
}

static int send_to(const char *socket, const char *pnn, const char *srvid, const char *msg)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	bool never = false;
	if (!ctdb_send_message(ctdb, (uint32_t)atoi(pnn), strtoull(srvid, NULL, 0), text(msg)))
		die("ctdb_send_message");
	/* Until the message is written. */
	while (ctdb_which_events(ctdb) & POLLOUT) {
		struct pollfd pfd = {ctdb_get_fd(ctdb), (short)ctdb_which_events(ctdb), 0};
		poll(&pfd, 1, 1000);
		if (!ctdb_service(ctdb, pfd.revents)) die("ctdb_service");
	}
	(void)never;
	ctdb_disconnect(ctdb);
	return 0;
}

/* The async check: several requests in flight, answered in one poll loop. */
struct async_state {
	int pending;
	bool done;
	uint32_t pnn, recmode, caps;
	int nodes;
	struct ctdb_db *db;
	bool locked;
	bool handler_set;
};

static void finish_one(struct async_state *s)
{
	if (--s->pending == 0) s->done = true;
}

static void pnn_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	if (!ctdb_getpnn_recv(ctdb, req, &s->pnn)) die("ctdb_getpnn_recv");
	ctdb_request_free(req);
	finish_one(s);
}

static void recmode_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	if (!ctdb_getrecmode_recv(ctdb, req, &s->recmode)) die("ctdb_getrecmode_recv");
	ctdb_request_free(req);
	finish_one(s);
}

static void caps_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	if (!ctdb_getcapabilities_recv(ctdb, req, &s->caps)) die("ctdb_getcapabilities_recv");
	ctdb_request_free(req);
	finish_one(s);
}

static void nodemap_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	struct ctdb_node_map *m;
	if (!ctdb_getnodemap_recv(ctdb, req, &m)) die("ctdb_getnodemap_recv");
	s->nodes = (int)m->num;
	ctdb_free_nodemap(m);
	ctdb_request_free(req);
	finish_one(s);
}

static void vnnmap_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	struct ctdb_vnn_map *m;
	if (!ctdb_getvnnmap_recv(ctdb, req, &m)) die("ctdb_getvnnmap_recv");
	ctdb_free_vnnmap(m);
	ctdb_request_free(req);
	finish_one(s);
}

static void ifaces_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	struct ctdb_ifaces_list *m;
	if (!ctdb_getifaces_recv(ctdb, req, &m)) die("ctdb_getifaces_recv");
	ctdb_free_ifaces(m);
	ctdb_request_free(req);
	finish_one(s);
}

static void ips_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	struct ctdb_all_public_ips *m;
	if (!ctdb_getpublicips_recv(ctdb, req, &m)) die("ctdb_getpublicips_recv");
	ctdb_free_publicips(m);
	ctdb_request_free(req);
	finish_one(s);
}

static void recmaster_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	uint32_t leader;
	if (!ctdb_getrecmaster_recv(ctdb, req, &leader)) die("ctdb_getrecmaster_recv");
	ctdb_request_free(req);
	finish_one(s);
}

static void handler_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	s->handler_set = ctdb_set_message_handler_recv(ctdb, req);
	ctdb_request_free(req);
	finish_one(s);
}

static void handler_removed(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	if (!ctdb_remove_message_handler_recv(ctdb, req)) die("ctdb_remove_message_handler_recv");
	ctdb_request_free(req);
	finish_one(s);
}

static void ignore_message(struct ctdb_connection *ctdb, uint64_t srvid, TDB_DATA data,
			   struct async_state *s)
{
}

/* ctdb.h has no typesafe macro for the read-only form: plain void *. */
static void readonly_done(struct ctdb_db *db, struct ctdb_lock *lock, TDB_DATA data, void *private_data)
{
	struct async_state *s = (struct async_state *)private_data;
	if (lock == NULL) die("ctdb_readonlyrecordlock_async gave no lock");
	if (data.dsize != strlen("async value") || memcmp(data.dptr, "async value", data.dsize) != 0) {
		fprintf(stderr, "FAILED: the read-only lock read '%.*s'\n", (int)data.dsize, (const char *)data.dptr);
		exit(1);
	}
	/* A read-only lock cannot write. */
	if (ctdb_writerecord(db, lock, text("no"))) {
		fprintf(stderr, "FAILED: a read-only lock wrote\n");
		exit(1);
	}
	ctdb_release_lock(db, lock);
	s->locked = true;
	finish_one(s);
}

static void lock_done(struct ctdb_db *db, struct ctdb_lock *lock, TDB_DATA data, struct async_state *s)
{
	if (lock == NULL) die("ctdb_readrecordlock_async gave no lock");
	if (!ctdb_writerecord(db, lock, text("async value"))) die("ctdb_writerecord (async)");
	ctdb_release_lock(db, lock);
	if (!ctdb_readonlyrecordlock_async(db, text("async-key"), readonly_done, s))
		die("ctdb_readonlyrecordlock_async");
}

static void attach_done(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	s->db = ctdb_attachdb_recv(ctdb, req);
	if (s->db == NULL) die("ctdb_attachdb_recv");
	ctdb_request_free(req);
	if (!ctdb_readrecordlock_async(s->db, text("async-key"), lock_done, s))
		die("ctdb_readrecordlock_async");
}

static void never_called(struct ctdb_connection *ctdb, struct ctdb_request *req, struct async_state *s)
{
	fprintf(stderr, "FAILED: a cancelled request's callback ran\n");
	exit(1);
}

static int async_check(const char *socket, const char *name)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct async_state s;
	struct ctdb_request *cancelled;
	int queued;
	uint64_t srvid = CTDB_SRVID_TEST_RANGE | 0x77;

	memset(&s, 0, sizeof(s));
	s.pending = 10;
	if (!ctdb_getpnn_send(ctdb, CTDB_CURRENT_NODE, pnn_done, &s)) die("ctdb_getpnn_send");
	if (!ctdb_getrecmode_send(ctdb, CTDB_CURRENT_NODE, recmode_done, &s)) die("ctdb_getrecmode_send");
	if (!ctdb_getcapabilities_send(ctdb, CTDB_CURRENT_NODE, caps_done, &s)) die("ctdb_getcapabilities_send");
	if (!ctdb_getnodemap_send(ctdb, CTDB_CURRENT_NODE, nodemap_done, &s)) die("ctdb_getnodemap_send");
	if (!ctdb_getvnnmap_send(ctdb, CTDB_CURRENT_NODE, vnnmap_done, &s)) die("ctdb_getvnnmap_send");
	if (!ctdb_getifaces_send(ctdb, CTDB_CURRENT_NODE, ifaces_done, &s)) die("ctdb_getifaces_send");
	if (!ctdb_getpublicips_send(ctdb, CTDB_CURRENT_NODE, ips_done, &s)) die("ctdb_getpublicips_send");
	if (!ctdb_getrecmaster_send(ctdb, CTDB_CURRENT_NODE, recmaster_done, &s)) die("ctdb_getrecmaster_send");
	if (!ctdb_set_message_handler_send(ctdb, srvid, ignore_message, &s, handler_done, &s))
		die("ctdb_set_message_handler_send");
	if (!ctdb_attachdb_send(ctdb, name, false, 0, attach_done, &s)) die("ctdb_attachdb_send");
	cancelled = ctdb_getpnn_send(ctdb, CTDB_CURRENT_NODE, never_called, &s);
	if (cancelled == NULL) die("ctdb_getpnn_send (to cancel)");
	queued = ctdb_num_out_queue(ctdb);
	if (queued < 10 || ctdb_num_active(ctdb) < queued) {
		fprintf(stderr, "FAILED: %d queued, %d active\n", queued, ctdb_num_active(ctdb));
		return 1;
	}
	ctdb_cancel(ctdb, cancelled);
	/* 9 callbacks above, the record lock's the 10th. */
	if (!loop_until(ctdb, &s.done, 30)) die("connection lost in the async check");
	if (!s.handler_set || !s.locked || s.nodes < 1 || s.recmode != 0 || !(s.caps & CTDB_CAP_LMASTER)) {
		fprintf(stderr, "FAILED: handler %d locked %d nodes %d recmode %u caps 0x%x\n",
			s.handler_set, s.locked, s.nodes, s.recmode, s.caps);
		return 1;
	}
	s.done = false;
	s.pending = 1;
	if (!ctdb_remove_message_handler_send(ctdb, srvid, ignore_message, &s, handler_removed, &s))
		die("ctdb_remove_message_handler_send");
	if (!loop_until(ctdb, &s.done, 30)) die("connection lost removing the handler");
	printf("async ok: pnn %u, %d nodes, %d requests in flight at once\n", s.pnn, s.nodes, queued);
	ctdb_detachdb(ctdb, s.db);
	ctdb_disconnect(ctdb);
	return 0;
}

static int hold(const char *socket, const char *name, const char *key)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, false);
	TDB_DATA data;
	char line[16];
	struct ctdb_lock *lock = ctdb_readrecordlock(ctdb, db, text(key), &data);
	if (lock == NULL) die("ctdb_readrecordlock");
	if (!ctdb_writerecord(db, lock, text("held"))) die("ctdb_writerecord");
	printf("held\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		/* run.sh closed our input: release all the same. */
	}
	ctdb_release_lock(db, lock);
	ctdb_disconnect(ctdb);
	return 0;
}

struct stranded_state {
	bool done;
	bool got_lock;
};

static void stranded_cb(struct ctdb_db *db, struct ctdb_lock *lock, TDB_DATA data,
			struct stranded_state *s)
{
	s->done = true;
	s->got_lock = lock != NULL;
	if (lock != NULL) ctdb_release_lock(db, lock);
}

static int stranded(const char *socket, const char *name, const char *key)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, false);
	struct stranded_state s = {false, false};
	bool alive;
	uint32_t pnn;
	time_t start;

	if (!ctdb_readrecordlock_async(db, text(key), stranded_cb, &s)) die("ctdb_readrecordlock_async");
	while (ctdb_num_out_queue(ctdb) > 0) {
		struct pollfd pfd = {ctdb_get_fd(ctdb), (short)ctdb_which_events(ctdb), 0};
		poll(&pfd, 1, 1000);
		if (!ctdb_service(ctdb, pfd.revents)) die("ctdb_service before the kill");
	}
	if (s.done || ctdb_num_in_flight(ctdb) < 1) {
		fprintf(stderr, "FAILED: the lock was not stranded (done %d)\n", s.done);
		return 1;
	}
	printf("inflight\n");
	fflush(stdout);
	start = time(NULL);
	alive = loop_until(ctdb, &s.done, 60);
	if (alive || !s.done || s.got_lock) {
		fprintf(stderr, "FAILED: alive %d done %d lock %d\n", alive, s.done, s.got_lock);
		return 1;
	}
	/* Every call on the dead connection fails cleanly. */
	if (ctdb_getpnn(ctdb, CTDB_CURRENT_NODE, &pnn) || ctdb_attachdb(ctdb, name, false, 0) != NULL) {
		fprintf(stderr, "FAILED: a call on the dead connection succeeded\n");
		return 1;
	}
	printf("clean error after %ld s (errno %d)\n", (long)(time(NULL) - start), errno);
	ctdb_disconnect(ctdb);
	return 0;
}

static int persistent(const char *socket, const char *name)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	struct ctdb_db *db = attach(ctdb, name, true);
	struct ctdb_db_statistics *stat;
	uint64_t seqnum;
	uint64_t mhs[2];
	uint8_t res[2] = {9, 9};
	bool answered;

	/* There is no database with id 0: both getters fail cleanly. */
	if (ctdb_getdbstat(ctdb, CTDB_CURRENT_NODE, 0, &stat) ||
	    ctdb_getdbseqnum(ctdb, CTDB_CURRENT_NODE, 0, &seqnum)) {
		fprintf(stderr, "FAILED: a getter of db id 0 succeeded\n");
		return 1;
	}
	mhs[0] = CTDB_SRVID_TEST_RANGE | 1;
	mhs[1] = CTDB_SRVID_TEST_RANGE | 2;
	answered = ctdb_check_message_handlers(ctdb, CTDB_CURRENT_NODE, 2, mhs, res);
	printf("check_message_handlers %s\n", answered ? "answered" : "refused");
	ctdb_detachdb(ctdb, db);
	ctdb_disconnect(ctdb);
	return 0;
}

/* dbstat and seqnum of a database by id (run.sh gives the id ctdb prints). */
static int dbinfo(const char *socket, const char *id_text)
{
	struct ctdb_connection *ctdb = connect_to(socket);
	uint32_t id = (uint32_t)strtoul(id_text, NULL, 0);
	struct ctdb_db_statistics *stat;
	uint64_t seqnum;
	if (!ctdb_getdbstat(ctdb, CTDB_CURRENT_NODE, id, &stat)) die("ctdb_getdbstat");
	printf("dbstat hot keys %u\n", stat->num_hot_keys);
	ctdb_free_dbstat(stat);
	if (!ctdb_getdbseqnum(ctdb, CTDB_CURRENT_NODE, id, &seqnum)) die("ctdb_getdbseqnum");
	printf("seqnum %llu\n", (unsigned long long)seqnum);
	ctdb_disconnect(ctdb);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 2 ? argv[1] : "";
	ctdb_log_level = LOG_WARNING;
	if (!strcmp(cmd, "getters")) return getters(argv[2]);
	if (!strcmp(cmd, "write") && argc == 6) return write_record(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(cmd, "read") && argc == 5) return read_record(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "traverse") && argc == 4) return traverse(argv[2], argv[3]);
	if (!strcmp(cmd, "listen") && argc == 5) return listen_for(argv[2], argv[3], atoi(argv[4]));
	if (!strcmp(cmd, "send") && argc == 6) return send_to(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(cmd, "async") && argc == 4) return async_check(argv[2], argv[3]);
	if (!strcmp(cmd, "hold") && argc == 5) return hold(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "stranded") && argc == 5) return stranded(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "persistent") && argc == 4) return persistent(argv[2], argv[3]);
	if (!strcmp(cmd, "dbinfo") && argc == 4) return dbinfo(argv[2], argv[3]);
	fprintf(stderr, "usage: see the comment at the top of libctdb-test.c\n");
	return 2;
}
