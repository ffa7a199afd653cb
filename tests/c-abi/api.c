/* Compile-and-link check of include/tdb.h against Samba's tdb.h interface:
 * every exported function is assigned to a pointer spelled with Samba's
 * parameter and return types (ABI/tdb-*.sigs), so any difference in a
 * prototype is a -Werror failure; every macro, enum, typedef and callback type
 * is used. Linking resolves all 74 symbols; running it only prints a count.
 * Built by `make check-c-header` (gcc -Wall -Wextra -Werror, and as C++). */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <tdb.h>

/* Exported by libtdb.so.1 but not in tdb.h; Samba's own tools declare them so. */
#ifdef __cplusplus
extern "C" {
#endif
int tdb_lock_nonblock(struct tdb_context *tdb, int list, int ltype);
int tdb_unlock(struct tdb_context *tdb, int list, int ltype);
int tdb_transaction_write_lock_mark(struct tdb_context *tdb);
int tdb_transaction_write_lock_unmark(struct tdb_context *tdb);
#ifdef __cplusplus
}
#endif

static void log_fn(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
    PRINTF_ATTRIBUTE(3, 4);
static void log_fn(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s (%d): ", tdb_name(tdb), (int)level);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int traverse_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data, void *private_data)
{
    return tdb_delete(tdb, key) != 0 || data.dsize == 0 || private_data == NULL;
}

static unsigned int hash_fn(TDB_DATA *key)
{
    return (unsigned int)key->dsize;
}

static int parser(TDB_DATA key, TDB_DATA data, void *private_data)
{
    return (int)(key.dsize + data.dsize) + (private_data != NULL);
}

static void walk(TDB_DATA key, TDB_DATA data, void *private_data)
{
    (void)key; (void)data; (void)private_data;
}

static volatile sig_atomic_t alarm_flag;

/* Calls everything once on a database (never run by the checks). */
int exercise(const char *path);
int exercise(const char *path)
{
    struct tdb_logging_context log_ctx = { log_fn, NULL };
    tdb_log_func lf = log_fn;
    tdb_hash_func hf = hash_fn;
    tdb_traverse_func tf = traverse_fn;
    TDB_CONTEXT *tdb = tdb_open_ex(path, 0, TDB_DEFAULT | TDB_CLEAR_IF_FIRST | TDB_NOSYNC,
                                   O_RDWR | O_CREAT, 0600, &log_ctx, hf);
    TDB_DATA key = { (unsigned char *)"k", 1 }, data = tdb_null, parts[2] = { key, key };
    int n = 0, flags[] = { TDB_INTERNAL, TDB_NOLOCK, TDB_NOMMAP, TDB_CONVERT, TDB_BIGENDIAN,
                           TDB_SEQNUM, TDB_VOLATILE, TDB_ALLOW_NESTING, TDB_DISALLOW_NESTING,
                           TDB_INCOMPATIBLE_HASH, TDB_MUTEX_LOCKING };
    enum TDB_ERROR codes[] = { TDB_SUCCESS, TDB_ERR_CORRUPT, TDB_ERR_IO, TDB_ERR_LOCK, TDB_ERR_OOM,
                               TDB_ERR_EXISTS, TDB_ERR_NOLOCK, TDB_ERR_LOCK_TIMEOUT, TDB_ERR_NOEXIST,
                               TDB_ERR_EINVAL, TDB_ERR_RDONLY, TDB_ERR_NESTING };
    enum tdb_debug_level levels[] = { TDB_DEBUG_FATAL, TDB_DEBUG_ERROR, TDB_DEBUG_WARNING,
                                      TDB_DEBUG_TRACE };
    char *summary;

    if (tdb == NULL)
        return -1;
    lf(tdb, levels[0], "%d flags, %d codes\n", (int)sizeof(flags), (int)codes[1]);
    tdb_set_logging_function(tdb, &log_ctx);
    tdb_store(tdb, key, key, TDB_REPLACE);
    tdb_store(tdb, key, key, TDB_INSERT);
    tdb_store(tdb, key, key, TDB_MODIFY);
    tdb_storev(tdb, key, parts, 2, TDB_REPLACE);
    tdb_append(tdb, key, key);
    data = tdb_fetch(tdb, key);
    free(data.dptr);
    tdb_parse_record(tdb, key, parser, NULL);
    n += tdb_exists(tdb, key);
    data = tdb_firstkey(tdb);
    free(tdb_nextkey(tdb, data).dptr);
    free(data.dptr);
    n += tdb_traverse(tdb, tf, NULL) + tdb_traverse_read(tdb, NULL, NULL);
    n += tdb_traverse_chain(tdb, 0u, tf, NULL) + tdb_traverse_key_chain(tdb, key, tf, NULL);
    tdb_setalarm_sigptr(tdb, &alarm_flag);
    n += tdb_jenkins_hash(&key) != 0;
    n += tdb_check(tdb, parser, NULL) + tdb_rescue(tdb, walk, NULL);
    summary = tdb_summary(tdb);
    free(summary);
    printf("%s %s %d %zu\n", tdb_errorstr(tdb), tdb_name(tdb), tdb_fd(tdb), tdb_map_size(tdb));
    return n + tdb_close(tdb);
}

int main(int argc, char **argv)
{
    unsigned i, count;
    void (*p_tdb_add_flags)(struct tdb_context *, unsigned int) = tdb_add_flags;
    int (*p_tdb_append)(struct tdb_context *, TDB_DATA, TDB_DATA) = tdb_append;
    int (*p_tdb_chainlock)(struct tdb_context *, TDB_DATA) = tdb_chainlock;
    int (*p_tdb_chainlock_mark)(struct tdb_context *, TDB_DATA) = tdb_chainlock_mark;
    int (*p_tdb_chainlock_nonblock)(struct tdb_context *, TDB_DATA) = tdb_chainlock_nonblock;
    int (*p_tdb_chainlock_read)(struct tdb_context *, TDB_DATA) = tdb_chainlock_read;
    int (*p_tdb_chainlock_read_nonblock)(struct tdb_context *, TDB_DATA) = tdb_chainlock_read_nonblock;
    int (*p_tdb_chainlock_unmark)(struct tdb_context *, TDB_DATA) = tdb_chainlock_unmark;
    int (*p_tdb_chainunlock)(struct tdb_context *, TDB_DATA) = tdb_chainunlock;
    int (*p_tdb_chainunlock_read)(struct tdb_context *, TDB_DATA) = tdb_chainunlock_read;
    int (*p_tdb_check)(struct tdb_context *, int (*)(TDB_DATA, TDB_DATA, void *), void *) = tdb_check;
    int (*p_tdb_close)(struct tdb_context *) = tdb_close;
    int (*p_tdb_delete)(struct tdb_context *, TDB_DATA) = tdb_delete;
    void (*p_tdb_dump_all)(struct tdb_context *) = tdb_dump_all;
    void (*p_tdb_enable_seqnum)(struct tdb_context *) = tdb_enable_seqnum;
    enum TDB_ERROR (*p_tdb_error)(struct tdb_context *) = tdb_error;
    const char * (*p_tdb_errorstr)(struct tdb_context *) = tdb_errorstr;
    int (*p_tdb_exists)(struct tdb_context *, TDB_DATA) = tdb_exists;
    int (*p_tdb_fd)(struct tdb_context *) = tdb_fd;
    TDB_DATA (*p_tdb_fetch)(struct tdb_context *, TDB_DATA) = tdb_fetch;
    TDB_DATA (*p_tdb_firstkey)(struct tdb_context *) = tdb_firstkey;
    int (*p_tdb_freelist_size)(struct tdb_context *) = tdb_freelist_size;
    int (*p_tdb_get_flags)(struct tdb_context *) = tdb_get_flags;
    void * (*p_tdb_get_logging_private)(struct tdb_context *) = tdb_get_logging_private;
    int (*p_tdb_get_seqnum)(struct tdb_context *) = tdb_get_seqnum;
    int (*p_tdb_hash_size)(struct tdb_context *) = tdb_hash_size;
    void (*p_tdb_increment_seqnum_nonblock)(struct tdb_context *) = tdb_increment_seqnum_nonblock;
    unsigned int (*p_tdb_jenkins_hash)(TDB_DATA *) = tdb_jenkins_hash;
    int (*p_tdb_lock_nonblock)(struct tdb_context *, int, int) = tdb_lock_nonblock;
    int (*p_tdb_lockall)(struct tdb_context *) = tdb_lockall;
    int (*p_tdb_lockall_mark)(struct tdb_context *) = tdb_lockall_mark;
    int (*p_tdb_lockall_nonblock)(struct tdb_context *) = tdb_lockall_nonblock;
    int (*p_tdb_lockall_read)(struct tdb_context *) = tdb_lockall_read;
    int (*p_tdb_lockall_read_nonblock)(struct tdb_context *) = tdb_lockall_read_nonblock;
    int (*p_tdb_lockall_unmark)(struct tdb_context *) = tdb_lockall_unmark;
    tdb_log_func (*p_tdb_log_fn)(struct tdb_context *) = tdb_log_fn;
    size_t (*p_tdb_map_size)(struct tdb_context *) = tdb_map_size;
    const char * (*p_tdb_name)(struct tdb_context *) = tdb_name;
    TDB_DATA (*p_tdb_nextkey)(struct tdb_context *, TDB_DATA) = tdb_nextkey;
    struct tdb_context * (*p_tdb_open)(const char *, int, int, int, mode_t) = tdb_open;
    struct tdb_context * (*p_tdb_open_ex)(const char *, int, int, int, mode_t, const struct tdb_logging_context *, tdb_hash_func) = tdb_open_ex;
    int (*p_tdb_parse_record)(struct tdb_context *, TDB_DATA, int (*)(TDB_DATA, TDB_DATA, void *), void *) = tdb_parse_record;
    int (*p_tdb_printfreelist)(struct tdb_context *) = tdb_printfreelist;
    void (*p_tdb_remove_flags)(struct tdb_context *, unsigned int) = tdb_remove_flags;
    int (*p_tdb_reopen)(struct tdb_context *) = tdb_reopen;
    int (*p_tdb_reopen_all)(int) = tdb_reopen_all;
    int (*p_tdb_repack)(struct tdb_context *) = tdb_repack;
    int (*p_tdb_rescue)(struct tdb_context *, void (*)(TDB_DATA, TDB_DATA, void *), void *) = tdb_rescue;
    bool (*p_tdb_runtime_check_for_robust_mutexes)(void) = tdb_runtime_check_for_robust_mutexes;
    void (*p_tdb_set_logging_function)(struct tdb_context *, const struct tdb_logging_context *) = tdb_set_logging_function;
    void (*p_tdb_set_max_dead)(struct tdb_context *, int) = tdb_set_max_dead;
    void (*p_tdb_setalarm_sigptr)(struct tdb_context *, volatile sig_atomic_t *) = tdb_setalarm_sigptr;
    int (*p_tdb_store)(struct tdb_context *, TDB_DATA, TDB_DATA, int) = tdb_store;
    int (*p_tdb_storev)(struct tdb_context *, TDB_DATA, const TDB_DATA *, int, int) = tdb_storev;
    char * (*p_tdb_summary)(struct tdb_context *) = tdb_summary;
    bool (*p_tdb_transaction_active)(struct tdb_context *) = tdb_transaction_active;
    int (*p_tdb_transaction_cancel)(struct tdb_context *) = tdb_transaction_cancel;
    int (*p_tdb_transaction_commit)(struct tdb_context *) = tdb_transaction_commit;
    int (*p_tdb_transaction_prepare_commit)(struct tdb_context *) = tdb_transaction_prepare_commit;
    int (*p_tdb_transaction_start)(struct tdb_context *) = tdb_transaction_start;
    int (*p_tdb_transaction_start_nonblock)(struct tdb_context *) = tdb_transaction_start_nonblock;
    int (*p_tdb_transaction_write_lock_mark)(struct tdb_context *) = tdb_transaction_write_lock_mark;
    int (*p_tdb_transaction_write_lock_unmark)(struct tdb_context *) = tdb_transaction_write_lock_unmark;
    int (*p_tdb_traverse)(struct tdb_context *, tdb_traverse_func, void *) = tdb_traverse;
    int (*p_tdb_traverse_chain)(struct tdb_context *, unsigned int, tdb_traverse_func, void *) = tdb_traverse_chain;
    int (*p_tdb_traverse_key_chain)(struct tdb_context *, TDB_DATA, tdb_traverse_func, void *) = tdb_traverse_key_chain;
    int (*p_tdb_traverse_read)(struct tdb_context *, tdb_traverse_func, void *) = tdb_traverse_read;
    int (*p_tdb_unlock)(struct tdb_context *, int, int) = tdb_unlock;
    int (*p_tdb_unlockall)(struct tdb_context *) = tdb_unlockall;
    int (*p_tdb_unlockall_read)(struct tdb_context *) = tdb_unlockall_read;
    int (*p_tdb_validate_freelist)(struct tdb_context *, int *) = tdb_validate_freelist;
    int (*p_tdb_wipe_all)(struct tdb_context *) = tdb_wipe_all;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    /* deprecated, as in Samba's tdb.h */
    void (*p_tdb_logging_function)(struct tdb_context *, tdb_log_func) = tdb_logging_function;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    void (*const table[])(void) = {
        (void (*)(void))p_tdb_logging_function,
        (void (*)(void))p_tdb_add_flags,
        (void (*)(void))p_tdb_append,
        (void (*)(void))p_tdb_chainlock,
        (void (*)(void))p_tdb_chainlock_mark,
        (void (*)(void))p_tdb_chainlock_nonblock,
        (void (*)(void))p_tdb_chainlock_read,
        (void (*)(void))p_tdb_chainlock_read_nonblock,
        (void (*)(void))p_tdb_chainlock_unmark,
        (void (*)(void))p_tdb_chainunlock,
        (void (*)(void))p_tdb_chainunlock_read,
        (void (*)(void))p_tdb_check,
        (void (*)(void))p_tdb_close,
        (void (*)(void))p_tdb_delete,
        (void (*)(void))p_tdb_dump_all,
        (void (*)(void))p_tdb_enable_seqnum,
        (void (*)(void))p_tdb_error,
        (void (*)(void))p_tdb_errorstr,
        (void (*)(void))p_tdb_exists,
        (void (*)(void))p_tdb_fd,
        (void (*)(void))p_tdb_fetch,
        (void (*)(void))p_tdb_firstkey,
        (void (*)(void))p_tdb_freelist_size,
        (void (*)(void))p_tdb_get_flags,
        (void (*)(void))p_tdb_get_logging_private,
        (void (*)(void))p_tdb_get_seqnum,
        (void (*)(void))p_tdb_hash_size,
        (void (*)(void))p_tdb_increment_seqnum_nonblock,
        (void (*)(void))p_tdb_jenkins_hash,
        (void (*)(void))p_tdb_lock_nonblock,
        (void (*)(void))p_tdb_lockall,
        (void (*)(void))p_tdb_lockall_mark,
        (void (*)(void))p_tdb_lockall_nonblock,
        (void (*)(void))p_tdb_lockall_read,
        (void (*)(void))p_tdb_lockall_read_nonblock,
        (void (*)(void))p_tdb_lockall_unmark,
        (void (*)(void))p_tdb_log_fn,
        (void (*)(void))p_tdb_map_size,
        (void (*)(void))p_tdb_name,
        (void (*)(void))p_tdb_nextkey,
        (void (*)(void))p_tdb_open,
        (void (*)(void))p_tdb_open_ex,
        (void (*)(void))p_tdb_parse_record,
        (void (*)(void))p_tdb_printfreelist,
        (void (*)(void))p_tdb_remove_flags,
        (void (*)(void))p_tdb_reopen,
        (void (*)(void))p_tdb_reopen_all,
        (void (*)(void))p_tdb_repack,
        (void (*)(void))p_tdb_rescue,
        (void (*)(void))p_tdb_runtime_check_for_robust_mutexes,
        (void (*)(void))p_tdb_set_logging_function,
        (void (*)(void))p_tdb_set_max_dead,
        (void (*)(void))p_tdb_setalarm_sigptr,
        (void (*)(void))p_tdb_store,
        (void (*)(void))p_tdb_storev,
        (void (*)(void))p_tdb_summary,
        (void (*)(void))p_tdb_transaction_active,
        (void (*)(void))p_tdb_transaction_cancel,
        (void (*)(void))p_tdb_transaction_commit,
        (void (*)(void))p_tdb_transaction_prepare_commit,
        (void (*)(void))p_tdb_transaction_start,
        (void (*)(void))p_tdb_transaction_start_nonblock,
        (void (*)(void))p_tdb_transaction_write_lock_mark,
        (void (*)(void))p_tdb_transaction_write_lock_unmark,
        (void (*)(void))p_tdb_traverse,
        (void (*)(void))p_tdb_traverse_chain,
        (void (*)(void))p_tdb_traverse_key_chain,
        (void (*)(void))p_tdb_traverse_read,
        (void (*)(void))p_tdb_unlock,
        (void (*)(void))p_tdb_unlockall,
        (void (*)(void))p_tdb_unlockall_read,
        (void (*)(void))p_tdb_validate_freelist,
        (void (*)(void))p_tdb_wipe_all,
    };

    count = (unsigned)(sizeof(table) / sizeof(table[0]));
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i] == NULL)
            return 1;
    printf("tdb.h: %u functions and tdb_null (%p) resolved\n", count, (void *)&tdb_null);
    if (argc > 1)
        return exercise(argv[1]);
    return 0;
}
