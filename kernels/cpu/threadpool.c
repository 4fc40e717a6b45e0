#include "threadpool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#ifdef CLEAVE_HAVE_HWLOC
#include <hwloc.h>
#endif

#define CACHE_LINE 64
#define DEFAULT_SPIN_US 100
/* Spin without yielding this long; past it a waiting thread yields between
 * looks, so that a thread it waits for on the same CPU (the scheduler likes
 * to wake threads where their waker runs) gets to run at once. */
#define PURE_SPIN_NS 2000

/* ---- waiting ------------------------------------------------------------- */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct clv_threadpool;
static void sleep_while_equal(struct clv_threadpool *p, _Atomic uint32_t *word, uint32_t value);
static void wake_all(struct clv_threadpool *p, _Atomic uint32_t *word);

/* ---- the pool ------------------------------------------------------------ */

typedef struct worker {
    _Alignas(CACHE_LINE) clv_threadpool *pool;
    pthread_t thread;
    int ith;
} worker;

struct clv_threadpool {
    /* Written by the caller once per run, read by every worker: one line. */
    _Alignas(CACHE_LINE) _Atomic uint32_t generation;
    _Atomic bool stop;
    clv_threadpool_fn fn;
    void *ctx;
    int n_threads;
    uint64_t spin_ns;

    /* Written by workers as they finish; the caller waits on it. */
    _Alignas(CACHE_LINE) _Atomic int pending;

    /* Workers that went to sleep; the caller wakes them only when > 0. */
    _Alignas(CACHE_LINE) _Atomic int n_sleeping;
    _Atomic int n_ready;
    _Atomic bool busy;

    worker *workers;  /* n_threads - 1 of them; worker i runs as ith i + 1 */
    int *pu;          /* per ith: OS index of the PU it is bound to, or -1 */
    int *numa_node;   /* per ith: NUMA node of that PU, or -1 */
    bool pinned;
    _Atomic int n_bind_failed;

#ifdef CLEAVE_HAVE_HWLOC
    hwloc_cpuset_t caller_old_binding; /* restored at free; NULL if unchanged */
    pthread_t creator;
#endif
#if !defined(__linux__)
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;
#endif
};

#if defined(__linux__)
static void sleep_while_equal(clv_threadpool *p, _Atomic uint32_t *word, uint32_t value) {
    (void)p;
    /* The kernel re-checks *word == value atomically, so a wake between our
     * check and the call is not lost; spurious returns are handled by the
     * caller's loop. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void wake_all(clv_threadpool *p, _Atomic uint32_t *word) {
    (void)p;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void sleep_while_equal(clv_threadpool *p, _Atomic uint32_t *word, uint32_t value) {
    pthread_mutex_lock(&p->sleep_lock);
    while (atomic_load(word) == value) pthread_cond_wait(&p->sleep_cond, &p->sleep_lock);
    pthread_mutex_unlock(&p->sleep_lock);
}

static void wake_all(clv_threadpool *p, _Atomic uint32_t *word) {
    (void)word;
    pthread_mutex_lock(&p->sleep_lock);
    pthread_cond_broadcast(&p->sleep_cond);
    pthread_mutex_unlock(&p->sleep_lock);
}
#endif

/* ---- topology ------------------------------------------------------------ */

static int online_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

#ifdef CLEAVE_HAVE_HWLOC
/* Loaded once: reading the topology costs milliseconds, and hwloc allows
 * concurrent read-only use (binding included). */
static hwloc_topology_t topology;
static bool topology_ok;
static pthread_once_t topology_once = PTHREAD_ONCE_INIT;

static void topology_load(void) {
    if (hwloc_topology_init(&topology) != 0) return;
    if (hwloc_topology_load(topology) != 0) {
        hwloc_topology_destroy(topology);
        return;
    }
    topology_ok = true;
}

static hwloc_topology_t get_topology(void) {
    pthread_once(&topology_once, topology_load);
    return topology_ok ? topology : NULL;
}

/* PUs this process may use, ordered one per physical core first, then the
 * second PU of every core, and so on. Returns the count (0 on failure);
 * *n_cores gets the number of cores with at least one usable PU. */
static int ordered_pus(hwloc_topology_t topo, hwloc_obj_t *out, int cap, int *n_cores) {
    hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
    if (!allowed) return 0;
    if (hwloc_get_cpubind(topo, allowed, HWLOC_CPUBIND_PROCESS) != 0 ||
        hwloc_bitmap_iszero(allowed))
        hwloc_bitmap_copy(allowed, hwloc_topology_get_allowed_cpuset(topo));

    hwloc_obj_type_t core_type = HWLOC_OBJ_CORE;
    int n_core_objs = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (n_core_objs <= 0) { /* no core level: every PU is its own core */
        core_type = HWLOC_OBJ_PU;
        n_core_objs = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    }
    int count = 0, cores = 0;
    for (int round = 0;; round++) {
        int added = 0;
        for (int c = 0; c < n_core_objs; c++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(topo, core_type, (unsigned)c);
            if (!core || !core->cpuset) continue;
            /* the round-th usable PU inside this core */
            int seen = 0;
            hwloc_obj_t pu = NULL;
            while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(topo, core->cpuset,
                                                                  HWLOC_OBJ_PU, pu))) {
                if (!hwloc_bitmap_isset(allowed, pu->os_index)) continue;
                if (seen++ == round) break;
            }
            if (!pu) continue;
            if (round == 0) cores++;
            if (count < cap) out[count] = pu;
            count++;
            added++;
        }
        if (!added) break;
    }
    hwloc_bitmap_free(allowed);
    *n_cores = cores;
    return count < cap ? count : cap;
}

static int pu_numa_node(hwloc_obj_t pu) {
    if (!pu || !pu->nodeset || hwloc_bitmap_iszero(pu->nodeset)) return -1;
    return hwloc_bitmap_first(pu->nodeset);
}
#endif

int clv_cpu_physical_cores(void) {
#ifdef CLEAVE_HAVE_HWLOC
    hwloc_topology_t topo = get_topology();
    if (topo) {
        int n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
        if (n_pus > 0) {
            hwloc_obj_t *pus = malloc(sizeof *pus * (size_t)n_pus);
            if (pus) {
                int cores = 0;
                int got = ordered_pus(topo, pus, n_pus, &cores);
                free(pus);
                if (got > 0 && cores > 0) return cores;
            }
        }
    }
#endif
    return online_cpus();
}

/* ---- workers ------------------------------------------------------------- */

/* Waits until the generation moves past `seen`: spins for spin_ns, then sleeps. */
static uint32_t wait_generation(clv_threadpool *p, uint32_t seen) {
    uint32_t g;
    if (p->spin_ns > 0) {
        uint64_t start = now_ns();
        for (unsigned i = 1;; i++) {
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
            if (g != seen) return g;
            cpu_relax();
            if ((i & 63) == 0) {
                uint64_t waited = now_ns() - start;
                if (waited > p->spin_ns) break;
                if (waited > PURE_SPIN_NS) sched_yield();
            }
        }
    }
    /* Announce the sleep before the last look at the generation; run() bumps
     * the generation before it looks at n_sleeping. With both seq_cst one of
     * the two sees the other, so a wake-up is never missed. */
    atomic_fetch_add_explicit(&p->n_sleeping, 1, memory_order_seq_cst);
    while ((g = atomic_load_explicit(&p->generation, memory_order_seq_cst)) == seen)
        sleep_while_equal(p, &p->generation, seen);
    atomic_fetch_sub_explicit(&p->n_sleeping, 1, memory_order_relaxed);
    return g;
}

#ifdef CLEAVE_HAVE_HWLOC
static bool bind_current_thread(int pu_os_index) {
    hwloc_topology_t topo = get_topology();
    if (!topo || pu_os_index < 0) return false;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) return false;
    hwloc_bitmap_only(set, (unsigned)pu_os_index);
    bool ok = hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD) == 0;
    hwloc_bitmap_free(set);
    return ok;
}
#endif

static void *worker_main(void *arg) {
    worker *w = arg;
    clv_threadpool *p = w->pool;
#ifdef CLEAVE_HAVE_HWLOC
    if (p->pu[w->ith] >= 0 && !bind_current_thread(p->pu[w->ith]))
        atomic_fetch_add_explicit(&p->n_bind_failed, 1, memory_order_relaxed);
#endif
    uint32_t seen = atomic_load_explicit(&p->generation, memory_order_acquire);
    atomic_fetch_add_explicit(&p->n_ready, 1, memory_order_release);
    for (;;) {
        seen = wait_generation(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
        p->fn(p->ctx, w->ith, p->n_threads);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

/* ---- public API ---------------------------------------------------------- */

clv_threadpool_params clv_threadpool_default_params(void) {
    clv_threadpool_params p = {0};
    p.n_threads = 0;
    p.pin = true;
    p.spin_us = -1;
    return p;
}

static void stop_workers(clv_threadpool *p, int n_started) {
    atomic_store_explicit(&p->stop, true, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_seq_cst);
    wake_all(p, &p->generation);
    for (int i = 0; i < n_started; i++) pthread_join(p->workers[i].thread, NULL);
}

static void release(clv_threadpool *p) {
#ifdef CLEAVE_HAVE_HWLOC
    if (p->caller_old_binding) {
        hwloc_topology_t topo = get_topology();
        if (topo && pthread_equal(pthread_self(), p->creator))
            hwloc_set_cpubind(topo, p->caller_old_binding, HWLOC_CPUBIND_THREAD);
        hwloc_bitmap_free(p->caller_old_binding);
    }
#endif
#if !defined(__linux__)
    pthread_cond_destroy(&p->sleep_cond);
    pthread_mutex_destroy(&p->sleep_lock);
#endif
    free(p->workers);
    free(p->pu);
    free(p->numa_node);
    free(p);
}

/* Chooses each thread's PU; binds the caller as thread 0. */
static void plan_binding(clv_threadpool *p, bool pin) {
    for (int i = 0; i < p->n_threads; i++) p->pu[i] = p->numa_node[i] = -1;
    p->pinned = false;
#ifdef CLEAVE_HAVE_HWLOC
    if (!pin) return;
    hwloc_topology_t topo = get_topology();
    if (!topo) return;
    int n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (n_pus <= 0) return;
    hwloc_obj_t *pus = malloc(sizeof *pus * (size_t)n_pus);
    if (!pus) return;
    int cores = 0;
    int got = ordered_pus(topo, pus, n_pus, &cores);
    if (got > 0) {
        for (int i = 0; i < p->n_threads; i++) {
            hwloc_obj_t pu = pus[i % got];
            p->pu[i] = (int)pu->os_index;
            p->numa_node[i] = pu_numa_node(pu);
        }
        p->caller_old_binding = hwloc_bitmap_alloc();
        p->creator = pthread_self();
        if (p->caller_old_binding &&
            hwloc_get_cpubind(topo, p->caller_old_binding, HWLOC_CPUBIND_THREAD) != 0) {
            hwloc_bitmap_free(p->caller_old_binding);
            p->caller_old_binding = NULL;
        }
        if (!bind_current_thread(p->pu[0]))
            atomic_fetch_add_explicit(&p->n_bind_failed, 1, memory_order_relaxed);
        p->pinned = true;
    }
    free(pus);
#else
    (void)pin;
#endif
}

clv_status clv_threadpool_create(const clv_threadpool_params *params, clv_threadpool **out) {
    clv_threadpool_params prm = params ? *params : clv_threadpool_default_params();
    *out = NULL;
    if (prm.n_threads < 0 || prm.n_threads > CLV_THREADPOOL_MAX_THREADS)
        return clv_fail(CLV_ERR_ARG, "thread pool: n_threads = %d: must be in [0, %d]",
                        prm.n_threads, CLV_THREADPOOL_MAX_THREADS);
    if (prm.spin_us < -1)
        return clv_fail(CLV_ERR_ARG, "thread pool: spin_us = %d: must be >= 0 (or -1)",
                        prm.spin_us);
    int n = prm.n_threads ? prm.n_threads : clv_cpu_physical_cores();

    size_t size = (sizeof(clv_threadpool) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    clv_threadpool *p = aligned_alloc(CACHE_LINE, size);
    if (!p) return clv_fail(CLV_ERR_NOMEM, "thread pool: out of memory");
    memset(p, 0, size);
    atomic_init(&p->generation, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->pending, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->n_ready, 0);
    atomic_init(&p->busy, false);
    atomic_init(&p->n_bind_failed, 0);
    p->n_threads = n;
    int spin_us = prm.spin_us < 0 ? DEFAULT_SPIN_US : prm.spin_us;
    /* Spinning threads that outnumber the CPUs only steal time from the ones
     * with work: sleep at once instead. */
    if (n > online_cpus()) spin_us = 0;
    p->spin_ns = (uint64_t)spin_us * 1000u;
#if !defined(__linux__)
    pthread_mutex_init(&p->sleep_lock, NULL);
    pthread_cond_init(&p->sleep_cond, NULL);
#endif

    p->pu = malloc(sizeof *p->pu * (size_t)n);
    p->numa_node = malloc(sizeof *p->numa_node * (size_t)n);
    if (n > 1) {
        size_t wsize = sizeof(worker) * (size_t)(n - 1);
        p->workers = aligned_alloc(CACHE_LINE, wsize);
        if (p->workers) memset(p->workers, 0, wsize);
    }
    if (!p->pu || !p->numa_node || (n > 1 && !p->workers)) {
        release(p);
        return clv_fail(CLV_ERR_NOMEM, "thread pool: out of memory for %d threads", n);
    }
    plan_binding(p, prm.pin);

    for (int i = 0; i < n - 1; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->ith = i + 1;
        int err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            stop_workers(p, i);
            release(p);
            return clv_fail(CLV_ERR_IO, "thread pool: cannot start thread %d of %d: %s", i + 1,
                            n, strerror(err));
        }
    }
    /* Once all have bound themselves the pinned flag is final. */
    while (atomic_load_explicit(&p->n_ready, memory_order_acquire) < n - 1) sched_yield();
    if (atomic_load_explicit(&p->n_bind_failed, memory_order_relaxed) > 0) {
        p->pinned = false;
        for (int i = 0; i < n; i++) p->numa_node[i] = -1;
    }
    *out = p;
    return CLV_OK;
}

void clv_threadpool_free(clv_threadpool *pool) {
    if (!pool) return;
    CLV_ASSERT(!atomic_load(&pool->busy));
    stop_workers(pool, pool->n_threads - 1);
    release(pool);
}

int clv_threadpool_n_threads(const clv_threadpool *pool) { return pool->n_threads; }

bool clv_threadpool_pinned(const clv_threadpool *pool) { return pool->pinned; }

int clv_threadpool_numa_node(const clv_threadpool *pool, int ith) {
    if (ith < 0 || ith >= pool->n_threads) return -1;
    return pool->numa_node[ith];
}

void clv_threadpool_run(clv_threadpool *pool, clv_threadpool_fn fn, void *ctx) {
    CLV_ASSERT(fn);
    int n = pool->n_threads;
    /* A nested or concurrent run would hand the workers two jobs at once. */
    CLV_ASSERT(!atomic_exchange_explicit(&pool->busy, true, memory_order_acquire));
    if (n == 1) {
        fn(ctx, 0, 1);
        atomic_store_explicit(&pool->busy, false, memory_order_release);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, n - 1, memory_order_relaxed);
    /* Publishes fn, ctx and pending (and whatever the caller wrote before). */
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&pool->n_sleeping, memory_order_seq_cst) > 0)
        wake_all(pool, &pool->generation);

    fn(ctx, 0, n);

    /* Spin while the others finish; after a short while (a worker shares
     * this CPU, was preempted, or has more work) yield between looks. */
    uint64_t start = 0;
    bool yield = pool->spin_ns == 0;
    for (unsigned i = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0; i++) {
        if (yield) {
            sched_yield();
            continue;
        }
        cpu_relax();
        if ((i & 63) == 0) {
            uint64_t t = now_ns();
            if (!start) start = t;
            else if (t - start > PURE_SPIN_NS) yield = true;
        }
    }
    atomic_store_explicit(&pool->busy, false, memory_order_release);
}

void clv_threadpool_split(int64_t n, int64_t chunk, int ith, int nth, int64_t *begin,
                          int64_t *end) {
    CLV_ASSERT(n >= 0 && chunk > 0 && nth > 0 && ith >= 0 && ith < nth);
    int64_t n_chunks = n / chunk + (n % chunk != 0);
    int64_t q = n_chunks / nth, r = n_chunks % nth;
    int64_t c0 = ith * q + (ith < r ? ith : r);
    int64_t c1 = c0 + q + (ith < r);
    int64_t b = c0 * chunk, e = c1 * chunk;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}

void clv_work_counter_init(clv_work_counter *c, int64_t n, int64_t chunk) {
    CLV_ASSERT(n >= 0 && chunk > 0);
    atomic_store_explicit(&c->next, 0, memory_order_relaxed);
    c->n = n;
    c->chunk = chunk;
}
