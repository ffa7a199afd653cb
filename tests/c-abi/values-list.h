/* Every macro and enumerator of tdb.h, with its value in Samba's tdb 1.4.8.
 * X(name, value) is expanded by values.c (static assertions against our header)
 * and values-other.c (the same names against another tdb.h). */
#define TDB_VALUE_LIST \
    X(TDB_REPLACE, 1) X(TDB_INSERT, 2) X(TDB_MODIFY, 3) \
    X(TDB_DEFAULT, 0) X(TDB_CLEAR_IF_FIRST, 1) X(TDB_INTERNAL, 2) X(TDB_NOLOCK, 4) \
    X(TDB_NOMMAP, 8) X(TDB_CONVERT, 16) X(TDB_BIGENDIAN, 32) X(TDB_NOSYNC, 64) \
    X(TDB_SEQNUM, 128) X(TDB_VOLATILE, 256) X(TDB_ALLOW_NESTING, 512) \
    X(TDB_DISALLOW_NESTING, 1024) X(TDB_INCOMPATIBLE_HASH, 2048) X(TDB_MUTEX_LOCKING, 4096) \
    X(TDB_SUCCESS, 0) X(TDB_ERR_CORRUPT, 1) X(TDB_ERR_IO, 2) X(TDB_ERR_LOCK, 3) \
    X(TDB_ERR_OOM, 4) X(TDB_ERR_EXISTS, 5) X(TDB_ERR_NOLOCK, 6) X(TDB_ERR_LOCK_TIMEOUT, 7) \
    X(TDB_ERR_NOEXIST, 8) X(TDB_ERR_EINVAL, 9) X(TDB_ERR_RDONLY, 10) X(TDB_ERR_NESTING, 11) \
    X(TDB_DEBUG_FATAL, 0) X(TDB_DEBUG_ERROR, 1) X(TDB_DEBUG_WARNING, 2) X(TDB_DEBUG_TRACE, 3)
