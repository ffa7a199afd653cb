/* The same names against the system's tdb.h (Debian's /usr/include/tdb.h):
 * compiled without our include/ directory on the path. */
#include <sys/types.h>
#include <stddef.h>
#include <tdb.h>
#include "values-list.h"

#define X(name, value) (long)(name),
const long tdb_values_other[] = { TDB_VALUE_LIST };
#undef X
const size_t tdb_other_data_size = sizeof(TDB_DATA);
