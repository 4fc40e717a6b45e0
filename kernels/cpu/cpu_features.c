#include "cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* CPUID bits (Intel SDM vol. 2, CPUID), spelled out: older cpuid.h headers
 * lack some of them. Leaf 1 ECX: */
enum { FMA_ = 1u << 12, OSXSAVE_ = 1u << 27, AVX_ = 1u << 28, F16C_ = 1u << 29 };
/* Leaf 7 subleaf 0, EBX / ECX / EDX: */
enum { AVX2_ = 1u << 5, AVX512F_ = 1u << 16, AVX512BW_ = 1u << 30 };
#define AVX512VL_ (1u << 31)
enum { AVX512VNNI_ = 1u << 11 };
enum { AMX_BF16_ = 1u << 22, AMX_TILE_ = 1u << 24, AMX_INT8_ = 1u << 25 };
/* Leaf 7 subleaf 1, EAX: */
enum { AVXVNNI_ = 1u << 4, AVX512BF16_ = 1u << 5 };

/* XCR0: which register states the OS saves on a context switch. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static void detect(clv_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = c & OSXSAVE_, avx = c & AVX_;
    bool fma = c & FMA_, f16c = c & F16C_;
    if (!osxsave || !avx) return; /* no VEX at all */
    uint64_t xcr0 = read_xcr0();
    bool os_avx = (xcr0 & 0x6) == 0x6;         /* XMM + YMM */
    bool os_avx512 = (xcr0 & 0xe6) == 0xe6;    /* + opmask, ZMM_Hi256, Hi16_ZMM */
    bool os_amx = (xcr0 & 0x60000) == 0x60000; /* XTILECFG + XTILEDATA */
    if (!os_avx) return;
    f->fma = fma;
    f->f16c = f16c;

    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a; /* subleaf 1 exists only when this says so */
    f->avx2 = b & AVX2_;
    if (os_avx512) {
        f->avx512f = b & AVX512F_;
        f->avx512bw = b & AVX512BW_;
        f->avx512vl = b & AVX512VL_;
        f->avx512vnni = c & AVX512VNNI_;
    }
    if (os_amx && (d & AMX_TILE_)) {
        f->amx_int8 = d & AMX_INT8_;
        f->amx_bf16 = d & AMX_BF16_;
    }
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f->avxvnni = a & AVXVNNI_;
        if (os_avx512) f->avx512bf16 = a & AVX512BF16_;
    }
}
#else
static void detect(clv_cpu_features *f) { (void)f; }
#endif

static clv_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void detect_once(void) { detect(&features); }

const clv_cpu_features *clv_cpu_get_features(void) {
    pthread_once(&features_once, detect_once);
    return &features;
}

void clv_cpu_features_str(const clv_cpu_features *f, char *buf, int size) {
    if (size <= 0) return;
    buf[0] = '\0';
    int len = 0;
#define ADD(flag)                                                                  \
    if (f->flag && len < size) len += snprintf(buf + len, (size_t)(size - len), "%s%s", len ? " " : "", #flag);
    ADD(avx2) ADD(fma) ADD(f16c) ADD(avx512f) ADD(avx512bw) ADD(avx512vl) ADD(avx512vnni)
    ADD(avx512bf16) ADD(avxvnni) ADD(amx_int8) ADD(amx_bf16)
#undef ADD
    if (len == 0) snprintf(buf, (size_t)size, "baseline");
}
