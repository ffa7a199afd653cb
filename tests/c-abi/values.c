/* Our tdb.h: every macro and enumerator has Samba's value (checked at compile
 * time), and the values are exported for values-main.c to compare. */
#include <assert.h>
#include <stddef.h>
#include <tdb.h>
#include "values-list.h"

#define X(name, value) static_assert((name) == (value), #name " must be " #value);
TDB_VALUE_LIST
#undef X

/* The layouts C code relies on. */
static_assert(sizeof(TDB_DATA) == sizeof(void *) + sizeof(size_t), "TDB_DATA layout");
static_assert(offsetof(TDB_DATA, dsize) == sizeof(void *), "TDB_DATA layout");
static_assert(sizeof(enum TDB_ERROR) == sizeof(int), "enum TDB_ERROR is int-sized");
static_assert(sizeof(struct tdb_logging_context) == 2 * sizeof(void *), "logging context layout");

#define X(name, value) (long)(name),
const long tdb_values_ours[] = { TDB_VALUE_LIST };
#undef X
#define X(name, value) #name,
const char *const tdb_value_names[] = { TDB_VALUE_LIST };
#undef X
const unsigned tdb_value_count = sizeof(tdb_values_ours) / sizeof(tdb_values_ours[0]);
