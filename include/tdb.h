/*
 * tdb.h: C interface of tdb-rs, a Rust implementation of Samba's trivial
 * database library, a drop-in replacement for libtdb.so.1 (Samba tdb 1.4.8).
 *
 * Generated from src/ffi/tdb.rs by build.rs with cbindgen; do not edit by hand.
 * Regenerate with `make header`; `make check-header` verifies this copy.
 *
 * Memory rules: the dptr of a TDB_DATA returned by tdb_fetch, tdb_firstkey and
 * tdb_nextkey, and the string returned by tdb_summary, are malloc'd and must be
 * released with free(). Strings from tdb_name and tdb_errorstr are not.
 */

#ifndef __TDB_H__
#define __TDB_H__

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#ifndef PRINTF_ATTRIBUTE
#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_ATTRIBUTE(a1, a2) __attribute__ ((format (__printf__, a1, a2)))
#else
#define PRINTF_ATTRIBUTE(a1, a2)
#endif
#endif

/* The database handle; only pointers to it exist. */
typedef struct tdb_context TDB_CONTEXT;

/* A key or a value: dsize bytes at dptr. */
typedef struct TDB_DATA TDB_DATA;

/**
 * tdb_store flag: insert or overwrite.
 */
#define TDB_REPLACE 1

/**
 * tdb_store flag: fail if the key already exists.
 */
#define TDB_INSERT 2

/**
 * tdb_store flag: fail if the key does not exist.
 */
#define TDB_MODIFY 3

/**
 * tdb_open flag: no flags.
 */
#define TDB_DEFAULT 0

/**
 * tdb_open flag: wipe the database if this is its first open.
 */
#define TDB_CLEAR_IF_FIRST 1

/**
 * tdb_open flag: keep the database in memory, never on disk.
 */
#define TDB_INTERNAL 2

/**
 * tdb_open flag: take no locks.
 */
#define TDB_NOLOCK 4

/**
 * tdb_open flag: do not mmap the file.
 */
#define TDB_NOMMAP 8

/**
 * tdb_open flag: the file has the other byte order (set internally).
 */
#define TDB_CONVERT 16

/**
 * tdb_open flag: create the file big-endian.
 */
#define TDB_BIGENDIAN 32

/**
 * tdb_open flag: skip fsync in transactions.
 */
#define TDB_NOSYNC 64

/**
 * tdb_open flag: maintain a sequence number.
 */
#define TDB_SEQNUM 128

/**
 * tdb_open flag: keep dead records per hash chain (default 5).
 */
#define TDB_VOLATILE 256

/**
 * tdb_open flag: allow nested transactions.
 */
#define TDB_ALLOW_NESTING 512

/**
 * tdb_open flag: refuse nested transactions.
 */
#define TDB_DISALLOW_NESTING 1024

/**
 * tdb_open flag: use the Jenkins hash (files unreadable by tdb < 1.2.6).
 */
#define TDB_INCOMPATIBLE_HASH 2048

/**
 * tdb_open flag: lock chains with robust mutexes (with TDB_CLEAR_IF_FIRST, where supported).
 */
#define TDB_MUTEX_LOCKING 4096

/**
 * Severity passed to the log function.
 */
enum tdb_debug_level {
    TDB_DEBUG_FATAL = 0,
    TDB_DEBUG_ERROR,
    TDB_DEBUG_WARNING,
    TDB_DEBUG_TRACE,
};

/**
 * Error codes, as returned by tdb_error.
 */
enum TDB_ERROR {
    TDB_SUCCESS = 0,
    TDB_ERR_CORRUPT,
    TDB_ERR_IO,
    TDB_ERR_LOCK,
    TDB_ERR_OOM,
    TDB_ERR_EXISTS,
    TDB_ERR_NOLOCK,
    TDB_ERR_LOCK_TIMEOUT,
    TDB_ERR_NOEXIST,
    TDB_ERR_EINVAL,
    TDB_ERR_RDONLY,
    TDB_ERR_NESTING,
};

/**
 * Log callback, printf-like (build.rs adds the format attribute in the header).
 */
typedef void (*tdb_log_func)(struct tdb_context*, enum tdb_debug_level, const char*, ...) PRINTF_ATTRIBUTE(3, 4);

/**
 * The log function and its private pointer, for tdb_open_ex and tdb_set_logging_function.
 */
struct tdb_logging_context {
    tdb_log_func log_fn;
    void *log_private;
};

/**
 * A key or a value: `dsize` bytes at `dptr`.
 */
struct TDB_DATA {
    unsigned char *dptr;
    size_t dsize;
};

/**
 * Hash function for tdb_open_ex.
 */
typedef unsigned int (*tdb_hash_func)(struct TDB_DATA *key);

/**
 * Traversal callback: return non-zero to stop the traversal.
 */
typedef int (*tdb_traverse_func)(struct tdb_context*, struct TDB_DATA, struct TDB_DATA, void*);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The empty TDB_DATA {NULL, 0}.
 */
extern struct TDB_DATA tdb_null;

/**
 * Opens a database with no logging and the default hash; NULL with errno set on failure.
 */
struct tdb_context *tdb_open(const char *name, int hash_size, int tdb_flags, int open_flags, mode_t mode);

/**
 * Opens a database with a logging context and hash function; NULL with errno set on failure.
 */
struct tdb_context *tdb_open_ex(const char *name, int hash_size, int tdb_flags, int open_flags, mode_t mode, const struct tdb_logging_context *log_ctx, tdb_hash_func hash_fn);

/**
 * Sets how many dead records a hash chain may keep.
 */
void tdb_set_max_dead(struct tdb_context *tdb, int max_dead);

/**
 * Reopens the file (after fork); on failure the handle is closed, as Samba does.
 */
int tdb_reopen(struct tdb_context *tdb);

/**
 * Reopens every open database after fork; -1 at the first failure (that handle is closed).
 */
int tdb_reopen_all(int parent_longlived);

/**
 * Replaces the log function, keeping the private pointer (deprecated by Samba).
 */
__attribute__((deprecated)) void tdb_logging_function(struct tdb_context *tdb, tdb_log_func log_fn);

/**
 * Installs a logging context (copied; NULL turns logging off).
 */
void tdb_set_logging_function(struct tdb_context *tdb, const struct tdb_logging_context *log_ctx);

/**
 * The code of the last error on this database.
 */
enum TDB_ERROR tdb_error(struct tdb_context *tdb);

/**
 * A static text describing the last error ("Success" when there was none).
 */
const char *tdb_errorstr(struct tdb_context *tdb);

/**
 * The value stored under `key`, malloc'd (caller frees dptr); {NULL, 0} if absent or on error.
 */
struct TDB_DATA tdb_fetch(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Calls `parser` on the record in place under a read lock; its result, or -1 if absent.
 */
int tdb_parse_record(struct tdb_context *tdb, struct TDB_DATA key, int (*parser)(struct TDB_DATA key, struct TDB_DATA data, void *private_data), void *private_data);

/**
 * Deletes `key`; 0, or -1 (TDB_ERR_NOEXIST when absent).
 */
int tdb_delete(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Stores `dbuf` under `key` (TDB_REPLACE, TDB_INSERT or TDB_MODIFY); 0 or -1.
 */
int tdb_store(struct tdb_context *tdb, struct TDB_DATA key, struct TDB_DATA dbuf, int flag);

/**
 * Stores the concatenation of `num_dbufs` buffers under `key`; 0 or -1.
 */
int tdb_storev(struct tdb_context *tdb, struct TDB_DATA key, const struct TDB_DATA *dbufs, int num_dbufs, int flag);

/**
 * Appends `new_dbuf` to the value of `key`, creating it if absent; 0 or -1.
 */
int tdb_append(struct tdb_context *tdb, struct TDB_DATA key, struct TDB_DATA new_dbuf);

/**
 * Closes the database and frees the handle; 0 or -1 (the handle is gone either way).
 */
int tdb_close(struct tdb_context *tdb);

/**
 * The first key of a walk, malloc'd (caller frees); {NULL, 0} when empty or on error.
 */
struct TDB_DATA tdb_firstkey(struct tdb_context *tdb);

/**
 * The key after `key`, malloc'd (caller frees); {NULL, 0} at the end or on error.
 */
struct TDB_DATA tdb_nextkey(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Calls `fn` on every record (it may change the database); the count visited, or -1.
 */
int tdb_traverse(struct tdb_context *tdb, tdb_traverse_func fn, void *private_data);

/**
 * Calls `fn` on every record under read locks; the count visited, or -1.
 */
int tdb_traverse_read(struct tdb_context *tdb, tdb_traverse_func fn, void *private_data);

/**
 * Calls `fn` on the records of one hash chain; the count visited, or -1.
 */
int tdb_traverse_chain(struct tdb_context *tdb, unsigned int chain, tdb_traverse_func fn, void *private_data);

/**
 * Calls `fn` on the records of the hash chain `key` belongs to; the count visited, or -1.
 */
int tdb_traverse_key_chain(struct tdb_context *tdb, struct TDB_DATA key, tdb_traverse_func fn, void *private_data);

/**
 * 1 if `key` is present, 0 if not (or on error).
 */
int tdb_exists(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Write-locks the whole database; 0 or -1.
 */
int tdb_lockall(struct tdb_context *tdb);

/**
 * Write-locks the whole database without waiting; 0 or -1.
 */
int tdb_lockall_nonblock(struct tdb_context *tdb);

/**
 * Releases the whole-database write lock; 0 or -1.
 */
int tdb_unlockall(struct tdb_context *tdb);

/**
 * Read-locks the whole database; 0 or -1.
 */
int tdb_lockall_read(struct tdb_context *tdb);

/**
 * Read-locks the whole database without waiting; 0 or -1.
 */
int tdb_lockall_read_nonblock(struct tdb_context *tdb);

/**
 * Releases the whole-database read lock; 0 or -1.
 */
int tdb_unlockall_read(struct tdb_context *tdb);

/**
 * Marks the whole-database lock as held without taking it; 0 or -1.
 */
int tdb_lockall_mark(struct tdb_context *tdb);

/**
 * Forgets a marked whole-database lock; 0 or -1.
 */
int tdb_lockall_unmark(struct tdb_context *tdb);

/**
 * The name the database was opened with (owned by the handle); NULL on error.
 */
const char *tdb_name(struct tdb_context *tdb);

/**
 * The file descriptor, or -1 (TDB_INTERNAL, or on error).
 */
int tdb_fd(struct tdb_context *tdb);

/**
 * The current log function (a no-op one when none was given).
 */
tdb_log_func tdb_log_fn(struct tdb_context *tdb);

/**
 * The log_private pointer of the logging context (NULL when none).
 */
void *tdb_get_logging_private(struct tdb_context *tdb);

/**
 * Whether a transaction is open on this handle.
 */
bool tdb_transaction_active(struct tdb_context *tdb);

/**
 * Starts a transaction, waiting for the lock; 0 or -1.
 */
int tdb_transaction_start(struct tdb_context *tdb);

/**
 * Starts a transaction without waiting; 0 or -1.
 */
int tdb_transaction_start_nonblock(struct tdb_context *tdb);

/**
 * Prepares the commit (first phase); 0 or -1.
 */
int tdb_transaction_prepare_commit(struct tdb_context *tdb);

/**
 * Commits the transaction; 0 or -1.
 */
int tdb_transaction_commit(struct tdb_context *tdb);

/**
 * Cancels the transaction; 0 or -1.
 */
int tdb_transaction_cancel(struct tdb_context *tdb);

/**
 * The sequence number (0 on error).
 */
int tdb_get_seqnum(struct tdb_context *tdb);

/**
 * The number of hash chains (0 on error).
 */
int tdb_hash_size(struct tdb_context *tdb);

/**
 * The size of the mapping (0 on error).
 */
size_t tdb_map_size(struct tdb_context *tdb);

/**
 * The TDB_* flags in force (0 on error).
 */
int tdb_get_flags(struct tdb_context *tdb);

/**
 * Sets TDB_* flags at run time.
 */
void tdb_add_flags(struct tdb_context *tdb, unsigned int flag);

/**
 * Clears TDB_* flags at run time.
 */
void tdb_remove_flags(struct tdb_context *tdb, unsigned int flag);

/**
 * Turns on the sequence number (TDB_SEQNUM).
 */
void tdb_enable_seqnum(struct tdb_context *tdb);

/**
 * Increments the sequence number without locking.
 */
void tdb_increment_seqnum_nonblock(struct tdb_context *tdb);

/**
 * Bob Jenkins' lookup3 hash of the key (0 for a NULL key).
 */
unsigned int tdb_jenkins_hash(struct TDB_DATA *key);

/**
 * Checks the whole database, calling `check` on each record (non-zero = bad); 0 or -1.
 */
int tdb_check(struct tdb_context *tdb, int (*check)(struct TDB_DATA key, struct TDB_DATA data, void *private_data), void *private_data);

/**
 * Calls `walk` on every record that looks intact, whatever the damage; 0 or -1.
 */
int tdb_rescue(struct tdb_context *tdb, void (*walk)(struct TDB_DATA key, struct TDB_DATA data, void *private_data), void *private_data);

/**
 * Whether robust process-shared mutexes work here (for TDB_MUTEX_LOCKING).
 */
bool tdb_runtime_check_for_robust_mutexes(void);

/**
 * Write-locks the hash chain of `key`; 0 or -1.
 */
int tdb_chainlock(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Write-locks the hash chain of `key` without waiting; 0 or -1.
 */
int tdb_chainlock_nonblock(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Releases the chain write lock of `key`; 0 or -1.
 */
int tdb_chainunlock(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Read-locks the hash chain of `key`; 0 or -1.
 */
int tdb_chainlock_read(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Read-locks the hash chain of `key` without waiting; 0 or -1.
 */
int tdb_chainlock_read_nonblock(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Releases the chain read lock of `key`; 0 or -1.
 */
int tdb_chainunlock_read(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Marks the chain lock of `key` as held without taking it; 0 or -1.
 */
int tdb_chainlock_mark(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * Forgets a marked chain lock of `key`; 0 or -1.
 */
int tdb_chainlock_unmark(struct tdb_context *tdb, struct TDB_DATA key);

/**
 * A waiting lock gives up (TDB_ERR_LOCK_TIMEOUT) once `*sigptr` becomes non-zero; NULL clears it.
 */
void tdb_setalarm_sigptr(struct tdb_context *tdb, volatile sig_atomic_t *sigptr);

/**
 * Deletes every record; 0 or -1.
 */
int tdb_wipe_all(struct tdb_context *tdb);

/**
 * Rewrites the database compactly; 0 or -1.
 */
int tdb_repack(struct tdb_context *tdb);

/**
 * Prints every hash chain and record to stdout (debugging).
 */
void tdb_dump_all(struct tdb_context *tdb);

/**
 * Prints the freelist to stdout (debugging); 0 or -1.
 */
int tdb_printfreelist(struct tdb_context *tdb);

/**
 * Checks the freelist for loops, storing its length in `*pnum_entries`; 0 or -1.
 */
int tdb_validate_freelist(struct tdb_context *tdb, int *pnum_entries);

/**
 * The number of freelist entries, or -1.
 */
int tdb_freelist_size(struct tdb_context *tdb);

/**
 * A malloc'd text of statistics about the database (caller frees); NULL on error.
 */
char *tdb_summary(struct tdb_context *tdb);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* __TDB_H__ */
