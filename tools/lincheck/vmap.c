/* SPDX-License-Identifier: MIT */
/* lincheck per-key value facts: for each value of one key, who wrote it, who read it and
 * when (used to prune the search and to explain violations). Open addressing on value ids. */
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

struct vinfo *vmap_get(struct vmap *m, uint32_t value)
{
    size_t i = (value * UINT64_C(0x9E3779B97F4A7C15)) >> 32 & (m->size - 1);
    while (m->slots[i].value != UINT32_MAX && m->slots[i].value != value) {
        i = (i + 1) & (m->size - 1);
    }
    if (m->slots[i].value == UINT32_MAX) {
        struct vinfo *v = &m->slots[i];
        memset(v, 0, sizeof(*v));
        v->value = value;
        v->min_write_invoke = UINT64_MAX;
        v->min_read_complete = UINT64_MAX;
    }
    return &m->slots[i];
}

static void vmap_add(struct vmap *m, const struct lc_op *op)
{
    struct vinfo *v = vmap_get(m, op->value);
    if (op->kind == LC_KIND_WRITE && op->result == LC_RESULT_FAIL) {
        v->fails++;
        v->a_fail = op;
    } else if (op->kind == LC_KIND_WRITE) {
        v->writes++;
        uint64_t c = op->result == LC_RESULT_OK ? op->complete_us : LC_TIME_INF;
        v->min_write_invoke = op->invoke_us < v->min_write_invoke ? op->invoke_us
                                                                  : v->min_write_invoke;
        if (v->last_write == NULL || c >= v->max_write_complete) {
            v->max_write_complete = c;
            v->last_write = op;
        }
    } else if (op->result == LC_RESULT_OK) {
        v->reads++;
        if (op->complete_us < v->min_read_complete) {
            v->min_read_complete = op->complete_us;
            v->first_read = op;
        }
        if (v->last_read == NULL || op->invoke_us > v->max_read_invoke) {
            v->max_read_invoke = op->invoke_us;
            v->last_read = op;
        }
    }
}

int vmap_build(struct vmap *m, const struct lc_op *all, size_t n)
{
    m->size = 16;
    while (m->size < 2 * n + 2) {
        m->size *= 2;
    }
    m->slots = malloc(m->size * sizeof(*m->slots));
    if (m->slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < m->size; i++) {
        m->slots[i].value = UINT32_MAX;
    }
    (void)vmap_get(m, LC_NIL);
    for (size_t i = 0; i < n; i++) {
        vmap_add(m, &all[i]);
    }
    return 0;
}


void vmap_free(struct vmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->size = 0;
}
