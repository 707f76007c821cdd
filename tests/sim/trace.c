/* SPDX-License-Identifier: MIT */
/* The simulator trace: a ring of compact binary records, formatted only when printed. */

/*
 * Design notes
 * - A run records ~10 records per step; formatting each one would dominate the run
 *   time, so records are fixed-size binary (64 bytes) in a ring of the last TRACE_RING,
 *   and text is produced only for a failure report or when a trace stream is attached.
 * - Every record is folded into `hash` (the replay fingerprint): two runs with the same
 *   options must produce the same hash, record for record.
 * - Lines read like a protocol transcript:
 *     t=1532 n2 RECV AE from n1 term=4 prev=(17,3) n=3 commit=16
 */
#include <inttypes.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

void trace_init(struct trace *t, FILE *out)
{
    YGGR_ASSERT(t != NULL);
    memset(t, 0, sizeof(*t));
    t->out = out;
}

void trace_add(struct trace *t, const struct trace_rec *r)
{
    YGGR_ASSERT(r->kind >= TR_TICK && r->kind <= TR_NOTE);
    t->ring[t->count % TRACE_RING] = *r;
    t->count++;
    uint64_t h = rng_mix(t->hash, r->step);
    h = rng_mix(h, ((uint64_t)r->kind << 48) | ((uint64_t)r->node << 40) |
                       ((uint64_t)r->peer << 32) | r->x);
    for (int i = 0; i < 6; i++) {
        h = rng_mix(h, r->a[i]);
    }
    t->hash = h;
    if (t->out != NULL) {
        char line[256];
        trace_format(r, line, sizeof(line));
        fprintf(t->out, "%s\n", line);
    }
}

void trace_msg(struct trace *t, uint64_t step, enum trace_kind kind, uint64_t node,
               const struct yggr_msg *m, uint64_t extra)
{
    struct trace_rec r = {.step = step, .kind = (uint16_t)kind, .node = (uint8_t)node};
    r.peer = (uint8_t)(node == m->from ? m->to : m->from);
    r.x = (uint32_t)m->type | (uint32_t)(extra << 8) | (node == m->to ? 1u << 16 : 0u);
    r.a[0] = m->term;
    switch (m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        r.a[1] = m->as.vote_request.last.index;
        r.a[2] = m->as.vote_request.last.term;
        r.a[3] = m->as.vote_request.transfer;
        break;
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        r.a[1] = m->as.vote_response.granted;
        r.a[2] = m->as.vote_response.removed;
        break;
    case YGGR_MSG_APPEND_REQUEST:
        r.a[1] = m->as.append.prev.index;
        r.a[2] = m->as.append.prev.term;
        r.a[3] = m->as.append.entry_count;
        r.a[4] = m->as.append.leader_commit;
        r.a[5] = m->as.append.round;
        break;
    case YGGR_MSG_APPEND_RESPONSE:
        r.a[1] = m->as.append_response.success;
        r.a[2] = m->as.append_response.last_appended;
        r.a[3] = m->as.append_response.hint;
        r.a[4] = m->as.append_response.conflict_term;
        r.a[5] = m->as.append_response.round;
        break;
    case YGGR_MSG_SNAPSHOT_REQUEST:
        r.a[1] = m->as.snapshot.last.index;
        r.a[2] = m->as.snapshot.last.term;
        r.a[3] = m->as.snapshot.offset;
        r.a[4] = m->as.snapshot.len;
        r.a[5] = m->as.snapshot.done;
        break;
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        r.a[1] = m->as.snapshot_response.last.index;
        r.a[2] = m->as.snapshot_response.last.term;
        r.a[3] = m->as.snapshot_response.next_offset;
        r.a[4] = m->as.snapshot_response.done;
        break;
    case YGGR_MSG_TIMEOUT_NOW:
        break;
    }
    trace_add(t, &r);
}

static const char *msg_name(uint32_t type)
{
    switch ((enum yggr_msg_type)type) {
    case YGGR_MSG_VOTE_REQUEST: return "RV";
    case YGGR_MSG_VOTE_RESPONSE: return "RV-RESP";
    case YGGR_MSG_APPEND_REQUEST: return "AE";
    case YGGR_MSG_APPEND_RESPONSE: return "AE-RESP";
    case YGGR_MSG_SNAPSHOT_REQUEST: return "IS";
    case YGGR_MSG_SNAPSHOT_RESPONSE: return "IS-RESP";
    case YGGR_MSG_TIMEOUT_NOW: return "TIMEOUT-NOW";
    case YGGR_MSG_PRE_VOTE_REQUEST: return "PV";
    case YGGR_MSG_PRE_VOTE_RESPONSE: return "PV-RESP";
    }
    return "?";
}

static const char *kind_name(uint16_t kind)
{
    static const char *names[] = {
        [TR_TICK] = "TICK",         [TR_RECV] = "RECV",       [TR_SEND] = "SEND",
        [TR_DROP] = "DROP",         [TR_LOST] = "LOST",       [TR_DUP] = "DUP",
        [TR_DELAY] = "DELAY",       [TR_PROPOSE] = "PROPOSE", [TR_CHANGE] = "CHANGE",
        [TR_TRANSFER] = "TRANSFER", [TR_READ] = "READ",       [TR_RESULT] = "RESULT",
        [TR_READ_DONE] = "READ-DONE", [TR_FLUSH] = "FLUSH",   [TR_CRASH] = "CRASH",
        [TR_RESTART] = "RESTART",   [TR_PARTITION] = "PARTITION", [TR_HEAL] = "HEAL",
        [TR_ROLE] = "ROLE",         [TR_COMMIT] = "COMMIT",   [TR_APPLY] = "APPLY",
        [TR_APPEND] = "APPEND",     [TR_HARD] = "HARDSTATE",  [TR_SNAPSHOT] = "SNAPSHOT",
        [TR_INSTALL] = "INSTALL",   [TR_COMPACT] = "COMPACT", [TR_ACK] = "ACK",        [TR_CONFIG] = "CONFIG-ENTRY",
        [TR_GARBAGE] = "RECV-INVALID",
        [TR_NOTE] = "NOTE",
    };
    return kind <= TR_NOTE && names[kind] != NULL ? names[kind] : "?";
}

#define U(v) ((unsigned long long)(v))

static int format_msg(const struct trace_rec *r, char *buf, size_t size)
{
    const uint64_t *a = r->a;
    const char *dir = (r->x >> 16) & 1 ? "from" : "to";
    int n = snprintf(buf, size, "%s %s n%u term=%llu", msg_name(r->x & 0xff), dir, r->peer,
                     U(a[0]));
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used >= size) {
        return n;
    }
    buf += used;
    size -= used;
    switch ((enum yggr_msg_type)(r->x & 0xff)) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        return snprintf(buf, size, " last=(%llu,%llu)%s", U(a[1]), U(a[2]),
                        a[3] ? " transfer" : "");
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        return snprintf(buf, size, " %s%s", a[1] ? "granted" : "denied",
                        a[2] ? " removed" : "");
    case YGGR_MSG_APPEND_REQUEST:
        return snprintf(buf, size, " prev=(%llu,%llu) n=%llu commit=%llu round=%llu", U(a[1]),
                        U(a[2]), U(a[3]), U(a[4]), U(a[5]));
    case YGGR_MSG_APPEND_RESPONSE:
        return snprintf(buf, size, " %s last=%llu hint=%llu conflict_term=%llu round=%llu",
                        a[1] ? "ok" : "reject", U(a[2]), U(a[3]), U(a[4]), U(a[5]));
    case YGGR_MSG_SNAPSHOT_REQUEST:
        return snprintf(buf, size, " last=(%llu,%llu) offset=%llu len=%llu%s", U(a[1]),
                        U(a[2]), U(a[3]), U(a[4]), a[5] ? " done" : "");
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        return snprintf(buf, size, " last=(%llu,%llu) next=%llu%s", U(a[1]), U(a[2]),
                        U(a[3]), a[4] ? " done" : "");
    case YGGR_MSG_TIMEOUT_NOW:
        return 0;
    }
    return 0;
}

static const char *lost_reason(uint32_t why)
{
    switch (why) {
    case 1: return " (partition)";
    case 2: return " (target down)";
    case 3: return " (no such node)";
    case 4: return " (storage no longer has it)";
    default: return "";
    }
}

static void format_event(const struct trace_rec *r, char *buf, size_t size)
{
    const uint64_t *a = r->a;
    switch ((enum trace_kind)r->kind) {
    case TR_TICK: snprintf(buf, size, "clock=%llu", U(a[0])); return;
    case TR_PROPOSE:
        snprintf(buf, size, "%llu cmds -> err=%lld index=%llu term=%llu", U(a[0]),
                 (long long)(int64_t)a[1], U(a[2]), U(a[3]));
        return;
    case TR_CHANGE:
        snprintf(buf, size, "%s n%u -> err=%lld index=%llu",
                 a[0] == 1 ? "add-voter" : a[0] == 2 ? "remove-voter" :
                 a[0] == 3 ? "add-learner" : "promote-learner",
                 r->peer, (long long)(int64_t)a[1], U(a[2]));
        return;
    case TR_TRANSFER: snprintf(buf, size, "to n%u -> err=%lld", r->peer, (long long)(int64_t)a[1]);
        return;
    case TR_READ: snprintf(buf, size, "id=%llu bound=%llu -> err=%lld", U(a[0]), U(a[1]),
                           (long long)(int64_t)a[2]);
        return;
    case TR_READ_DONE: snprintf(buf, size, "id=%llu status=%llu index=%llu", U(a[0]), U(a[1]),
                                U(a[2]));
        return;
    case TR_FLUSH: snprintf(buf, size, "%llu writes durable, %llu pending", U(a[0]), U(a[1]));
        return;
    case TR_CRASH:
        snprintf(buf, size, "%llu pending writes: %llu reached disk, torn=%s%llu", U(a[0]),
                 U(a[1]), a[2] ? "yes entries=" : "no ", U(a[2] ? a[2] - 1 : 0));
        return;
    case TR_RESTART:
        snprintf(buf, size, "term=%llu vote=%llu log=[%llu,%llu] snapshot=%llu", U(a[0]),
                 U(a[1]), U(a[2]), U(a[3]), U(a[4]));
        return;
    case TR_PARTITION:
        snprintf(buf, size, "%s A=0x%llx B=0x%llx",
                 r->x == 1 ? "symmetric" : r->x == 2 ? "one-way A->B" : "isolate leader",
                 U(a[0]), U(a[1]));
        return;
    case TR_ROLE: snprintf(buf, size, "%s term=%llu leader=n%llu",
                           yggr_role_name((enum yggr_role)r->x), U(a[0]), U(a[1]));
        return;
    case TR_COMMIT: snprintf(buf, size, "%llu -> %llu", U(a[0]), U(a[1])); return;
    case TR_APPLY: snprintf(buf, size, "[%llu,%llu]", U(a[0]), U(a[1])); return;
    case TR_APPEND:
        snprintf(buf, size, "truncate_from=%llu first=%llu n=%llu term=%llu", U(a[0]), U(a[1]),
                 U(a[2]), U(a[3]));
        return;
    case TR_HARD: snprintf(buf, size, "term=%llu vote=%llu", U(a[0]), U(a[1])); return;
    case TR_SNAPSHOT: case TR_INSTALL:
        snprintf(buf, size, "last=(%llu,%llu) size=%llu", U(a[0]), U(a[1]), U(a[2]));
        return;
    case TR_COMPACT: snprintf(buf, size, "below=%llu", U(a[0])); return;
    case TR_ACK: snprintf(buf, size, "(%llu,%llu) answered to the client", U(a[0]), U(a[1]));
        return;
    case TR_CONFIG:
        snprintf(buf, size, "(%llu,%llu) %s n%u", U(a[0]), U(a[1]),
                 a[2] == 1 ? "add-voter" : a[2] == 2 ? "remove-voter" :
                 a[2] == 3 ? "add-learner" : "promote-learner", r->peer);
        return;
    case TR_HEAL: buf[0] = '\0'; return;
    case TR_GARBAGE: return; /* formatted as a message */
    case TR_RESULT: case TR_NOTE:
    case TR_RECV: case TR_SEND: case TR_DROP: case TR_LOST: case TR_DUP: case TR_DELAY:
        snprintf(buf, size, "%llu %llu", U(a[0]), U(a[1]));
        return;
    }
    YGGR_UNREACHABLE();
}

void trace_format(const struct trace_rec *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "t=%llu ", U(r->step));
    if (r->node != 0) {
        n += snprintf(buf + n, size - (size_t)n, "n%u ", r->node);
    }
    n += snprintf(buf + n, size - (size_t)n, "%s ", kind_name(r->kind));
    if ((size_t)n >= size) {
        return;
    }
    bool msg = r->kind == TR_RECV || r->kind == TR_SEND || r->kind == TR_DROP ||
               r->kind == TR_LOST || r->kind == TR_DUP || r->kind == TR_DELAY ||
               r->kind == TR_GARBAGE;
    if (!msg) {
        format_event(r, buf + n, size - (size_t)n);
        return;
    }
    int m = format_msg(r, buf + n, size - (size_t)n);
    if (r->kind == TR_LOST && m >= 0 && (size_t)(n + m) < size) {
        snprintf(buf + n + m, size - (size_t)(n + m), "%s", lost_reason((r->x >> 8) & 0xff));
    }
}

void trace_dump(const struct trace *t, FILE *out, uint32_t max_records)
{
    uint64_t n = t->count < TRACE_RING ? t->count : TRACE_RING;
    if (n > max_records) {
        n = max_records;
    }
    char line[256];
    for (uint64_t i = t->count - n; i < t->count; i++) {
        trace_format(&t->ring[i % TRACE_RING], line, sizeof(line));
        fprintf(out, "  %s\n", line);
    }
}
