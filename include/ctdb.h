/*
 * ctdb.h: libctdb, the CTDB client C API, as exported by tdb-rs's libtdb.so.1
 * (version node CTDB_1.0); the API of CTDB's libctdb as it last shipped,
 * speaking Samba 4.17's wire protocol.
 *
 * Generated from src/ffi/ctdb.rs by build.rs with cbindgen; do not edit by hand.
 * Regenerate with `make header`; `make check-header` verifies this copy.
 *
 * Memory rules: node maps, vnn maps, public address lists, interface lists
 * and db statistics are freed with their ctdb_free_* function. The data a
 * record lock hands out belongs to the lock until ctdb_release_lock.
 */

#ifndef _CTDB_H
#define _CTDB_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <tdb.h>
/* From ctdb_protocol.h: well-known destinations and srvids. */
#define CTDB_CURRENT_NODE     0xF0000001
#define CTDB_BROADCAST_ALL    0xF0000002
#define CTDB_BROADCAST_VNNMAP 0xF0000003
#define CTDB_BROADCAST_CONNECTED 0xF0000004
#define CTDB_MULTICAST 0xF0000005
#define CTDB_SRVID_ALL (~(uint64_t)0)
#define CTDB_SRVID_RECOVERY	0xF100000000000000LL
#define CTDB_SRVID_RECONFIGURE 0xF200000000000000LL
#define CTDB_SRVID_RELEASE_IP 0xF300000000000000LL
#define CTDB_SRVID_TAKE_IP 0xF301000000000000LL
#define CTDB_SRVID_SET_NODE_FLAGS 0xF400000000000000LL
#define CTDB_SRVID_RECD_UPDATE_IP 0xF500000000000000LL
#define CTDB_SRVID_VACUUM_FETCH 0xF700000000000000LL
#define CTDB_SRVID_DETACH_DATABASE 0xF701000000000000LL
#define CTDB_SRVID_MEM_DUMP 0xF800000000000000LL
#define CTDB_SRVID_GETLOG  0xF801000000000000LL
#define CTDB_SRVID_CLEARLOG  0xF802000000000000LL
#define CTDB_SRVID_PUSH_NODE_FLAGS 0xF900000000000000LL
#define CTDB_SRVID_RELOAD_NODES 0xFA00000000000000LL
#define CTDB_SRVID_TAKEOVER_RUN 0xFB00000000000000LL
#define CTDB_SRVID_REBALANCE_NODE 0xFB01000000000000LL
#define CTDB_SRVID_DISABLE_TAKEOVER_RUNS 0xFB03000000000000LL
#define CTDB_SRVID_DISABLE_RECOVERIES 0xFB04000000000000LL
#define CTDB_SRVID_DISABLE_IP_CHECK  0xFC00000000000000LL
#define CTDB_SRVID_TAKEOVER_RUN_RESPONSE  0xFD00000000000000LL
#define CTDB_SRVID_PID_RANGE   0x0000000000000000LL
#define CTDB_SRVID_SAMBA_NOTIFY  0xFE00000000000000LL
#define CTDB_SRVID_SAMBA_RANGE   0xFE00000000000000LL
#define CTDB_SRVID_NFSD_RANGE  0xEE00000000000000LL
#define CTDB_SRVID_ISCSID_RANGE  0xDE00000000000000LL
#define CTDB_SRVID_TEST_RANGE  0xCE00000000000000LL
#define CTDB_SRVID_TRAVERSE_RANGE  0xBE00000000000000LL
#define CTDB_PORT 4379
#define CTDB_DS_ALIGNMENT 8
#define CTDB_NULL_FUNC                  0xFF000001
#define CTDB_FETCH_FUNC                 0xFF000002
#define CTDB_FETCH_WITH_HEADER_FUNC     0xFF000003
#define CTDB_IMMEDIATE_MIGRATION		0x00000001
#define CTDB_CALL_FLAG_VACUUM_MIGRATION		0x00000002
#define CTDB_WANT_READONLY			0x00000004
#define CTDB_ERR_INVALID 1
#define CTDB_ERR_NOMEM 2
#define CTDB_MAGIC 0x43544442
#define CTDB_PROTOCOL 1
#define CTDB_TRANSACTION_LOCK_KEY "__transaction_lock__"
#define CTDB_DB_SEQNUM_KEY "__db_sequence_number__"

/* The record header of clustered databases. */
struct ctdb_ltdb_header {
	uint64_t rsn;
	uint32_t dmaster;
	uint32_t reserved1;
#define CTDB_REC_FLAG_DEFAULT			0x00000000
#define CTDB_REC_FLAG_MIGRATED_WITH_DATA	0x00010000
#define CTDB_REC_FLAG_VACUUM_MIGRATED		0x00020000
#define CTDB_REC_FLAG_AUTOMATIC			0x00040000
#define CTDB_REC_RO_HAVE_DELEGATIONS		0x01000000
#define CTDB_REC_RO_HAVE_READONLY		0x02000000
#define CTDB_REC_RO_REVOKING_READONLY		0x04000000
#define CTDB_REC_RO_REVOKE_COMPLETE		0x08000000
#define CTDB_REC_RO_FLAGS			(CTDB_REC_RO_HAVE_DELEGATIONS|\
						 CTDB_REC_RO_HAVE_READONLY|\
						 CTDB_REC_RO_REVOKING_READONLY|\
						 CTDB_REC_RO_REVOKE_COMPLETE)
	uint32_t flags;
};

typedef struct sockaddr_in ctdb_addr_in;
typedef struct sockaddr_in6 ctdb_addr_in6;
typedef union {
	struct sockaddr sa;
	ctdb_addr_in	ip;
	ctdb_addr_in6	ip6;
} ctdb_sock_addr;

/* A node, its NODE_FLAGS_* and its address. */
struct ctdb_node_and_flags {
	uint32_t pnn;
	uint32_t flags;
	ctdb_sock_addr addr;
};

/* The node map: num entries in nodes[]. */
struct ctdb_node_map {
	uint32_t num;
	struct ctdb_node_and_flags nodes[1];
};

#define NODE_FLAGS_DISCONNECTED		0x00000001
#define NODE_FLAGS_UNHEALTHY  		0x00000002
#define NODE_FLAGS_PERMANENTLY_DISABLED	0x00000004
#define NODE_FLAGS_BANNED		0x00000008
#define NODE_FLAGS_DELETED		0x00000010
#define NODE_FLAGS_STOPPED		0x00000020
#define NODE_FLAGS_DISABLED		(NODE_FLAGS_UNHEALTHY|NODE_FLAGS_PERMANENTLY_DISABLED)
#define NODE_FLAGS_INACTIVE		(NODE_FLAGS_DELETED|NODE_FLAGS_DISCONNECTED|NODE_FLAGS_BANNED|NODE_FLAGS_STOPPED)

#define CTDB_CAP_RECMASTER		0x00000001
#define CTDB_CAP_LMASTER		0x00000002
#define CTDB_CAP_LVS			0x00000004
#define CTDB_CAP_NATGW			0x00000008
#define CTDB_CAP_PARALLEL_RECOVERY	0x00010000
#define CTDB_CAP_FEATURES		(CTDB_CAP_PARALLEL_RECOVERY)
#define CTDB_CAP_DEFAULT		(CTDB_CAP_RECMASTER | \
					 CTDB_CAP_LMASTER   | \
					 CTDB_CAP_FEATURES)

/* A public address and the node serving it. */
struct ctdb_public_ip {
	uint32_t pnn;
	ctdb_sock_addr addr;
};

/* The public addresses: num entries in ips[]. */
struct ctdb_all_public_ips {
	uint32_t num;
	struct ctdb_public_ip ips[1];
};

/* Latency figures, in seconds. */
struct latency_counter {
	int num;
	double min;
	double max;
	double total;
};

#define MAX_COUNT_BUCKETS 16
#define MAX_HOT_KEYS      10

/* A database's statistics. */
struct ctdb_db_statistics {
	struct {
		uint32_t num_calls;
		uint32_t num_current;
		uint32_t num_pending;
		uint32_t num_failed;
		struct latency_counter latency;
		uint32_t buckets[MAX_COUNT_BUCKETS];
	} locks;
	struct {
		struct latency_counter latency;
	} vacuum;
	uint32_t db_ro_delegations;
	uint32_t db_ro_revokes;
	uint32_t hop_count_bucket[MAX_COUNT_BUCKETS];
	uint32_t num_hot_keys;
	struct {
		uint32_t count;
		TDB_DATA key;
	} hot_keys[MAX_HOT_KEYS];
	char hot_keys_wire[1];
};

#ifdef IFNAMSIZ
#define CTDB_IFACE_SIZE IFNAMSIZ
#else
#define CTDB_IFACE_SIZE 16
#endif

/* An interface: its name, whether its link is up, the addresses on it. */
struct ctdb_iface_info {
	char name[CTDB_IFACE_SIZE+2];
	uint16_t link_state;
	uint32_t references;
};

/* The interfaces: num entries in ifaces[]. */
struct ctdb_ifaces_list {
	uint32_t num;
	struct ctdb_iface_info ifaces[1];
};

#define INVALID_GENERATION 1
/* The vnn map: the lmaster of each hash bucket. */
struct ctdb_vnn_map {
	uint32_t generation;
	uint32_t size;
	uint32_t *map;
};

/* Where the library's log lines go: (log_priv, severity, format, ap). */
typedef void (*ctdb_log_fn_t)(void *log_priv,
			      int severity, const char *format, va_list ap);

/* A ctdb_log_fn_t writing to the stdio stream given as log_priv. */
void ctdb_log_file(FILE *, int, const char *, va_list);

/**
 * Traverse callback status: a record.
 */
#define TRAVERSE_STATUS_RECORD 0

/**
 * Traverse callback status: the traverse ended; no more calls follow.
 */
#define TRAVERSE_STATUS_FINISHED 1

/**
 * Traverse callback status: the traverse failed; no more calls follow.
 */
#define TRAVERSE_STATUS_ERROR 2

/**
 * A connection to a ctdbd (opaque to C).
 */
struct ctdb_connection;

/**
 * An attached database (opaque to C).
 */
struct ctdb_db;

/**
 * A held record lock (opaque to C); ends with ctdb_release_lock.
 */
struct ctdb_lock;

/**
 * An asynchronous request (opaque to C); freed with ctdb_request_free.
 */
struct ctdb_request;

/**
 * A persistent database transaction (opaque to C); an extension of this
 */
struct ctdb_transaction;

/**
 * Called when an asynchronous request completes.
 */
typedef void (*ctdb_callback_t)(struct ctdb_connection*, struct ctdb_request*, void*);

/**
 * Called with a locked record (lock NULL when the lock could not be had).
 */
typedef void (*ctdb_rrl_callback_t)(struct ctdb_db*, struct ctdb_lock*, TDB_DATA, void*);

/**
 * Called for each record of a traverse, then once with FINISHED or ERROR;
 */
typedef int (*ctdb_traverse_callback_t)(struct ctdb_connection*, struct ctdb_db*, int, TDB_DATA, TDB_DATA, void*);

/**
 * Called with each message for a registered srvid.
 */
typedef void (*ctdb_message_fn_t)(struct ctdb_connection*, uint64_t, TDB_DATA, void*);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The syslog-like level up to which the library logs (LOG_WARNING default).
 */
extern int ctdb_log_level;

/**
 * Connects to the ctdbd socket at `addr` (NULL: the default path); NULL
 */
struct ctdb_connection *ctdb_connect(const char *addr, ctdb_log_fn_t log_fn, void *log_priv);

/**
 * Closes the connection and frees it; requests not yet freed are freed.
 */
void ctdb_disconnect(struct ctdb_connection *ctdb);

/**
 * Requests queued or in flight.
 */
int ctdb_num_active(struct ctdb_connection *ctdb);

/**
 * Requests sent and waiting for their reply.
 */
int ctdb_num_in_flight(struct ctdb_connection *ctdb);

/**
 * Requests not yet written to the daemon.
 */
int ctdb_num_out_queue(struct ctdb_connection *ctdb);

/**
 * The descriptor to poll.
 */
int ctdb_get_fd(struct ctdb_connection *ctdb);

/**
 * The poll events to wait for: POLLIN, and POLLOUT while there is output.
 */
int ctdb_which_events(struct ctdb_connection *ctdb);

/**
 * Moves data for the poll events `revents` and runs the callbacks of what
 */
bool ctdb_service(struct ctdb_connection *ctdb, int revents);

/**
 * Frees a request; one still running is cancelled (no callback).
 */
void ctdb_request_free(struct ctdb_request *req);

/**
 * Cancels a request: no callback will run and the request is freed.
 */
void ctdb_cancel(struct ctdb_connection *ctdb, struct ctdb_request *req);

/**
 * Starts attaching database `name`; the callback runs when it is done.
 */
struct ctdb_request *ctdb_attachdb_send(struct ctdb_connection *ctdb, const char *name, bool persistent, uint32_t tdb_flags, ctdb_callback_t callback, void *cbdata);

/**
 * The database an attach request gave; NULL with errno on failure.
 */
struct ctdb_db *ctdb_attachdb_recv(struct ctdb_connection *ctdb, struct ctdb_request *req);

/**
 * Attaches database `name` (waits); NULL with errno on failure.
 */
struct ctdb_db *ctdb_attachdb(struct ctdb_connection *ctdb, const char *name, bool persistent, uint32_t tdb_flags);

/**
 * Detaches a database (its held lock is released) and frees the handle.
 */
void ctdb_detachdb(struct ctdb_connection *ctdb, struct ctdb_db *db);

/**
 * Asks for a record's lock; the callback gets it (now, or after a migration).
 */
bool ctdb_readrecordlock_async(struct ctdb_db *ctdb_db, TDB_DATA key, ctdb_rrl_callback_t callback, void *cbdata);

/**
 * As ctdb_readrecordlock_async, settling for a read-only copy.
 */
bool ctdb_readonlyrecordlock_async(struct ctdb_db *ctdb_db, TDB_DATA key, ctdb_rrl_callback_t callback, void *cbdata);

/**
 * Locks a record (waits for a migration); NULL with errno on failure.
 */
struct ctdb_lock *ctdb_readrecordlock(struct ctdb_connection *ctdb, struct ctdb_db *ctdb_db, TDB_DATA key, TDB_DATA *data);

/**
 * Writes a locked record's new value (volatile databases only).
 */
bool ctdb_writerecord(struct ctdb_db *ctdb_db, struct ctdb_lock *lock, TDB_DATA data);

/**
 * Releases a record lock and frees it (and the data it owned).
 */
void ctdb_release_lock(struct ctdb_db *ctdb_db, struct ctdb_lock *lock);

/**
 * Starts a traverse of the database on its node.
 */
bool ctdb_traverse_async(struct ctdb_db *ctdb_db, ctdb_traverse_callback_t callback, void *cbdata);

/**
 * Registers `handler` for `srvid`; it is called from the completion on.
 */
struct ctdb_request *ctdb_set_message_handler_send(struct ctdb_connection *ctdb, uint64_t srvid, ctdb_message_fn_t handler, void *handler_data, ctdb_callback_t callback, void *cbdata);

/**
 * True when the registration succeeded.
 */
bool ctdb_set_message_handler_recv(struct ctdb_connection *ctdb, struct ctdb_request *handle);

/**
 * Removes `handler` (no more calls) and deregisters `srvid`.
 */
struct ctdb_request *ctdb_remove_message_handler_send(struct ctdb_connection *ctdb, uint64_t srvid, ctdb_message_fn_t handler, void *handler_data, ctdb_callback_t callback, void *cbdata);

/**
 * True when the deregistration succeeded.
 */
bool ctdb_remove_message_handler_recv(struct ctdb_connection *ctdb, struct ctdb_request *req);

/**
 * Registers a handler (waits).
 */
bool ctdb_set_message_handler(struct ctdb_connection *ctdb, uint64_t srvid, ctdb_message_fn_t handler, void *cbdata);

/**
 * Removes a handler (waits).
 */
bool ctdb_remove_message_handler(struct ctdb_connection *ctdb, uint64_t srvid, ctdb_message_fn_t handler, void *handler_data);

/**
 * Queues a message to the handlers of `srvid` on node `pnn`.
 */
bool ctdb_send_message(struct ctdb_connection *ctdb, uint32_t pnn, uint64_t srvid, TDB_DATA data);

/**
 * Asks node `destnode` which of the `num` srvids in `mhs` have handlers
 */
struct ctdb_request *ctdb_check_message_handlers_send(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t num, uint64_t *mhs, ctdb_callback_t callback, void *cbdata);

/**
 * Fills `result[i]` with 1 when srvid i has a handler.
 */
bool ctdb_check_message_handlers_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, uint32_t num, uint8_t *result);

/**
 * ctdb_check_message_handlers_send and _recv (waits).
 */
bool ctdb_check_message_handlers(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t num, uint64_t *mhs, uint8_t *result);

/**
 * Asks node `destnode` for its pnn.
 */
struct ctdb_request *ctdb_getpnn_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The pnn a ctdb_getpnn_send request got.
 */
bool ctdb_getpnn_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, uint32_t *pnn);

/**
 * Node `destnode`'s pnn (waits).
 */
bool ctdb_getpnn(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t *pnn);

/**
 * Asks for the statistics of database `db_id` on `destnode`.
 */
struct ctdb_request *ctdb_getdbstat_send(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t db_id, ctdb_callback_t callback, void *cbdata);

/**
 * The statistics (malloc'd; ctdb_free_dbstat frees them).
 */
bool ctdb_getdbstat_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, struct ctdb_db_statistics **stat);

/**
 * Database statistics (waits).
 */
bool ctdb_getdbstat(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t db_id, struct ctdb_db_statistics **stat);

/**
 * Frees statistics from ctdb_getdbstat.
 */
void ctdb_free_dbstat(struct ctdb_db_statistics *stat);

/**
 * Asks node `destnode` for its capabilities.
 */
struct ctdb_request *ctdb_getcapabilities_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The CTDB_CAP_* bits a capabilities request got.
 */
bool ctdb_getcapabilities_recv(struct ctdb_connection *ctdb, struct ctdb_request *handle, uint32_t *capabilities);

/**
 * Node `destnode`'s capabilities (waits).
 */
bool ctdb_getcapabilities(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t *capabilities);

/**
 * Asks for the sequence number of database `dbid` on `destnode`.
 */
struct ctdb_request *ctdb_getdbseqnum_send(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t dbid, ctdb_callback_t callback, void *cbdata);

/**
 * The sequence number a seqnum request got.
 */
bool ctdb_getdbseqnum_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, uint64_t *seqnum);

/**
 * A database's sequence number (waits).
 */
bool ctdb_getdbseqnum(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t dbid, uint64_t *seqnum);

/**
 * Asks node `destnode` for the node map.
 */
struct ctdb_request *ctdb_getnodemap_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The node map (malloc'd; ctdb_free_nodemap frees it).
 */
bool ctdb_getnodemap_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, struct ctdb_node_map **nodemap);

/**
 * The node map (waits).
 */
bool ctdb_getnodemap(struct ctdb_connection *ctdb, uint32_t destnode, struct ctdb_node_map **nodemap);

/**
 * Frees a node map.
 */
void ctdb_free_nodemap(struct ctdb_node_map *nodemap);

/**
 * Asks node `destnode` for its interfaces.
 */
struct ctdb_request *ctdb_getifaces_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The interfaces (malloc'd; ctdb_free_ifaces frees them).
 */
bool ctdb_getifaces_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, struct ctdb_ifaces_list **ifaces);

/**
 * The interfaces (waits).
 */
bool ctdb_getifaces(struct ctdb_connection *ctdb, uint32_t destnode, struct ctdb_ifaces_list **ifaces);

/**
 * Frees an interface list.
 */
void ctdb_free_ifaces(struct ctdb_ifaces_list *ifaces);

/**
 * Asks node `destnode` for its public addresses.
 */
struct ctdb_request *ctdb_getpublicips_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The public addresses (malloc'd; ctdb_free_publicips frees them).
 */
bool ctdb_getpublicips_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, struct ctdb_all_public_ips **ips);

/**
 * The public addresses (waits).
 */
bool ctdb_getpublicips(struct ctdb_connection *ctdb, uint32_t destnode, struct ctdb_all_public_ips **ips);

/**
 * Frees a public address list.
 */
void ctdb_free_publicips(struct ctdb_all_public_ips *ips);

/**
 * Asks for the recovery master (the leader), from its broadcast.
 */
struct ctdb_request *ctdb_getrecmaster_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The recovery master a recmaster request found.
 */
bool ctdb_getrecmaster_recv(struct ctdb_connection *ctdb, struct ctdb_request *handle, uint32_t *recmaster);

/**
 * The recovery master (waits for the leader's broadcast).
 */
bool ctdb_getrecmaster(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t *recmaster);

/**
 * Asks node `destnode` for its recovery mode.
 */
struct ctdb_request *ctdb_getrecmode_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The recovery mode (0 normal, 1 recovery) a recmode request got.
 */
bool ctdb_getrecmode_recv(struct ctdb_connection *ctdb, struct ctdb_request *handle, uint32_t *recmode);

/**
 * Node `destnode`'s recovery mode (waits).
 */
bool ctdb_getrecmode(struct ctdb_connection *ctdb, uint32_t destnode, uint32_t *recmode);

/**
 * Asks node `destnode` for the vnn map.
 */
struct ctdb_request *ctdb_getvnnmap_send(struct ctdb_connection *ctdb, uint32_t destnode, ctdb_callback_t callback, void *cbdata);

/**
 * The vnn map (malloc'd; ctdb_free_vnnmap frees it).
 */
bool ctdb_getvnnmap_recv(struct ctdb_connection *ctdb, struct ctdb_request *req, struct ctdb_vnn_map **vnnmap);

/**
 * The vnn map (waits).
 */
bool ctdb_getvnnmap(struct ctdb_connection *ctdb, uint32_t destnode, struct ctdb_vnn_map **vnnmap);

/**
 * Frees a vnn map and its array.
 */
void ctdb_free_vnnmap(struct ctdb_vnn_map *vnnmap);

/**
 * Extension (not in CTDB's libctdb): starts a transaction on a persistent
 */
struct ctdb_transaction *ctdb_transaction_start(struct ctdb_db *ctdb_db);

/**
 * Extension: the value of `key` in the transaction (what it stored, else
 */
bool ctdb_transaction_fetch(struct ctdb_transaction *h, TDB_DATA key, TDB_DATA *data);

/**
 * Extension: stores `data` for `key` in the transaction.
 */
bool ctdb_transaction_store(struct ctdb_transaction *h, TDB_DATA key, TDB_DATA data);

/**
 * Extension: commits the transaction on every node (TRANS3_COMMIT) and
 */
bool ctdb_transaction_commit(struct ctdb_transaction *h);

/**
 * Extension: ends the transaction without committing and frees it.
 */
void ctdb_transaction_cancel(struct ctdb_transaction *h);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* _CTDB_H */

/* From ctdb_typesafe_cb.h: the callback arguments are cast to the generic
 * types, so callbacks may take their private data with its own pointer type. */
#ifndef typesafe_cb_preargs
#define typesafe_cb_preargs(rtype, fn, arg, ...) \
	((rtype (*)(__VA_ARGS__, void *))(fn))
#endif
#ifndef typesafe_cb_postargs
#define typesafe_cb_postargs(rtype, fn, arg, ...) \
	((rtype (*)(void *, __VA_ARGS__))(fn))
#endif
#ifndef typesafe_cb
#define typesafe_cb(rtype, fn, arg) ((rtype (*)(void *))(fn))
#endif

#define ctdb_sendcb(cb, cbdata)						\
	 typesafe_cb_preargs(void, (cb), (cbdata),			\
			     struct ctdb_connection *, struct ctdb_request *)

#define ctdb_msgcb(cb, cbdata)						\
	typesafe_cb_preargs(void, (cb), (cbdata),			\
			    struct ctdb_connection *, uint64_t, TDB_DATA)

#define ctdb_connect(addr, log, logpriv)				\
	ctdb_connect((addr),						\
		     typesafe_cb_postargs(void, (log), (logpriv),	\
					  int, const char *, va_list),	\
		     (logpriv))

#define ctdb_set_message_handler(ctdb, srvid, handler, hdata)		\
	ctdb_set_message_handler((ctdb), (srvid),			\
				 ctdb_msgcb((handler), (hdata)), (hdata))

#define ctdb_remove_message_handler(ctdb, srvid, handler, hdata)	\
	ctdb_remove_message_handler((ctdb), (srvid),			\
				    ctdb_msgcb((handler), (hdata)), (hdata))

#define ctdb_attachdb_send(ctdb, name, persistent, tdb_flags, cb, cbdata) \
	ctdb_attachdb_send((ctdb), (name), (persistent), (tdb_flags),	\
			   ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_readrecordlock_async(_ctdb_db, key, cb, cbdata)		\
	ctdb_readrecordlock_async((_ctdb_db), (key),			\
		typesafe_cb_preargs(void, (cb), (cbdata),		\
				    struct ctdb_db *, struct ctdb_lock *, \
				    TDB_DATA), (cbdata))

#define ctdb_set_message_handler_send(ctdb, srvid, handler, hdata, cb, cbdata) \
	ctdb_set_message_handler_send((ctdb), (srvid),			\
				      ctdb_msgcb((handler), (hdata)), (hdata), \
				      ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_remove_message_handler_send(ctdb, srvid, handler, hdata, cb, cbdata) \
	ctdb_remove_message_handler_send((ctdb), (srvid),		\
	      ctdb_msgcb((handler), (hdata)), (hdata),			\
	      ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getpnn_send(ctdb, destnode, cb, cbdata)			\
	ctdb_getpnn_send((ctdb), (destnode),				\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getcapabilities_send(ctdb, destnode, cb, cbdata)		\
	ctdb_getcapabilities_send((ctdb), (destnode),			\
				  ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getdbstat_send(ctdb, destnode, db_id, cb, cbdata)		\
	ctdb_getdbstat_send((ctdb), (destnode), (db_id),		\
			    ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_check_message_handlers_send(ctdb, destnode, num, mhs,	\
			 cb, cbdata)					\
	ctdb_check_message_handlers_send((ctdb), (destnode), (num), 	\
			 (mhs),						\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getrecmaster_send(ctdb, destnode, cb, cbdata)		\
	ctdb_getrecmaster_send((ctdb), (destnode),			\
			       ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getrecmode_send(ctdb, destnode, cb, cbdata)		\
	ctdb_getrecmode_send((ctdb), (destnode),			\
			       ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getnodemap_send(ctdb, destnode, cb, cbdata)		\
	ctdb_getnodemap_send((ctdb), (destnode),			\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getpublicips_send(ctdb, destnode, cb, cbdata)		\
	ctdb_getpublicips_send((ctdb), (destnode),			\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getdbseqnum_send(ctdb, destnode, dbid, cb, cbdata)		\
	ctdb_getdbseqnum_send((ctdb), (destnode), (dbid),		\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getifaces_send(ctdb, destnode, cb, cbdata)			\
	ctdb_getifaces_send((ctdb), (destnode),				\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))

#define ctdb_getvnnmap_send(ctdb, destnode, cb, cbdata)			\
	ctdb_getvnnmap_send((ctdb), (destnode),				\
			 ctdb_sendcb((cb), (cbdata)), (cbdata))
