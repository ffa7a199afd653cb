/* Prints the checked values; with TDB_VALUES_OTHER, fails unless our header and
 * the other one agree on every value and on sizeof(TDB_DATA). */
#include <stddef.h>
#include <stdio.h>

extern const long tdb_values_ours[];
extern const char *const tdb_value_names[];
extern const unsigned tdb_value_count;
#ifdef TDB_VALUES_OTHER
extern const long tdb_values_other[];
extern const size_t tdb_other_data_size;
#endif

int main(void)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < tdb_value_count; i++) {
#ifdef TDB_VALUES_OTHER
        if (tdb_values_ours[i] != tdb_values_other[i]) {
            printf("MISMATCH %s: ours %ld, other header %ld\n", tdb_value_names[i],
                   tdb_values_ours[i], tdb_values_other[i]);
            bad++;
        }
#endif
    }
#ifdef TDB_VALUES_OTHER
    if (tdb_other_data_size != sizeof(void *) + sizeof(size_t)) {
        printf("MISMATCH sizeof(TDB_DATA)\n");
        bad++;
    }
    printf("header values: %u of %u agree with the other tdb.h\n", tdb_value_count - bad, tdb_value_count);
#else
    printf("header values: %u macros and enumerators have Samba's values\n", tdb_value_count);
#endif
    return bad != 0;
}
