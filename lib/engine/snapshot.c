/* SPDX-License-Identifier: MIT */
/* Snapshots: local compaction, chunked InstallSnapshot both ways, and snapshot hints. */
/*
 * Design notes (Raft paper 7)
 *
 * Metadata only: snapshot bytes never pass through the engine. The host reads chunk
 * bytes from its snapshot when it sends (data == NULL in SEND actions) and writes the
 * received chunks (SNAPSHOT_CHUNK actions).
 *
 * Local: SNAPSHOT_TAKEN{last, size} for an applied index whose term is known records the
 * snapshot (configuration = the one in effect at that index, full membership, REFERENCE
 * 8.1 #1 and #2), moves the floor and emits COMPACT below last + 1 - trailing entries.
 *
 * Leader: a peer whose next entry is compacted goes to SNAPSHOT state. Chunks stream back
 * to back, up to snapshot_chunks_inflight ahead of the acknowledged offset (8.3 #28). A
 * response's next_offset acknowledges, even beyond what was sent (the follower holds those
 * bytes: skip ahead); a next_offset below (or equal to, with more in flight) the
 * acknowledged offset restarts from there — INCLUDING 0 (the follower lost its partial
 * transfer, 8.2 #17) — at most once per tick, since reordered and duplicated
 * acknowledgements say the same (sim F10). A transfer without any response for one minimum
 * election timeout resends from the acknowledged offset. done => match = snapshot index.
 * A snapshot may have term 0 (it covers only bootstrap entries).
 *
 *   follower chunk states:  idle ──offset 0──▶ receiving ──done chunk──▶ installing
 *                              ▲                  │ gap: reply expected       │
 *                              └──────────────────┴──── SNAPSHOT_PERSISTED ◀──┘
 *
 * Follower: a chunk at offset 0 (re)starts a transfer; a transfer is ONE leader's byte
 * stream in ONE term (another node's snapshot with the same id need not have the same
 * bytes, sim F6), so a chunk of another leader or term at offset > 0 asks for a restart; a
 * gap replies next_offset = expected; a chunk overlapping the bytes held is trimmed to the
 * new ones, so storage always gets contiguous chunks (sim F12); non-final chunks are
 * acknowledged at once. The final chunk is handed out with `done`; on SNAPSHOT_PERSISTED
 * the engine installs it (keeps the log tail only when it matches at the snapshot index),
 * emits APPLY_SNAPSHOT and only then answers done. Every non-rejection reply waits for the
 * durable term.
 *
 * Hints (REFERENCE 1.18.1 with 8.2 #22 fixed): a hint fires when applied reaches
 * max(floor, last hint) + snapshot_threshold_entries, so an ignored hint re-fires after a
 * further threshold's worth of applied entries; the max_log_entries guard fires while the
 * live log is above the limit, again every election_timeout_min_ticks until a snapshot.
 */
#include <string.h>

#include "engine_internal.h"

static bool same_id(struct yggr_log_id a, struct yggr_log_id b)
{
    return a.index == b.index && a.term == b.term;
}

void snapshot_taken(struct yggr_engine *e, struct yggr_log_id last, uint64_t size)
{
    const struct yggr_membership *cfg = config_at(&e->conf, last.index);
    if (last.index <= e->log.snap.index || last.index > e->applied ||
        !log_knows(&e->log, last.index) || log_term_at(&e->log, last.index) != last.term ||
        cfg == NULL) {
        return; /* stale, not applied yet, or unknown: ignored */
    }
    /* last.term may be 0: a snapshot of the bootstrap entries alone is a snapshot too. */
    e->snap.last = last;
    e->snap.size = size;
    e->snap.config = *cfg;
    e->has_snapshot = true;
    log_set_snapshot(&e->log, last);
    config_compact(&e->conf, last.index);
    uint64_t trailing = e->cfg.snapshot_trailing_entries;
    uint64_t below = last.index + 1 > trailing ? last.index + 1 - trailing : 1;
    log_compact(&e->log, below);
    e->act->flags |= YGGR_ACT_COMPACT;
    e->act->compact_below = below;
    if (e->durable < last.index) {
        e->durable = last.index; /* covered by the durable snapshot */
    }
    e->m.snapshots_taken++;
    e->hint_last = last.index;
    e->guard_fired = false;
    if (e->role == YGGR_ROLE_LEADER) {
        for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
            struct progress *p = &e->peers[s];
            if (p->id != 0 && p->state == YGGR_PROGRESS_SNAPSHOT) {
                progress_become_snapshot(p, last, e->tick); /* restart with the new one */
                snapshot_send(e, p);
            }
        }
    }
    YGGR_ASSERT(e->log.snap.index == last.index);
}

void snapshot_send(struct yggr_engine *e, struct progress *p)
{
    YGGR_ASSERT(p->state == YGGR_PROGRESS_SNAPSHOT);
    YGGR_ASSERT(e->has_snapshot);
    if (!same_id(p->snap_last, e->snap.last)) {
        progress_become_snapshot(p, e->snap.last, e->tick);
    }
    uint64_t chunk = e->cfg.snapshot_chunk_bytes;
    uint64_t window = chunk * e->cfg.snapshot_chunks_inflight;
    while (!p->snap_done_sent && p->step_msgs < PEER_MSGS_PER_STEP &&
           p->snap_sent - p->snap_acked < window) {
        uint64_t left = e->snap.size - p->snap_sent;
        uint64_t len = left < chunk ? left : chunk;
        struct yggr_msg *m = engine_msg(e, YGGR_MSG_SNAPSHOT_REQUEST, p->id);
        if (m == NULL) {
            return;
        }
        m->as.snapshot.leader_id = e->id;
        m->as.snapshot.last = e->snap.last;
        m->as.snapshot.offset = p->snap_sent;
        m->as.snapshot.leader_commit = e->commit;
        m->as.snapshot.done = len == left;
        m->as.snapshot.len = (uint32_t)len;
        m->as.snapshot.config = &e->snap.config;
        m->as.snapshot.round = e->cfg.reference_wire ? 0 : e->round;
        progress_sent_push(p, e->round);
        p->snap_sent += len;
        p->snap_done_sent = m->as.snapshot.done;
        p->step_msgs++;
        e->m.snapshots_sent++;
        e->m.append_entries_sent++;
    }
}

void snapshot_leader_tick(struct yggr_engine *e, struct progress *p)
{
    YGGR_ASSERT(p->state == YGGR_PROGRESS_SNAPSHOT);
    if (e->tick - p->stall_tick >= e->cfg.election_timeout_min_ticks) {
        p->snap_sent = p->snap_acked; /* nothing heard: resend from the acknowledged offset */
        p->snap_done_sent = false;
        p->stall_tick = e->tick;
        snapshot_send(e, p);
    }
}

static void on_done(struct yggr_engine *e, struct progress *p,
                    const struct yggr_msg_snapshot_response *r)
{
    if (r->last.index > e->commit) {
        e->m.messages_dropped++;
        return;
    }
    bool moved = progress_record_success(p, r->last.index, e->tick);
    if (p->state == YGGR_PROGRESS_SNAPSHOT) {
        if (p->match + 1 >= e->log.first) {
            progress_become_replicate(p, e->tick);
        } else if (same_id(r->last, p->snap_last)) {
            progress_become_snapshot(p, e->snap.last, e->tick); /* floor moved meanwhile */
        }
    }
    if (moved) {
        replication_maybe_commit(e);
        if (e->role != YGGR_ROLE_LEADER) {
            return;
        }
        transfer_on_progress(e, p);
    }
    replication_send(e, p);
}

static void on_chunk_ack(struct yggr_engine *e, struct progress *p,
                         const struct yggr_msg_snapshot_response *r)
{
    if (p->state != YGGR_PROGRESS_SNAPSHOT || !same_id(r->last, p->snap_last) ||
        r->next_offset > e->snap.size) {
        return;
    }
    p->stall_tick = e->tick;
    uint64_t next = r->next_offset;
    if (next > p->snap_acked) {
        p->snap_acked = next; /* it holds [0, next): nothing below is sent again */
        if (p->snap_sent < next) {
            p->snap_sent = next;
        }
    } else if ((next < p->snap_acked || p->snap_sent > next) && p->snap_rewind_tick != e->tick) {
        /* Restart from there: it lost its transfer (offset 0 included, REFERENCE 8.2 #17)
         * or a chunk in flight (a gap). At most once per tick: reordered and duplicated
         * acknowledgements say the same, and each restart resends the window. */
        p->snap_sent = next;
        p->snap_acked = next;
        p->snap_done_sent = false;
        p->snap_rewind_tick = e->tick;
    }
    snapshot_send(e, p);
}

void snapshot_receive_response(struct yggr_engine *e, const struct yggr_msg *msg)
{
    struct progress *p = engine_peer(e, msg->from);
    const struct yggr_msg_snapshot_response *r = &msg->as.snapshot_response;
    if (p == NULL) {
        e->m.messages_dropped++;
        return;
    }
    if (election_observe_term(e, msg->term) || msg->term < e->term ||
        e->role != YGGR_ROLE_LEADER) {
        return;
    }
    replication_heard(e, p, r->round);
    if (r->done) {
        on_done(e, p, r);
    } else {
        on_chunk_ack(e, p, r);
    }
    if (e->role == YGGR_ROLE_LEADER) {
        read_release(e);
    }
}

/* ------------------------------------------------------------------------------------
 * Follower
 * ---------------------------------------------------------------------------------- */

static void queue_reply(struct yggr_engine *e, uint64_t to, struct yggr_log_id last,
                        uint64_t offset, bool done)
{
    e->in.reply_pending = true;
    e->in.reply_to = to;
    e->in.reply_last = last;
    e->in.reply_offset = offset;
    e->in.reply_done = done;
    snapshot_flush_reply(e);
}

void snapshot_flush_reply(struct yggr_engine *e)
{
    if (!e->in.reply_pending || !engine_term_durable(e)) {
        return;
    }
    struct yggr_msg *m = engine_msg(e, YGGR_MSG_SNAPSHOT_RESPONSE, e->in.reply_to);
    if (m == NULL) {
        return;
    }
    e->in.reply_pending = false;
    m->as.snapshot_response.last = e->in.reply_last;
    m->as.snapshot_response.next_offset = e->in.reply_offset;
    m->as.snapshot_response.done = e->in.reply_done;
    m->as.snapshot_response.round = e->cfg.reference_wire ? 0 : e->in.round;
}


static bool request_valid(const struct yggr_msg *msg)
{
    const struct yggr_msg_snapshot_request *req = &msg->as.snapshot;
    const struct yggr_membership *c = req->config;
    if (req->leader_id != msg->from || req->last.index == 0 ||
        req->last.term > msg->term || (req->len > 0 && req->data == NULL) || c == NULL ||
        req->offset > UINT64_MAX - req->len) {
        return false;
    }
    return yggr_membership_valid(c);
}

/* Hand the chunk to storage; returns false when it is a gap or a duplicate (replied). */
static bool accept_chunk(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_snapshot_request *req = &msg->as.snapshot;
    /* A transfer is one leader's byte stream in one term: the same (index, term) taken by
     * another node is the same state but not necessarily the same bytes (sim F6). */
    if (!e->in.active || !same_id(e->in.last, req->last) || e->in.src_leader != msg->from ||
        e->in.src_term != msg->term) {
        if (req->offset != 0) {
            queue_reply(e, msg->from, req->last, 0, false); /* unknown transfer: restart */
            return false;
        }
        e->in.active = true;
        e->in.last = req->last;
        e->in.src_leader = msg->from;
        e->in.src_term = msg->term;
        e->in.leader_commit = 0;
    }
    if (req->offset == 0) {
        e->in.expected = 0;
        e->in.config = *req->config;
    }
    uint64_t end = req->offset + req->len;
    /* A gap, or nothing new: bytes held already (a done chunk ending exactly at what we
     * hold still carries news: the end of the snapshot). */
    if (req->offset > e->in.expected ||
        (e->in.expected > 0 && (end < e->in.expected || (end == e->in.expected && !req->done)))) {
        queue_reply(e, msg->from, req->last, e->in.expected, false);
        return false;
    }
    /* An overlapping chunk (a rewound stream, a host's short read before it) is trimmed to
     * the bytes past what we hold: storage takes contiguous chunks only. */
    uint64_t skip = e->in.expected - req->offset;
    YGGR_ASSERT(skip <= req->len);
    struct yggr_actions *act = e->act;
    act->flags |= YGGR_ACT_SNAPSHOT_CHUNK;
    act->snapshot_chunk.meta.last = req->last;
    act->snapshot_chunk.meta.size = req->done ? end : 0;
    act->snapshot_chunk.meta.config = e->in.config;
    act->snapshot_chunk.offset = e->in.expected;
    act->snapshot_chunk.data = skip < req->len ? req->data + skip : NULL;
    act->snapshot_chunk.buf = req->buf;
    act->snapshot_chunk.len = (uint32_t)(req->len - skip);
    act->snapshot_chunk.done = req->done;
    e->held_buf = yggr_buf_retain(req->buf);
    e->in.expected = end;
    YGGR_ASSERT(act->snapshot_chunk.offset + act->snapshot_chunk.len == end);
    return true;
}

void snapshot_receive_request(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_snapshot_request *req = &msg->as.snapshot;
    if (!request_valid(msg) || (msg->term == e->term && e->role == YGGR_ROLE_LEADER)) {
        e->m.messages_dropped++;
        return;
    }
    if (msg->term < e->term) {
        struct yggr_msg *m = engine_msg(e, YGGR_MSG_SNAPSHOT_RESPONSE, msg->from);
        if (m != NULL) {
            m->as.snapshot_response.last = req->last; /* rejection: our term tells it all */
        }
        return;
    }
    if (msg->term > e->term || e->role != YGGR_ROLE_FOLLOWER) {
        election_become_follower(e, msg->term);
    }
    election_accept_leader(e, msg->from);
    if (req->round > e->in.round || e->in.term != e->term) {
        e->in.round = req->round;
    }
    e->in.term = e->term;
    e->in.leader = msg->from;
    if (req->last.index <= e->log.snap.index) {
        queue_reply(e, msg->from, e->log.snap, 0, true); /* we already hold a newer one */
        return;
    }
    if (req->last.index <= e->commit) {
        if (req->last.index <= e->durable) {
            queue_reply(e, msg->from, req->last, 0, true);
        }
        return;
    }
    if (e->in.installing) {
        return; /* answered once the current install is durable */
    }
    if (accept_chunk(e, msg)) {
        if (req->leader_commit > e->in.leader_commit) {
            e->in.leader_commit = req->leader_commit;
        }
        if (req->done) {
            e->in.installing = true;
        } else {
            queue_reply(e, msg->from, req->last, e->in.expected, false);
        }
    }
}

static void install_log(struct yggr_engine *e, struct yggr_log_id s)
{
    bool keep = s.index <= e->log.last && log_term_at(&e->log, s.index) == s.term;
    if (keep) {
        log_set_snapshot(&e->log, s);
        log_compact(&e->log, s.index + 1);
        config_compact(&e->conf, s.index);
        e->conf.base = e->in.config;
    } else {
        log_reset(&e->log, s.index + 1, s.index, s);
        config_reset(&e->conf, &e->in.config, s.index);
        e->durable = s.index;
        e->ack.verified = e->ack.verified < s.index ? e->ack.verified : s.index;
        e->ack.sent = e->ack.sent < s.index ? e->ack.sent : s.index;
    }
    if (e->durable < s.index) {
        e->durable = s.index;
    }
    YGGR_ASSERT(e->log.snap.index == s.index);
}

void snapshot_persisted(struct yggr_engine *e, struct yggr_log_id last)
{
    if (!e->in.installing || !same_id(last, e->in.last)) {
        return;
    }
    e->in.installing = false;
    e->in.active = false;
    bool state_behind = last.index > e->applied;
    install_log(e, last);
    e->has_snapshot = true;
    e->snap.last = last;
    e->snap.size = e->in.expected;
    e->snap.config = e->in.config;
    e->removed = false;
    config_sync_peers(e);
    if (last.index > e->commit) {
        e->commit = last.index;
    }
    if (state_behind) {
        e->applied = last.index;
        e->act->flags |= YGGR_ACT_APPLY_SNAPSHOT;
        e->act->apply_snapshot = e->snap;
    }
    e->m.snapshots_installed++;
    e->hint_last = last.index;
    e->guard_fired = false;
    if (e->ack.term == e->term && e->ack.leader == e->in.leader && e->ack.verified < last.index) {
        e->ack.verified = last.index;
    }
    if (e->in.term == e->term && e->role == YGGR_ROLE_FOLLOWER) {
        queue_reply(e, e->in.leader, last, e->snap.size, true);
    }
    YGGR_ASSERT(e->applied <= e->commit);
}

void snapshot_hint(struct yggr_engine *e)
{
    uint64_t floor = e->log.snap.index;
    if (e->applied <= floor || e->applied <= log_bootstrap_end(&e->log)) {
        return; /* nothing new, or only bootstrap entries (a snapshot needs a real term) */
    }
    bool fire = false;
    uint64_t t = e->cfg.snapshot_threshold_entries;
    uint64_t base = e->hint_last > floor ? e->hint_last : floor;
    if (t > 0 && e->applied >= base + t) {
        fire = true;
    }
    uint64_t m = e->cfg.max_log_entries;
    if (m > 0 && e->log.last - floor > m &&
        (!e->guard_fired || e->tick - e->guard_tick >= e->cfg.election_timeout_min_ticks)) {
        fire = true;
        e->guard_fired = true;
        e->guard_tick = e->tick;
    }
    if (fire) {
        e->act->flags |= YGGR_ACT_SNAPSHOT_HINT;
        e->act->snapshot_hint = e->applied;
        e->hint_last = e->applied;
    }
}
