/* Memory for weights cleave copies into RAM (the sparse path's transposed
 * down rows, say), placed on the NUMA nodes of the threads that read them:
 * with libnuma and more than one node, pages are interleaved over the given
 * nodes (every thread reads every row, so no one node should hold them all);
 * otherwise, or with no nodes given, it is zeroed heap memory. */
#ifndef CLV_NUMA_MEMORY_H
#define CLV_NUMA_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

/* Whether allocations are placed (libnuma built in, the kernel supports it,
 * and the machine has more than one node). Fixed for the process. */
bool clv_numa_placing(void);

/* bytes of zeroed memory on `nodes` (OS node numbers; -1 entries and
 * duplicates are ignored), or NULL when out of memory. */
void *clv_numa_alloc(size_t bytes, const int *nodes, int n_nodes);

/* Frees what clv_numa_alloc returned (NULL allowed); bytes as allocated. */
void clv_numa_free(void *p, size_t bytes);

/* The NUMA node page `p` lies on (touching it first), or -1 when unknown. */
int clv_numa_node_of(const void *p);

#endif
