/* What the running x86-64 CPU (and the OS, which must save the wider
 * registers) lets the CPU kernels use. Read once with cpuid + xgetbv; on other
 * architectures every flag is false and only the scalar paths run. */
#ifndef CLV_CPU_FEATURES_H
#define CLV_CPU_FEATURES_H

#include <stdbool.h>

typedef struct clv_cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    bool avxvnni;            /* VEX-encoded VNNI (Alder Lake and later clients) */
    bool amx_int8, amx_bf16; /* CPU and XCR0 allow AMX; Linux also wants arch_prctl(ARCH_REQ_XCOMP_PERM) */
} clv_cpu_features;

/* Detected once, on first call (thread-safe). */
const clv_cpu_features *clv_cpu_get_features(void);

/* "avx2 fma f16c avx512f ..." for logs; writes at most `size` bytes. */
void clv_cpu_features_str(const clv_cpu_features *f, char *buf, int size);

#endif
