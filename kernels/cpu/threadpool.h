/* A persistent CPU thread pool for the decode loop.
 *
 * A decode step calls clv_threadpool_run() hundreds of times per token (one
 * call per matmul or per layer piece), so a call must cost microseconds, not
 * a thread start: the workers live as long as the pool, spin briefly on a
 * generation counter after each job and only then sleep (futex on Linux).
 * The caller takes part as thread 0, so a pool of n threads starts n - 1
 * workers.
 *
 * With pin = true (and hwloc present at build time) worker i is bound to one
 * PU of a distinct physical core: first one PU of every core, then the
 * hyperthread siblings, then round again. The calling thread is bound to
 * thread 0's PU for the life of the pool and its old binding is restored by
 * clv_threadpool_free (when freed from the same thread). Without hwloc the
 * pool runs unpinned.
 *
 * Not reentrant: one clv_threadpool_run at a time, never from inside fn. */
#ifndef CLV_THREADPOOL_H
#define CLV_THREADPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "status.h"

typedef struct clv_threadpool clv_threadpool;

typedef struct clv_threadpool_params {
    int n_threads; /* 0: number of physical cores available to the process */
    bool pin;      /* bind threads to cores (needs hwloc; ignored without) */
    int spin_us;   /* how long an idle worker spins before it sleeps; -1: default.
                      Forced to 0 when there are more threads than CPUs. */
} clv_threadpool_params;

clv_threadpool_params clv_threadpool_default_params(void);

/* Physical cores this process may run on (hwloc), or the online CPUs when
 * hwloc is absent. Always >= 1. */
int clv_cpu_physical_cores(void);

/* CLV_ERR_ARG for n_threads < 0 or > CLV_THREADPOOL_MAX_THREADS,
 * CLV_ERR_NOMEM / CLV_ERR_IO when memory or threads cannot be had. */
#define CLV_THREADPOOL_MAX_THREADS 1024
clv_status clv_threadpool_create(const clv_threadpool_params *params, clv_threadpool **out);
void clv_threadpool_free(clv_threadpool *pool); /* accepts NULL */

int clv_threadpool_n_threads(const clv_threadpool *pool);

/* Whether the threads were actually bound (pin requested and hwloc present
 * and binding succeeded for every thread). */
bool clv_threadpool_pinned(const clv_threadpool *pool);

/* NUMA node (OS index, as libnuma counts) of thread ith's core, or -1 when
 * the thread is not pinned or the node is unknown. */
int clv_threadpool_numa_node(const clv_threadpool *pool, int ith);

typedef void (*clv_threadpool_fn)(void *ctx, int ith, int nth);

/* Runs fn(ctx, ith, nth) once on every thread of the pool, ith in [0, nth),
 * the caller being ith 0, and returns when all have returned. Everything the
 * threads wrote is visible to the caller afterwards, and everything the
 * caller wrote before the call is visible to fn. */
void clv_threadpool_run(clv_threadpool *pool, clv_threadpool_fn fn, void *ctx);

/* Static split of [0, n) for thread ith of nth: whole chunks of `chunk`
 * items (a cache-line or block multiple), spread so that chunk counts differ
 * by at most one between threads. The last range ends at n. Empty ranges
 * (begin == end) when there are more threads than chunks. */
void clv_threadpool_split(int64_t n, int64_t chunk, int ith, int nth, int64_t *begin,
                          int64_t *end);

/* Dynamic split for uneven work: threads take the next chunk with one atomic
 * add until [0, n) is used up. The caller initialises it before
 * clv_threadpool_run (the run publishes it to the workers). */
typedef struct clv_work_counter {
    _Alignas(64) _Atomic int64_t next;
    int64_t n;
    int64_t chunk;
} clv_work_counter;

void clv_work_counter_init(clv_work_counter *c, int64_t n, int64_t chunk);

/* The next [begin, end), or false when none is left. */
static inline bool clv_work_counter_next(clv_work_counter *c, int64_t *begin, int64_t *end) {
    int64_t b = atomic_fetch_add_explicit(&c->next, c->chunk, memory_order_relaxed);
    if (b >= c->n) return false;
    *begin = b;
    *end = b + c->chunk < c->n ? b + c->chunk : c->n;
    return true;
}

#endif
