/* SPDX-License-Identifier: MIT */
/* Engine internals shared by the lib/engine modules: the state layout and cross-file calls. */
#ifndef YGGR_ENGINE_ENGINE_INTERNAL_H
#define YGGR_ENGINE_ENGINE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/engine.h"
#include "yggr/types.h"
#include "yggr_assert.h"

/* Peer slots: every member of the latest configuration except this node. A node that is
 * not in its own configuration (removed, joining) may see YGGR_MAX_MEMBERS others. */
#define ENGINE_MAX_PEERS YGGR_MAX_MEMBERS
/* Configuration entries remembered above the base (older ones are folded into it). */
#define CONFIG_HISTORY 16u
/* Send ticks remembered for the most recent rounds (lease start). Power of two. */
#define ROUND_TICKS 64u
/* Engine-owned buffers for the address carried by CONFIG entries the leader appends. */
#define ADDR_POOL 8u
#define ADDR_BYTES 256u
/* AppendEntries / snapshot chunks sent to one peer in one step, and in total. */
#define PEER_MSGS_PER_STEP 64u
#define MSGS_PER_STEP (ENGINE_MAX_PEERS * PEER_MSGS_PER_STEP + 2u * ENGINE_MAX_PEERS)

/* ------------------------------------------------------------------------------------
 * log.c: term runs + entry cache
 * ---------------------------------------------------------------------------------- */

struct log {
    uint64_t first;              /* first stored index (may be <= snap.index) */
    uint64_t last;               /* last index; >= snap.index */
    struct yggr_log_id snap;     /* the snapshot floor (0, 0 = none) */
    struct yggr_term_run *runs;  /* ring of runs covering [first, last] */
    uint32_t run_cap;
    uint32_t run_head;
    uint32_t run_count;
    struct yggr_entry *ring;     /* cached entries [cache_first, last] at index & mask */
    uint64_t ring_mask;
    uint64_t cache_first;        /* == last + 1 when the cache is empty */
};

int log_init(struct log *log, uint32_t run_cap, uint32_t ring_cap);
void log_deinit(struct log *log);
void log_reset(struct log *log, uint64_t first, uint64_t last, struct yggr_log_id snap);
void log_push_run(struct log *log, uint64_t term, uint64_t first_index);
uint64_t log_term_at(const struct log *log, uint64_t index);
uint64_t log_last_term(const struct log *log);
bool log_knows(const struct log *log, uint64_t index);
uint64_t log_bootstrap_end(const struct log *log);
bool log_is_cached(const struct log *log, uint64_t index);
const struct yggr_entry *log_get(const struct log *log, uint64_t index);
uint32_t log_cached_run(const struct log *log, uint64_t index, uint32_t max,
                        const struct yggr_entry **out);
void log_copy(const struct log *log, uint64_t index, uint32_t count, struct yggr_entry *dst);
uint64_t log_room(const struct log *log, uint64_t term, uint64_t evict_upto);
bool log_append(struct log *log, const struct yggr_entry *entry, uint64_t evict_upto);
void log_truncate(struct log *log, uint64_t from);
void log_compact(struct log *log, uint64_t below);
void log_set_snapshot(struct log *log, struct yggr_log_id snap);
void log_warm(struct log *log, const struct yggr_entry *entries, uint32_t count);
uint64_t log_term_first(const struct log *log, uint64_t index);
uint64_t log_term_last(const struct log *log, uint64_t term);
int log_check(const struct log *log, char *why, size_t why_size);

/* ------------------------------------------------------------------------------------
 * config.c: membership history
 * ---------------------------------------------------------------------------------- */

struct config_entry {
    uint64_t index;
    struct yggr_membership m;    /* the configuration after applying the entry at index */
};

struct config {
    struct yggr_membership base; /* in effect from base_index on */
    uint64_t base_index;
    struct config_entry hist[CONFIG_HISTORY];
    uint32_t count;
};

struct addr_slot {
    struct yggr_buf buf;
    _Atomic bool in_use;
    uint8_t data[ADDR_BYTES];
};

/* ------------------------------------------------------------------------------------
 * progress.c: per-peer replication state
 * ---------------------------------------------------------------------------------- */

struct inflight {
    uint64_t end;                /* last index carried */
    uint64_t bytes;
};

struct sent_req {
    uint64_t round;              /* the leader's round when the request went out */
};

struct progress {
    uint64_t id;                 /* 0 = free slot */
    bool voter;
    enum yggr_progress_state state;
    uint64_t match;
    uint64_t next;
    bool probe_sent;
    bool recent_active;          /* heard from since the last check-quorum */
    bool vote_granted;           /* candidate / pre-candidate bookkeeping */
    uint64_t heard_tick;
    uint64_t stall_tick;         /* last progress (match moved, state entered) */
    uint64_t acked_round;
    uint64_t success_round;      /* round of the last success that moved match */
    struct inflight *infl;       /* REPLICATE window (max_inflight_msgs) */
    uint32_t infl_head;
    uint32_t infl_count;
    uint64_t infl_bytes;
    struct sent_req *sent;       /* requests whose response is outstanding */
    uint32_t sent_cap;
    uint32_t sent_head;
    uint32_t sent_count;
    struct yggr_log_id snap_last;/* SNAPSHOT: which snapshot is streamed */
    uint64_t snap_sent;          /* next offset to send */
    uint64_t snap_acked;         /* offset the follower holds */
    uint64_t snap_rewind_tick;   /* last restart of the stream (at most one per tick) */
    bool snap_done_sent;
    uint32_t step_msgs;
};

void progress_reset(struct progress *p, uint64_t next, uint64_t tick);
void progress_become_probe(struct progress *p, uint64_t next, uint64_t tick);
void progress_become_replicate(struct progress *p, uint64_t tick);
void progress_become_snapshot(struct progress *p, struct yggr_log_id snap, uint64_t tick);
bool progress_window_full(const struct progress *p, const struct yggr_engine_config *cfg);
void progress_sent_data(struct progress *p, uint64_t end, uint64_t bytes, uint32_t cap);
void progress_free_upto(struct progress *p, uint64_t index, uint32_t cap);
bool progress_record_success(struct progress *p, uint64_t index, uint64_t tick);
void progress_sent_push(struct progress *p, uint64_t round);
bool progress_sent_pop(struct progress *p, struct sent_req *out);
void progress_sent_drop_upto(struct progress *p, uint64_t round);
uint64_t progress_quorum_value(uint64_t *values, uint32_t count);

/* ------------------------------------------------------------------------------------
 * The engine
 * ---------------------------------------------------------------------------------- */

struct pending_read {
    uint64_t id;
    uint64_t index;
    uint64_t round;
};

struct round_tick {
    uint64_t round;
    uint64_t tick;
};

struct yggr_engine {
    struct yggr_engine_config cfg;
    uint64_t id;
    bool recovered;

    /* Hard state; what storage reported durable; what was last handed out. */
    uint64_t term;
    uint64_t vote;
    uint64_t durable_term;
    uint64_t durable_vote;
    uint64_t emitted_term;
    uint64_t emitted_vote;

    enum yggr_role role;
    uint64_t leader_id;
    bool removed;                /* a leader told us we are not in its configuration */

    /* Time (ticks only). */
    uint64_t tick;
    uint64_t prng;
    uint32_t election_elapsed;
    uint32_t election_timeout;
    uint32_t heartbeat_elapsed;
    uint32_t quorum_elapsed;
    uint64_t leader_contact_tick;

    /* Log and indexes. */
    struct log log;
    uint64_t commit;
    uint64_t applied;
    uint64_t durable;
    struct config conf;
    bool has_snapshot;
    struct yggr_snapshot_meta snap;

    struct progress peers[ENGINE_MAX_PEERS];

    /* Candidate: RequestVotes wait for the durable (term, self). */
    bool votes_pending;
    bool campaign_transfer;
    /* Voter: a grant waits for the durable (grant_term, grant_to). */
    uint64_t grant_to;
    uint64_t grant_term;

    /* Follower: the coalesced AppendEntries success. */
    struct {
        uint64_t leader;
        uint64_t term;
        uint64_t verified;       /* highest index this term's leader proved */
        uint64_t round;          /* highest round received this term */
        uint64_t sent;           /* highest last_appended already claimed */
        bool pending;
    } ack;

    /* Leader. */
    uint64_t round;
    struct round_tick round_ticks[ROUND_TICKS];
    bool read_round_wanted;
    struct pending_read *reads;
    uint32_t read_head;
    uint32_t read_count;
    bool lease_revoked;          /* TimeoutNow sent this term: no lease reads */
    uint64_t transfer_target;
    uint64_t transfer_start;
    bool transfer_sent;

    /* Follower: incoming snapshot. */
    struct {
        bool active;             /* chunks being received */
        bool installing;         /* final chunk handed out, waiting SNAPSHOT_PERSISTED */
        bool reply_pending;      /* a reply waits for the durable term */
        uint64_t reply_to;
        struct yggr_log_id reply_last;
        uint64_t reply_offset;
        bool reply_done;
        uint64_t leader;
        uint64_t term;
        struct yggr_log_id last;
        uint64_t src_leader;     /* who streams `last`, in which term: two nodes' */
        uint64_t src_term;       /* snapshots at one id need not be the same bytes */
        uint64_t expected;       /* bytes held contiguously */
        uint64_t leader_commit;
        uint64_t round;
        struct yggr_membership config;
    } in;
    struct yggr_buf *held_buf;   /* chunk buf referenced by this step's actions */

    /* Snapshot hints. */
    uint64_t hint_last;
    uint64_t guard_tick;
    bool guard_fired;

    /* Step output (engine-owned scratch). */
    struct yggr_actions *act;
    struct yggr_msg *msgs;
    uint32_t msg_cap;
    struct yggr_entry *append_buf;
    struct yggr_entry *apply_buf;
    uint32_t step_cap;
    struct yggr_read_result *read_out;
    uint32_t read_out_cap;
    uint64_t append_from;        /* first index appended this step (0 = none) */
    uint64_t truncate_from;      /* truncation this step (0 = none) */
    uint32_t step_appended;

    struct addr_slot *addr_pool;

    /* Values at the start of the step, for yggr_engine_check. */
    uint64_t check_term;
    uint64_t check_commit;

    struct yggr_engine_metrics m;
};

/* engine.c */
struct yggr_msg *engine_msg(struct yggr_engine *e, enum yggr_msg_type type, uint64_t to);
void engine_result(struct yggr_engine *e, int err, uint64_t index, uint32_t count);
void engine_result_not_leader(struct yggr_engine *e);
void engine_read_result(struct yggr_engine *e, uint64_t id, enum yggr_read_status status,
                        uint64_t index);
bool engine_term_durable(const struct yggr_engine *e);
struct progress *engine_peer(struct yggr_engine *e, uint64_t id);
uint32_t engine_draw_timeout(struct yggr_engine *e);

/* config.c */
void config_reset(struct config *c, const struct yggr_membership *base, uint64_t base_index);
const struct yggr_membership *config_latest(const struct config *c);
uint64_t config_latest_index(const struct config *c);
const struct yggr_membership *config_at(const struct config *c, uint64_t index);
void config_push(struct config *c, uint64_t index, enum yggr_change_type type, uint64_t node);
void config_truncate(struct config *c, uint64_t from);
void config_compact(struct config *c, uint64_t upto);
int config_check(const struct config *c, char *why, size_t why_size);
bool config_self_voter(const struct yggr_engine *e);
bool config_is_voter(const struct yggr_engine *e, uint64_t id);
bool config_is_member(const struct yggr_engine *e, uint64_t id);
bool config_committed_member(const struct yggr_engine *e, uint64_t id);
uint32_t config_voter_count(const struct yggr_engine *e);
void config_sync_peers(struct yggr_engine *e);
void config_on_append(struct yggr_engine *e, const struct yggr_entry *entry);
void config_on_truncate(struct yggr_engine *e, uint64_t from);
void config_on_commit(struct yggr_engine *e);
void config_change(struct yggr_engine *e, const struct yggr_event *ev);
int config_pool_init(struct yggr_engine *e);
void config_pool_deinit(struct yggr_engine *e);
void config_bootstrap(struct yggr_engine *e, const struct yggr_membership *base,
                      const struct yggr_entry *configs, uint32_t config_count);
void config_bootstrap_entries(const struct yggr_membership *base, uint64_t from, uint64_t to,
                              struct yggr_entry *dst);

/* election.c */
void election_reset_timer(struct yggr_engine *e);
void election_tick(struct yggr_engine *e);
void election_campaign(struct yggr_engine *e, bool transfer);
void election_become_follower(struct yggr_engine *e, uint64_t term);
void election_receive_vote_request(struct yggr_engine *e, const struct yggr_msg *msg);
void election_receive_vote_response(struct yggr_engine *e, const struct yggr_msg *msg);
void election_hard_state_persisted(struct yggr_engine *e, uint64_t term, uint64_t vote);
void election_check_quorum(struct yggr_engine *e);
bool election_leader_recent(const struct yggr_engine *e);
bool election_can_campaign(const struct yggr_engine *e);
bool election_observe_term(struct yggr_engine *e, uint64_t term);
void election_accept_leader(struct yggr_engine *e, uint64_t leader);

/* replication.c */
void replication_propose(struct yggr_engine *e, const struct yggr_entry *entries,
                         uint32_t count);
bool replication_append_local(struct yggr_engine *e, const struct yggr_entry *entry);
bool replication_append_entry(struct yggr_engine *e, const struct yggr_entry *entry,
                              uint64_t evict_upto);
void replication_commit_bootstrap(struct yggr_engine *e);
void replication_receive_append(struct yggr_engine *e, const struct yggr_msg *msg);
void replication_receive_append_response(struct yggr_engine *e, const struct yggr_msg *msg);
void replication_log_persisted(struct yggr_engine *e, struct yggr_log_id id);
void replication_send(struct yggr_engine *e, struct progress *p);
void replication_send_all(struct yggr_engine *e);
void replication_heartbeat(struct yggr_engine *e);
void replication_leader_tick(struct yggr_engine *e);
void replication_maybe_commit(struct yggr_engine *e);
void replication_advance_commit(struct yggr_engine *e, uint64_t commit);
void replication_apply(struct yggr_engine *e);
void replication_flush_ack(struct yggr_engine *e);
void replication_become_leader(struct yggr_engine *e);
/* A response of the current term from p: mark it active, settle its round (see .c). */
void replication_heard(struct yggr_engine *e, struct progress *p, uint64_t round);

/* read.c */
void read_request(struct yggr_engine *e, uint64_t id);
void read_release(struct yggr_engine *e);
void read_fail_all(struct yggr_engine *e);
uint64_t read_round_bump(struct yggr_engine *e);
uint64_t read_majority_round(const struct yggr_engine *e);

/* transfer.c */
void transfer_request(struct yggr_engine *e, uint64_t target);
void transfer_on_progress(struct yggr_engine *e, struct progress *p);
void transfer_tick(struct yggr_engine *e);
void transfer_end(struct yggr_engine *e, bool completed);
void transfer_receive_timeout_now(struct yggr_engine *e, const struct yggr_msg *msg);

/* snapshot.c */
void snapshot_taken(struct yggr_engine *e, struct yggr_log_id last, uint64_t size);
void snapshot_persisted(struct yggr_engine *e, struct yggr_log_id last);
void snapshot_send(struct yggr_engine *e, struct progress *p);
void snapshot_receive_request(struct yggr_engine *e, const struct yggr_msg *msg);
void snapshot_receive_response(struct yggr_engine *e, const struct yggr_msg *msg);
void snapshot_hint(struct yggr_engine *e);
void snapshot_flush_reply(struct yggr_engine *e);
void snapshot_leader_tick(struct yggr_engine *e, struct progress *p);

#endif /* YGGR_ENGINE_ENGINE_INTERNAL_H */
