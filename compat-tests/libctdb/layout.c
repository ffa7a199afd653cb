/*
 * Prints the size and member offsets of every structure ctdb.h hands out and
 * the value of its constants; run.sh compiles it against our include/ctdb.h
 * and against the original headers and compares the two outputs.
 */
#include <ctdb.h>
#include <stddef.h>
#include <stdio.h>

#define SIZE(t) printf("sizeof(%s) %zu\n", #t, sizeof(t))
#define OFF(t, m) printf("offsetof(%s, %s) %zu\n", #t, #m, offsetof(t, m))
#define VAL(v) printf("%s %llu\n", #v, (unsigned long long)(v))

int main(void)
{
	SIZE(ctdb_sock_addr);
	SIZE(struct ctdb_ltdb_header);
	OFF(struct ctdb_ltdb_header, flags);
	SIZE(struct ctdb_node_and_flags);
	OFF(struct ctdb_node_and_flags, addr);
	SIZE(struct ctdb_node_map);
	OFF(struct ctdb_node_map, nodes);
	SIZE(struct ctdb_public_ip);
	SIZE(struct ctdb_all_public_ips);
	OFF(struct ctdb_all_public_ips, ips);
	SIZE(struct latency_counter);
	SIZE(struct ctdb_db_statistics);
	OFF(struct ctdb_db_statistics, vacuum);
	OFF(struct ctdb_db_statistics, db_ro_delegations);
	OFF(struct ctdb_db_statistics, hop_count_bucket);
	OFF(struct ctdb_db_statistics, num_hot_keys);
	OFF(struct ctdb_db_statistics, hot_keys);
	OFF(struct ctdb_db_statistics, hot_keys_wire);
	SIZE(struct ctdb_iface_info);
	OFF(struct ctdb_iface_info, link_state);
	OFF(struct ctdb_iface_info, references);
	SIZE(struct ctdb_ifaces_list);
	SIZE(struct ctdb_vnn_map);
	OFF(struct ctdb_vnn_map, map);
	VAL(CTDB_CURRENT_NODE);
	VAL(CTDB_BROADCAST_ALL);
	VAL(CTDB_BROADCAST_VNNMAP);
	VAL(CTDB_BROADCAST_CONNECTED);
	VAL(CTDB_SRVID_ALL);
	VAL(CTDB_SRVID_TEST_RANGE);
	VAL(CTDB_SRVID_TRAVERSE_RANGE);
	VAL(CTDB_SRVID_RECONFIGURE);
	VAL(CTDB_SRVID_RELEASE_IP);
	VAL(CTDB_SRVID_TAKE_IP);
	VAL(CTDB_IMMEDIATE_MIGRATION);
	VAL(CTDB_WANT_READONLY);
	VAL(CTDB_REC_RO_FLAGS);
	VAL(NODE_FLAGS_DISCONNECTED);
	VAL(NODE_FLAGS_BANNED);
	VAL(NODE_FLAGS_INACTIVE);
	VAL(NODE_FLAGS_DISABLED);
	VAL(CTDB_CAP_RECMASTER);
	VAL(CTDB_CAP_LMASTER);
	VAL(CTDB_CAP_DEFAULT);
	VAL(MAX_COUNT_BUCKETS);
	VAL(MAX_HOT_KEYS);
	VAL(CTDB_IFACE_SIZE);
	VAL(INVALID_GENERATION);
	VAL(TRAVERSE_STATUS_RECORD);
	VAL(TRAVERSE_STATUS_FINISHED);
	VAL(TRAVERSE_STATUS_ERROR);
	return 0;
}
