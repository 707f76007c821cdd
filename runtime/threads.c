/* SPDX-License-Identifier: MIT */
/* Thread naming and optional CPU pinning for the runtime's actors. */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "yggr_assert.h"

/* Pinning is honoured only when the machine has at least as many online CPUs as yggr has
 * threads per node (4); on smaller machines pinned actors would fight over cores. */
void threads_setup(const char *name, int cpu, struct yggr_node *node)
{
    YGGR_ASSERT(name != NULL);
    YGGR_ASSERT(strlen(name) <= 15);
    pthread_setname_np(pthread_self(), name);
    if (cpu < 0) {
        return;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 4) {
        if (node != NULL) {
            node_log(node, 1, "%s: not pinned to cpu %d: only %ld cpus online (need 4)", name,
                     cpu, online);
        }
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0 && node != NULL) {
        node_log(node, 1, "%s: cannot pin to cpu %d: %s", name, cpu, strerror(rc));
    }
}
