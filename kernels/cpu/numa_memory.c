#include "numa_memory.h"

#include <stdlib.h>

#ifdef CLEAVE_HAVE_NUMA
#include <numa.h>
#include <numaif.h>

static int placing = -1; /* decided once: 0 or 1 */

bool clv_numa_placing(void) {
    if (placing < 0) placing = numa_available() >= 0 && numa_num_configured_nodes() > 1;
    return placing == 1;
}

void *clv_numa_alloc(size_t bytes, const int *nodes, int n_nodes) {
    if (!bytes) bytes = 1;
    if (!clv_numa_placing()) return calloc(1, bytes);
    struct bitmask *mask = numa_allocate_nodemask();
    if (!mask) return NULL;
    int n_set = 0;
    for (int i = 0; i < n_nodes; i++) {
        if (nodes[i] >= 0 && nodes[i] <= numa_max_node() && !numa_bitmask_isbitset(mask, (unsigned)nodes[i])) {
            numa_bitmask_setbit(mask, (unsigned)nodes[i]);
            n_set++;
        }
    }
    /* numa_alloc_* memory is mmapped, so it comes zeroed. */
    void *p = n_set ? numa_alloc_interleaved_subset(bytes, mask) : numa_alloc_local(bytes);
    numa_free_nodemask(mask);
    return p;
}

void clv_numa_free(void *p, size_t bytes) {
    if (!p) return;
    if (!clv_numa_placing()) {
        free(p);
        return;
    }
    numa_free(p, bytes ? bytes : 1);
}

int clv_numa_node_of(const void *p) {
    if (numa_available() < 0) return -1;
    *(volatile const char *)p; /* a page has no node until it is touched */
    int node = -1;
    void *page = (void *)p;
    if (numa_move_pages(0, 1, &page, NULL, &node, 0) != 0 || node < 0) return -1;
    return node;
}

#else /* built without libnuma */

bool clv_numa_placing(void) { return false; }

void *clv_numa_alloc(size_t bytes, const int *nodes, int n_nodes) {
    (void)nodes, (void)n_nodes;
    return calloc(1, bytes ? bytes : 1);
}

void clv_numa_free(void *p, size_t bytes) {
    (void)bytes;
    free(p);
}

int clv_numa_node_of(const void *p) {
    (void)p;
    return -1;
}

#endif
