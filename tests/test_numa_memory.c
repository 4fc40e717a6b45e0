/* NUMA placement of copied weights (kernels/cpu/numa_memory.h): memory comes
 * zeroed and writable whatever the machine; where cleave places pages (libnuma
 * and more than one node), every page of an allocation lies on one of the
 * nodes asked for. */
#include "numa_memory.h"
#include "test.h"
#include "threadpool.h"

int main(void) {
    clv_threadpool_params tp = clv_threadpool_default_params();
    tp.pin = true;
    clv_threadpool *pool = NULL;
    CHECK_STATUS(clv_threadpool_create(&tp, &pool), CLV_OK);
    if (!pool) return test_finish("test_numa_memory");
    int n = clv_threadpool_n_threads(pool);
    int nodes[1024];
    for (int i = 0; i < n && i < 1024; i++) nodes[i] = clv_threadpool_numa_node(pool, i);
    printf("placing: %s; thread 0 on node %d\n", clv_numa_placing() ? "yes" : "no (one node or no libnuma)", nodes[0]);

    const size_t sizes[] = {0, 1, 4095, 4096, 3 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t bytes = sizes[k];
        unsigned char *p = clv_numa_alloc(bytes, nodes, n < 1024 ? n : 1024);
        CHECK(p != NULL);
        if (!p) continue;
        size_t zero = 1;
        for (size_t i = 0; i < bytes; i++) zero &= p[i] == 0;
        CHECK_MSG(zero, "%zu bytes not zeroed", bytes);
        for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)i;
        if (clv_numa_placing()) {
            for (size_t off = 0; off < bytes; off += 4096) {
                int node = clv_numa_node_of(p + off), ok = 0;
                for (int i = 0; i < n; i++) ok |= node == nodes[i];
                CHECK_MSG(ok, "page at %zu on node %d, not one of the pool's", off, node);
            }
        }
        clv_numa_free(p, bytes);
    }
    clv_numa_free(NULL, 0);
    clv_threadpool_free(pool);
    return test_finish("test_numa_memory");
}
