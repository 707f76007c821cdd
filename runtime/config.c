/* SPDX-License-Identifier: MIT */
/* Node configuration: the reference's defaults (REFERENCE 3.4) and precise validation.
 *
 * Design notes:
 * - Validation follows the reference's order for its five rules (heartbeat vs election
 *   minimum, timeout range, peers containing self, chunk size, lease bound), then checks
 *   what the reference leaves unchecked (REFERENCE 3.4 "Not validated"): zero ids and
 *   ticks, duplicate peers, missing addresses, lease without pre-vote (8.1 #4), pending
 *   limits, cache size, secret length, pinning.
 * - Every message names the field, the value and the rule, so an operator can fix it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "yggr/yggr.h"
#include "yggr_assert.h"

void yggr_config_init(struct yggr_config *config, uint64_t node_id)
{
    YGGR_ASSERT(config != NULL);
    memset(config, 0, sizeof(*config));
    config->node_id = node_id;
    config->bootstrap = YGGR_BOOTSTRAP_AUTO;
    config->tick_ms = 50;
    config->election_timeout_min_ticks = 10;
    config->election_timeout_max_ticks = 20;
    config->heartbeat_interval_ticks = 3;
    config->pre_vote = true;
    config->check_quorum = true;
    config->lease_duration_ticks = 0;
    config->max_pending_proposals = 1024;
    config->max_pending_applies = 4096;
    config->max_pending_reads = 4096;
    config->max_batch_entries = 4096;
    config->max_command_bytes = 4u << 20;
    config->snapshot_threshold_entries = 1024;
    config->max_log_entries = 0;
    config->snapshot_chunk_bytes = 65536;
    config->snapshot_trailing_entries = 0;
    config->segment_bytes = 64u << 20;
    config->log_cache_entries = 1u << 16;
    config->cpu_driver = -1;
    config->cpu_apply = -1;
    config->cpu_network = -1;
    config->cpu_disk = -1;
    config->log_level = 1;
    YGGR_ASSERT(config->heartbeat_interval_ticks < config->election_timeout_min_ticks);
}

static int fail(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t why_size, const char *fmt, ...)
{
    if (why != NULL && why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return YGGR_ERR_CONFIG;
}

/* "host:port" with a numeric port in 1..65535. */
static bool addr_valid(const char *addr)
{
    if (addr == NULL) {
        return false;
    }
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0') {
        return false;
    }
    unsigned long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535) {
            return false;
        }
    }
    return port > 0 && strlen(addr) < 128;
}

static int validate_timing(const struct yggr_config *c, char *why, size_t n)
{
    if (c->heartbeat_interval_ticks >= c->election_timeout_min_ticks) {
        return fail(why, n,
                    "heartbeat_interval_ticks (%u) must be less than "
                    "election_timeout_min_ticks (%u)",
                    c->heartbeat_interval_ticks, c->election_timeout_min_ticks);
    }
    if (c->election_timeout_min_ticks >= c->election_timeout_max_ticks) {
        return fail(why, n,
                    "election_timeout_min_ticks (%u) must be less than "
                    "election_timeout_max_ticks (%u)",
                    c->election_timeout_min_ticks, c->election_timeout_max_ticks);
    }
    if (c->heartbeat_interval_ticks == 0) {
        return fail(why, n, "heartbeat_interval_ticks must be at least 1");
    }
    if (c->tick_ms == 0 || c->tick_ms > 60000) {
        return fail(why, n, "tick_ms (%u) must be between 1 and 60000", c->tick_ms);
    }
    return 0;
}

static int validate_peers(const struct yggr_config *c, char *why, size_t n)
{
    if (c->peer_count > 0 && c->peers == NULL) {
        return fail(why, n, "peer_count is %u but peers is NULL", c->peer_count);
    }
    if (c->peer_count >= YGGR_MAX_MEMBERS) {
        return fail(why, n, "too many peers (%u); at most %u members in all", c->peer_count,
                    YGGR_MAX_MEMBERS);
    }
    for (uint32_t i = 0; i < c->peer_count; i++) {
        if (c->peers[i].id == c->node_id) {
            return fail(why, n, "peers contain this node's own id %llu",
                        (unsigned long long)c->node_id);
        }
        if (c->peers[i].id == 0) {
            return fail(why, n, "peers[%u] has id 0; node ids must be non-zero", i);
        }
        if (c->transport_ops == NULL && !addr_valid(c->peers[i].addr)) {
            return fail(why, n, "peer %llu has an invalid address \"%s\"; expected host:port",
                        (unsigned long long)c->peers[i].id,
                        c->peers[i].addr != NULL ? c->peers[i].addr : "(null)");
        }
        for (uint32_t j = 0; j < i; j++) {
            if (c->peers[j].id == c->peers[i].id) {
                return fail(why, n, "peer id %llu appears twice",
                            (unsigned long long)c->peers[i].id);
            }
        }
    }
    return 0;
}

static int validate_sizes(const struct yggr_config *c, char *why, size_t n)
{
    if (c->snapshot_chunk_bytes == 0) {
        return fail(why, n, "snapshot_chunk_bytes must be at least 1");
    }
    if (c->max_pending_proposals == 0 || c->max_pending_proposals > (1u << 22)) {
        return fail(why, n, "max_pending_proposals (%u) must be between 1 and %u",
                    c->max_pending_proposals, 1u << 22);
    }
    if (c->max_pending_applies < 2 || c->max_pending_applies > (1u << 24)) {
        return fail(why, n, "max_pending_applies (%u) must be between 2 and %u",
                    c->max_pending_applies, 1u << 24);
    }
    if (c->max_pending_reads == 0 || c->max_pending_reads > (1u << 22)) {
        return fail(why, n, "max_pending_reads (%u) must be between 1 and %u",
                    c->max_pending_reads, 1u << 22);
    }
    if (c->max_batch_entries == 0) {
        return fail(why, n, "max_batch_entries must be at least 1");
    }
    if (c->max_command_bytes == 0 || c->max_command_bytes > (64u << 20)) {
        return fail(why, n, "max_command_bytes (%u) must be between 1 and %u",
                    c->max_command_bytes, 64u << 20);
    }
    uint32_t cache = c->log_cache_entries;
    if (cache < 64 || (cache & (cache - 1)) != 0) {
        return fail(why, n, "log_cache_entries (%u) must be a power of two >= 64", cache);
    }
    if (c->storage_ops == NULL && c->segment_bytes < (1u << 20)) {
        return fail(why, n, "segment_bytes (%llu) must be at least 1 MiB",
                    (unsigned long long)c->segment_bytes);
    }
    return 0;
}

static int validate_misc(const struct yggr_config *c, char *why, size_t n)
{
    if (c->lease_duration_ticks > 0) {
        uint32_t bound = c->election_timeout_min_ticks - c->heartbeat_interval_ticks;
        if (c->lease_duration_ticks >= bound) {
            return fail(why, n,
                        "lease_duration_ticks (%u) must be less than election_timeout_min_ticks"
                        " (%u) minus heartbeat_interval_ticks (%u)",
                        c->lease_duration_ticks, c->election_timeout_min_ticks,
                        c->heartbeat_interval_ticks);
        }
        if (!c->pre_vote || !c->check_quorum) {
            return fail(why, n, "lease reads (lease_duration_ticks %u) need pre_vote and "
                                "check_quorum on: without them a partitioned leader's lease "
                                "can overlap a new leader",
                        c->lease_duration_ticks);
        }
    }
    if (c->cluster_secret != NULL && c->cluster_secret_len < 16) {
        return fail(why, n, "cluster_secret is %u bytes; use at least 16",
                    c->cluster_secret_len);
    }
    const int cpus[4] = {c->cpu_driver, c->cpu_apply, c->cpu_network, c->cpu_disk};
    for (int i = 0; i < 4; i++) {
        if (cpus[i] < -1 || cpus[i] > 4095) {
            return fail(why, n, "cpu pin %d is out of range (-1 = not pinned)", cpus[i]);
        }
    }
    if (c->bootstrap < YGGR_BOOTSTRAP_NEW || c->bootstrap > YGGR_BOOTSTRAP_AUTO) {
        return fail(why, n, "bootstrap mode %d is not one of NEW, JOIN, RECOVER, AUTO",
                    (int)c->bootstrap);
    }
    if ((c->storage_ops == NULL) != (c->storage == NULL) ||
        (c->transport_ops == NULL) != (c->transport == NULL)) {
        return fail(why, n, "storage_ops/storage and transport_ops/transport must be set "
                            "together");
    }
    return 0;
}

int yggr_config_validate(const struct yggr_config *config, char *why, size_t why_size)
{
    if (config == NULL) {
        return fail(why, why_size, "config is NULL");
    }
    if (why != NULL && why_size > 0) {
        why[0] = '\0';
    }
    if (config->node_id == 0) {
        return fail(why, why_size, "node_id must be non-zero");
    }
    int rc = validate_timing(config, why, why_size);
    if (rc == 0) {
        rc = validate_peers(config, why, why_size);
    }
    if (rc == 0) {
        rc = validate_sizes(config, why, why_size);
    }
    if (rc == 0) {
        rc = validate_misc(config, why, why_size);
    }
    if (rc == 0 && config->storage_ops == NULL &&
        (config->data_dir == NULL || config->data_dir[0] == '\0')) {
        rc = fail(why, why_size, "data_dir is required (or pass storage_ops)");
    }
    if (rc == 0 && config->transport_ops == NULL && !addr_valid(config->listen_addr)) {
        rc = fail(why, why_size, "listen_addr \"%s\" is invalid; expected host:port",
                  config->listen_addr != NULL ? config->listen_addr : "(null)");
    }
    if (rc == 0 && config->sm.apply == NULL) {
        rc = fail(why, why_size, "sm.apply is required");
    }
    return rc;
}
