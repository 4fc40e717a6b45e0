#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Upper bound on the penalty window: the ring is allocated up front. */
#define PENALTY_LAST_N_MAX (1 << 24)
/* Segments this small are sorted rather than partitioned again. */
#define SMALL_SEGMENT 16

typedef struct cand {
    int32_t id;
    float logit;
    float p;
    float key; /* what the current filter orders by (ascending), ties by id */
} cand;

struct clv_sampler {
    clv_sampler_params prm; /* the pointers in it are cleared */
    int32_t n_vocab;
    int32_t min_keep;   /* max(prm.min_keep, 1) */
    bool penalties;     /* some penalty is on and the window is not empty */

    float *bias;        /* [n_vocab], NULL without logit bias or banned EOG */
    int32_t *bias_ids;  /* tokens with a nonzero bias */
    int32_t n_bias_ids;
    int32_t *eog;
    int32_t n_eog;

    /* Penalty window: a ring of the last tokens and their counts. */
    int32_t *ring;
    int32_t ring_cap, ring_len, ring_head; /* ring_head: the next slot to write */
    int32_t *counts;       /* [n_vocab] occurrences in the window */
    int32_t *distinct;     /* tokens with counts > 0 */
    int32_t *distinct_pos; /* [n_vocab] index in distinct */
    int32_t n_distinct;

    /* Logits changed by bias or penalties for the current call. */
    int32_t *mod_ids;
    float *mod_vals;
    int32_t n_mod, mod_cap;
    uint8_t *mod_flag; /* [n_vocab], set only during a call */
    float *work;       /* [n_vocab] logits with the changes, for the full-vocabulary path */

    /* Top-k: maxima of blocks of block_size logits, and a copy to select in. */
    int32_t block_size, n_blocks;
    float *block_max, *block_tmp;

    cand *cand; /* [n_vocab + mod_cap] */
    int32_t n_cand;
    int32_t *out_ids;
    float *out_probs;

    uint64_t seed;
    uint64_t rng[4];
};

/* ---- PRNG: xoshiro256**, seeded through splitmix64 ------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static uint64_t random_seed(const void *salt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 32;
    x ^= (uint64_t)(uintptr_t)salt;
    uint64_t seed = splitmix64(&x);
    return seed == CLV_SAMPLER_SEED_RANDOM ? 0 : seed;
}

/* ---- parameters ----------------------------------------------------------- */

clv_sampler_params clv_sampler_default_params(void) {
    clv_sampler_params p;
    memset(&p, 0, sizeof p);
    p.seed = CLV_SAMPLER_SEED_RANDOM;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.penalty_last_n = 64;
    p.min_keep = 0;
    return p;
}

static bool in_unit(float x) { return x >= 0.0f && x <= 1.0f; } /* false for NaN */

static clv_status check_params(const clv_sampler_params *p) {
    if (p->n_vocab <= 0)
        return clv_fail(CLV_ERR_ARG, "sampler: n_vocab = %d: must be > 0", (int)p->n_vocab);
    if (!isfinite(p->temperature))
        return clv_fail(CLV_ERR_ARG, "sampler: temperature = %g: must be a finite number",
                        (double)p->temperature);
    if (!in_unit(p->top_p))
        return clv_fail(CLV_ERR_ARG, "sampler: top_p = %g: must be in [0, 1]", (double)p->top_p);
    if (!in_unit(p->min_p))
        return clv_fail(CLV_ERR_ARG, "sampler: min_p = %g: must be in [0, 1]", (double)p->min_p);
    if (!in_unit(p->typical_p))
        return clv_fail(CLV_ERR_ARG, "sampler: typical_p = %g: must be in [0, 1]",
                        (double)p->typical_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return clv_fail(CLV_ERR_ARG, "sampler: repeat_penalty = %g: must be a finite number > 0",
                        (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty))
        return clv_fail(CLV_ERR_ARG, "sampler: presence_penalty = %g: must be a finite number",
                        (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return clv_fail(CLV_ERR_ARG, "sampler: frequency_penalty = %g: must be a finite number",
                        (double)p->frequency_penalty);
    if (p->penalty_last_n < 0 || p->penalty_last_n > PENALTY_LAST_N_MAX)
        return clv_fail(CLV_ERR_ARG, "sampler: penalty_last_n = %d: must be in [0, %d]",
                        (int)p->penalty_last_n, PENALTY_LAST_N_MAX);
    if (p->min_keep < 0)
        return clv_fail(CLV_ERR_ARG, "sampler: min_keep = %d: must be >= 0", (int)p->min_keep);
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return clv_fail(CLV_ERR_ARG, "sampler: logit bias: %d entries at %p",
                        (int)p->n_logit_bias, (const void *)p->logit_bias);
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const clv_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= p->n_vocab)
            return clv_fail(CLV_ERR_ARG,
                            "sampler: logit bias %d: token %d is outside the vocabulary [0, %d)",
                            (int)i, (int)b->token, (int)p->n_vocab);
        if (isnan(b->bias))
            return clv_fail(CLV_ERR_ARG, "sampler: logit bias %d: token %d: bias is NaN", (int)i,
                            (int)b->token);
    }
    if (p->n_eog_tokens < 0 || (p->n_eog_tokens > 0 && !p->eog_tokens))
        return clv_fail(CLV_ERR_ARG, "sampler: end-of-generation tokens: %d entries at %p",
                        (int)p->n_eog_tokens, (const void *)p->eog_tokens);
    for (int32_t i = 0; i < p->n_eog_tokens; i++)
        if (p->eog_tokens[i] < 0 || p->eog_tokens[i] >= p->n_vocab)
            return clv_fail(CLV_ERR_ARG,
                            "sampler: end-of-generation token %d is outside the vocabulary [0, %d)",
                            (int)p->eog_tokens[i], (int)p->n_vocab);
    return CLV_OK;
}

/* ---- create / free -------------------------------------------------------- */

void clv_sampler_free(clv_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->bias_ids);
    free(s->eog);
    free(s->ring);
    free(s->counts);
    free(s->distinct);
    free(s->distinct_pos);
    free(s->mod_ids);
    free(s->mod_vals);
    free(s->mod_flag);
    free(s->work);
    free(s->block_max);
    free(s->block_tmp);
    free(s->cand);
    free(s->out_ids);
    free(s->out_probs);
    free(s);
}

clv_status clv_sampler_create(const clv_sampler_params *params, clv_sampler **out) {
    *out = NULL;
    if (!params) return clv_fail(CLV_ERR_ARG, "sampler: no parameters");
    clv_status st = check_params(params);
    if (st != CLV_OK) return st;

    clv_sampler *s = calloc(1, sizeof *s);
    if (!s) return clv_fail(CLV_ERR_NOMEM, "sampler: out of memory");
    s->prm = *params;
    s->prm.logit_bias = NULL;
    s->prm.n_logit_bias = 0;
    s->prm.eog_tokens = NULL;
    s->prm.n_eog_tokens = 0;
    const int32_t n = params->n_vocab;
    s->n_vocab = n;
    s->min_keep = params->min_keep > 1 ? params->min_keep : 1;
    s->penalties = params->penalty_last_n > 0 &&
                   (params->repeat_penalty != 1.0f || params->presence_penalty != 0.0f ||
                    params->frequency_penalty != 0.0f);
    bool ok = true;

    /* End-of-generation tokens, and the bias that folds in the bans. */
    if (params->n_eog_tokens > 0) {
        s->eog = malloc(sizeof *s->eog * (size_t)params->n_eog_tokens);
        ok = ok && s->eog;
        if (s->eog) {
            memcpy(s->eog, params->eog_tokens, sizeof *s->eog * (size_t)params->n_eog_tokens);
            s->n_eog = params->n_eog_tokens;
        }
    }
    bool ban_eog = params->ignore_eos && s->n_eog > 0;
    if (ok && (params->n_logit_bias > 0 || ban_eog)) {
        int32_t cap = params->n_logit_bias + (ban_eog ? s->n_eog : 0);
        s->bias = calloc((size_t)n, sizeof *s->bias);
        s->bias_ids = malloc(sizeof *s->bias_ids * (size_t)cap);
        ok = s->bias && s->bias_ids;
        for (int32_t i = 0; ok && i < params->n_logit_bias; i++)
            s->bias[params->logit_bias[i].token] += params->logit_bias[i].bias;
        for (int32_t i = 0; ok && ban_eog && i < s->n_eog; i++) s->bias[s->eog[i]] = -INFINITY;
        /* The unique tokens with a nonzero sum, in the order given. */
        for (int32_t i = 0; ok && i < cap; i++) {
            int32_t t = i < params->n_logit_bias ? params->logit_bias[i].token
                                                 : s->eog[i - params->n_logit_bias];
            bool seen = false;
            for (int32_t j = 0; j < s->n_bias_ids && !seen; j++) seen = s->bias_ids[j] == t;
            if (!seen && s->bias[t] != 0.0f) s->bias_ids[s->n_bias_ids++] = t;
        }
    }

    if (ok && s->penalties) {
        s->ring_cap = params->penalty_last_n;
        s->ring = malloc(sizeof *s->ring * (size_t)s->ring_cap);
        s->counts = calloc((size_t)n, sizeof *s->counts);
        s->distinct = malloc(sizeof *s->distinct * (size_t)s->ring_cap);
        s->distinct_pos = malloc(sizeof *s->distinct_pos * (size_t)n);
        ok = s->ring && s->counts && s->distinct && s->distinct_pos;
    }

    s->mod_cap = (s->penalties ? s->ring_cap : 0) + s->n_bias_ids;
    if (ok && s->mod_cap > 0) {
        s->mod_ids = malloc(sizeof *s->mod_ids * (size_t)s->mod_cap);
        s->mod_vals = malloc(sizeof *s->mod_vals * (size_t)s->mod_cap);
        s->mod_flag = calloc((size_t)n, 1);
        s->work = malloc(sizeof *s->work * (size_t)n);
        ok = s->mod_ids && s->mod_vals && s->mod_flag && s->work;
    }
    if (ok) {
        /* Blocks of up to 256 logits, small enough that there are 4 per
         * token the top-k may have to keep. */
        int64_t keep_max = (params->top_k > 1 ? params->top_k : 1) + (int64_t)s->min_keep + s->mod_cap;
        s->block_size = 256;
        while (s->block_size > 16 && (int64_t)n / s->block_size < 4 * keep_max) s->block_size /= 2;
        s->n_blocks = (n + s->block_size - 1) / s->block_size;
        s->block_max = malloc(sizeof *s->block_max * (size_t)s->n_blocks);
        s->block_tmp = malloc(sizeof *s->block_tmp * (size_t)s->n_blocks);
        ok = s->block_max && s->block_tmp;
    }
    if (ok) {
        s->cand = malloc(sizeof *s->cand * ((size_t)n + (size_t)s->mod_cap));
        s->out_ids = malloc(sizeof *s->out_ids * (size_t)n);
        s->out_probs = malloc(sizeof *s->out_probs * (size_t)n);
        ok = s->cand && s->out_ids && s->out_probs;
    }
    if (!ok) {
        clv_sampler_free(s);
        return clv_fail(CLV_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d", (int)n);
    }
    s->seed = params->seed == CLV_SAMPLER_SEED_RANDOM ? random_seed(s) : params->seed;
    rng_seed(s->rng, s->seed);
    *out = s;
    return CLV_OK;
}

/* ---- history -------------------------------------------------------------- */

static void history_remove(clv_sampler *s, int32_t t) {
    if (--s->counts[t] > 0) return;
    int32_t pos = s->distinct_pos[t];
    int32_t last = s->distinct[--s->n_distinct];
    s->distinct[pos] = last;
    s->distinct_pos[last] = pos;
}

clv_status clv_sampler_accept(clv_sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab)
        return clv_fail(CLV_ERR_ARG, "sampler: accepted token %d is outside the vocabulary [0, %d)",
                        (int)token, (int)s->n_vocab);
    if (!s->penalties) return CLV_OK;
    if (s->ring_len == s->ring_cap) {
        history_remove(s, s->ring[s->ring_head]); /* the oldest sits where we write */
        s->ring_len--;
    }
    s->ring[s->ring_head] = token;
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    s->ring_len++;
    if (s->counts[token]++ == 0) {
        s->distinct_pos[token] = s->n_distinct;
        s->distinct[s->n_distinct++] = token;
    }
    return CLV_OK;
}

void clv_sampler_reset(clv_sampler *s) {
    for (int32_t i = 0; i < s->n_distinct; i++) s->counts[s->distinct[i]] = 0;
    s->n_distinct = 0;
    s->ring_len = 0;
    s->ring_head = 0;
    rng_seed(s->rng, s->seed);
}

uint64_t clv_sampler_seed(const clv_sampler *s) { return s->seed; }

bool clv_sampler_is_eog(const clv_sampler *s, int32_t token) {
    for (int32_t i = 0; i < s->n_eog; i++)
        if (s->eog[i] == token) return true;
    return false;
}

/* ---- bias and penalties: a short list of changed logits ------------------- */

static void push_mod(clv_sampler *s, int32_t t, float v) {
    CLV_ASSERT(s->n_mod < s->mod_cap);
    s->mod_ids[s->n_mod] = t;
    s->mod_vals[s->n_mod] = v;
    s->n_mod++;
    s->mod_flag[t] = 1;
}

static void build_mods(clv_sampler *s, const float *logits) {
    s->n_mod = 0;
    if (s->penalties) {
        const float rp = s->prm.repeat_penalty;
        const float fp = s->prm.frequency_penalty, pp = s->prm.presence_penalty;
        for (int32_t i = 0; i < s->n_distinct; i++) {
            int32_t t = s->distinct[i];
            float v = logits[t];
            if (s->bias) v += s->bias[t]; /* bias first, as llama.cpp chains them */
            if (rp != 1.0f) v = v > 0.0f ? v / rp : v * rp;
            v -= (float)s->counts[t] * fp + pp; /* counts[t] > 0 here */
            push_mod(s, t, v);
        }
    }
    for (int32_t i = 0; i < s->n_bias_ids; i++) {
        int32_t t = s->bias_ids[i];
        if (!s->mod_flag[t]) push_mod(s, t, logits[t] + s->bias[t]);
    }
}

static void clear_mods(clv_sampler *s) {
    for (int32_t i = 0; i < s->n_mod; i++) s->mod_flag[s->mod_ids[i]] = 0;
    s->n_mod = 0;
}

/* ---- ordering helpers ----------------------------------------------------- */

/* a is a worse candidate than b: a lower logit or, on a tie, the higher id
 * (the lowest id wins ties, as in the (key = -logit, id) order). */
static inline bool worse(const cand *a, const cand *b) {
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static inline bool key_less(const cand *a, const cand *b) {
    return a->key < b->key || (a->key == b->key && a->id < b->id);
}

static inline void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Sorting by (key, id) ascending, in place; not with the C library's qsort,
 * which may malloc a buffer, and nothing is allocated per token. Introsort:
 * quicksort on the median of three, insertion sort for short runs, heapsort
 * when the recursion goes too deep. Sorting by logit, best first, is sorting
 * by key = -logit. */
static void insertion_sort(cand *c, int32_t n) {
    for (int32_t i = 1; i < n; i++) {
        cand v = c[i];
        int32_t j = i;
        for (; j > 0 && key_less(&v, &c[j - 1]); j--) c[j] = c[j - 1];
        c[j] = v;
    }
}

static void key_heap_down(cand *c, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key_less(&c[m], &c[l])) m = l;
        if (r < n && key_less(&c[m], &c[r])) m = r;
        if (m == i) return;
        swap_cand(&c[i], &c[m]);
        i = m;
    }
}

static void heap_sort(cand *c, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) key_heap_down(c, n, i);
    for (int32_t end = n - 1; end > 0; end--) {
        swap_cand(&c[0], &c[end]);
        key_heap_down(c, end, 0);
    }
}

/* Moves the median of c[lo], c[mid], c[last] to c[last]. */
static void median_to_last(cand *c, int32_t lo, int32_t mid, int32_t last) {
    if (key_less(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
    if (key_less(&c[last], &c[lo])) swap_cand(&c[last], &c[lo]);
    if (key_less(&c[mid], &c[last])) swap_cand(&c[mid], &c[last]);
}

static void sort_by_key(cand *c, int32_t n) {
    int depth = 0;
    for (int32_t m = n; m > 1; m >>= 1) depth += 2;
    while (n > SMALL_SEGMENT) {
        if (depth-- == 0) {
            heap_sort(c, n);
            return;
        }
        int32_t last = n - 1;
        median_to_last(c, 0, n / 2, last);
        const cand pivot = c[last];
        int32_t i = 0;
        for (int32_t j = 0; j < last; j++)
            if (key_less(&c[j], &pivot)) swap_cand(&c[i++], &c[j]);
        swap_cand(&c[i], &c[last]);
        /* recurse into the smaller side, loop on the larger */
        if (i < n - i - 1) {
            sort_by_key(c, i);
            c += i + 1;
            n -= i + 1;
        } else {
            sort_by_key(c + i + 1, n - i - 1);
            n = i;
        }
    }
    insertion_sort(c, n);
}

/* Moves the m first by key (ties by id) to c[0..m), c[m - 1] being the
 * m-th: a quickselect, falling back to a sort when it goes too deep. */
static void select_first(cand *c, int32_t n, int32_t m) {
    int32_t lo = 0, hi = n;
    for (int rounds = 0; hi - lo > SMALL_SEGMENT; rounds++) {
        if (rounds == 64) break;
        int32_t last = hi - 1;
        median_to_last(c, lo, lo + (hi - lo) / 2, last);
        const cand pivot = c[last];
        int32_t i = lo;
        for (int32_t j = lo; j < last; j++)
            if (key_less(&c[j], &pivot)) swap_cand(&c[i++], &c[j]);
        swap_cand(&c[i], &c[last]);
        if (i == m - 1) return;
        if (i > m - 1)
            hi = i;
        else
            lo = i + 1;
    }
    sort_by_key(c + lo, hi - lo);
}

/* ---- candidate sets ------------------------------------------------------- */

/* The largest of x[0..n), ignoring NaN; -inf when there is none. */
static float block_max(const float *x, int32_t n) {
    int32_t i = 0;
    float m = -INFINITY;
#if defined(__SSE2__)
    if (n >= 16) {
        /* maxps returns its second operand when the first is NaN */
        __m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
        for (; i + 16 <= n; i += 16) {
            m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
            m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
            m2 = _mm_max_ps(_mm_loadu_ps(x + i + 8), m2);
            m3 = _mm_max_ps(_mm_loadu_ps(x + i + 12), m3);
        }
        m0 = _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3));
        m0 = _mm_max_ps(m0, _mm_shuffle_ps(m0, m0, _MM_SHUFFLE(1, 0, 3, 2)));
        m0 = _mm_max_ps(m0, _mm_shuffle_ps(m0, m0, _MM_SHUFFLE(2, 3, 0, 1)));
        m = _mm_cvtss_f32(m0);
    }
#endif
    for (; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

/* Whether any of x[0..16) is >= thr (false for NaN). */
static inline bool any_at_least(const float *x, float thr) {
#if defined(__SSE2__)
    const __m128 t = _mm_set1_ps(thr);
    __m128 m = _mm_cmpge_ps(_mm_loadu_ps(x), t);
    m = _mm_or_ps(m, _mm_cmpge_ps(_mm_loadu_ps(x + 4), t));
    m = _mm_or_ps(m, _mm_cmpge_ps(_mm_loadu_ps(x + 8), t));
    m = _mm_or_ps(m, _mm_cmpge_ps(_mm_loadu_ps(x + 12), t));
    return _mm_movemask_ps(m) != 0;
#else
    int any = 0;
    for (int j = 0; j < 16; j++) any |= x[j] >= thr;
    return any != 0;
#endif
}

/* The k-th largest (1-based) of a[0..n), which holds no NaN; reorders a.
 * Three-way partitions, so runs of equal values cost nothing extra. */
static float kth_largest(float *a, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n;
    const int32_t want = k - 1;
    while (hi - lo > SMALL_SEGMENT) {
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        /* [lo, lt) > pivot, [lt, i) == pivot, [gt, hi) < pivot */
        int32_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float v = a[i];
            if (v > pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v < pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (want < lt)
            hi = lt;
        else if (want >= gt)
            lo = gt;
        else
            return pivot;
    }
    for (int32_t i = lo + 1; i < hi; i++) { /* insertion sort, descending */
        float v = a[i];
        int32_t j = i;
        for (; j > lo && a[j - 1] < v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
    return a[want];
}

/* The k best tokens by changed logits, sorted best first, without a pass
 * that copies the vocabulary: the best k + n_mod raw logits hold every
 * unchanged token of the true top k (at most n_mod changed tokens can rank
 * above one of them); the changed tokens are then put in with their new
 * values. Needs k + n_mod < n_vocab. NaN and -inf never enter.
 *
 * Two passes. The first takes the maximum of every block (one vectorised
 * read of the logits). With keep = k + n_mod, the keep-th largest block
 * maximum is a lower bound of the keep-th best logit (keep blocks each hold
 * a logit at least that large), so the second pass gathers the logits that
 * reach it from the few blocks whose maximum does, and a quickselect keeps
 * the best keep of those. */
static int32_t select_top_k(clv_sampler *s, const float *x, int32_t k) {
    const int32_t n = s->n_vocab, bs = s->block_size, n_blocks = s->n_blocks;
    const int32_t keep = k + s->n_mod;
    for (int32_t b = 0; b < n_blocks; b++) {
        int32_t len = b == n_blocks - 1 ? n - b * bs : bs;
        s->block_max[b] = block_max(x + (size_t)b * (size_t)bs, len);
    }
    float thr = -INFINITY;
    if (n_blocks > keep) {
        memcpy(s->block_tmp, s->block_max, sizeof *s->block_tmp * (size_t)n_blocks);
        thr = kth_largest(s->block_tmp, n_blocks, keep);
    }
    cand *c = s->cand;
    int32_t nb = 0;
    for (int32_t b = 0; b < n_blocks; b++) {
        if (!(s->block_max[b] >= thr) || s->block_max[b] == -INFINITY) continue;
        const int32_t end = b == n_blocks - 1 ? n : (b + 1) * bs;
        int32_t j = b * bs;
        for (; j + 16 <= end; j += 16) {
            if (!any_at_least(x + j, thr)) continue;
            for (int32_t i = j; i < j + 16; i++)
                if (x[i] >= thr && x[i] > -INFINITY) c[nb++] = (cand){.id = i, .logit = x[i], .key = -x[i]};
        }
        for (; j < end; j++)
            if (x[j] >= thr && x[j] > -INFINITY) c[nb++] = (cand){.id = j, .logit = x[j], .key = -x[j]};
    }
    if (nb > keep) {
        select_first(c, nb, keep);
        nb = keep;
    }
    if (s->n_mod > 0) {
        int32_t m = 0;
        for (int32_t j = 0; j < nb; j++)
            if (!s->mod_flag[c[j].id]) c[m++] = c[j];
        for (int32_t j = 0; j < s->n_mod; j++)
            if (s->mod_vals[j] > -INFINITY)
                c[m++] = (cand){.id = s->mod_ids[j], .logit = s->mod_vals[j], .key = -s->mod_vals[j]};
        nb = m;
    }
    sort_by_key(c, nb);
    return nb < k ? nb : k;
}

/* Every token with a usable (not NaN, not -inf) changed logit. */
static int32_t all_candidates(clv_sampler *s, const float *logits) {
    const float *x = logits;
    if (s->n_mod > 0) {
        memcpy(s->work, logits, sizeof *s->work * (size_t)s->n_vocab);
        for (int32_t j = 0; j < s->n_mod; j++) s->work[s->mod_ids[j]] = s->mod_vals[j];
        x = s->work;
    }
    int32_t m = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (x[i] > -INFINITY) s->cand[m++] = (cand){.id = i, .logit = x[i]};
    return m;
}

/* Probabilities softmax(logit / temp) over c[0..n); returns the max logit.
 * With +inf logits those share the mass. */
static float softmax(cand *c, int32_t n, float temp) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit > mx) mx = c[i].logit;
    double z = 0.0;
    if (mx == INFINITY) {
        for (int32_t i = 0; i < n; i++) {
            c[i].p = c[i].logit == INFINITY ? 1.0f : 0.0f;
            z += c[i].p;
        }
    } else {
        const float inv_t = 1.0f / temp;
        for (int32_t i = 0; i < n; i++) {
            c[i].p = expf((c[i].logit - mx) * inv_t);
            z += c[i].p;
        }
    }
    const double inv_z = 1.0 / z;
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p * inv_z);
    return mx;
}

static inline bool reached(double cum, double target, bool strict) {
    return strict ? cum > target : cum >= target;
}

/* The shortest prefix, in (key, id) order, of c[0..n) whose mass reaches
 * target (>= or, with strict, >): moves it to the front (unordered) and
 * returns its length; n when the whole set does not reach target. A
 * quickselect that carries the mass of the side it keeps, so it costs O(n)
 * instead of a sort of the vocabulary. */
static int32_t mass_prefix(cand *c, int32_t n, double target, bool strict) {
    int32_t lo = 0, hi = n;
    double acc = 0.0; /* mass of c[0..lo), all before everything in [lo, hi) */
    for (int rounds = 0; hi - lo > SMALL_SEGMENT && rounds < 64; rounds++) {
        int32_t mid = lo + (hi - lo) / 2, last = hi - 1;
        median_to_last(c, lo, mid, last);
        const cand pivot = c[last];
        int32_t i = lo;
        double left = 0.0;
        for (int32_t j = lo; j < last; j++) {
            if (key_less(&c[j], &pivot)) {
                left += c[j].p;
                swap_cand(&c[i], &c[j]);
                i++;
            }
        }
        swap_cand(&c[i], &c[last]);
        if (reached(acc + left, target, strict)) {
            hi = i;
        } else if (reached(acc + left + pivot.p, target, strict)) {
            return i + 1;
        } else {
            acc += left + pivot.p;
            lo = i + 1;
        }
    }
    sort_by_key(c + lo, hi - lo);
    for (int32_t j = lo; j < hi; j++) {
        acc += c[j].p;
        if (reached(acc, target, strict)) return j + 1;
    }
    /* Not reached in this order of summation; the earlier sums said [0, hi) does. */
    return hi;
}

/* At least min_keep candidates: the first ones by key. */
static int32_t keep_at_least(clv_sampler *s, int32_t kept, int32_t n) {
    int32_t want = s->min_keep < n ? s->min_keep : n;
    if (kept >= want) return kept;
    sort_by_key(s->cand, n);
    return want;
}

static void typical_filter(clv_sampler *s) {
    cand *c = s->cand;
    int32_t n = s->n_cand;
    softmax(c, n, 1.0f);
    double entropy = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].p > 0.0f) entropy -= (double)c[i].p * log((double)c[i].p);
    for (int32_t i = 0; i < n; i++)
        c[i].key = c[i].p > 0.0f ? (float)fabs(-log((double)c[i].p) - entropy) : INFINITY;
    /* llama.cpp keeps tokens while the mass has not gone past p (strict). */
    int32_t kept = mass_prefix(c, n, s->prm.typical_p, true);
    s->n_cand = keep_at_least(s, kept, n);
}

/* Top-p; when min-p follows and min_keep is 1, the min-p threshold is
 * applied first. Both keep a prefix of the same order (logits descending),
 * so top-p then min-p is the shorter prefix, and the top-p search only has
 * to look inside the min-p set. Returns true when min-p has been applied. */
static bool top_p_filter(clv_sampler *s) {
    cand *c = s->cand;
    int32_t n = s->n_cand;
    float mx = softmax(c, n, 1.0f);
    for (int32_t i = 0; i < n; i++) c[i].key = -c[i].logit;
    const double p = s->prm.top_p;
    if (s->prm.min_p > 0.0f && s->min_keep <= 1) {
        const float thr = mx + logf(s->prm.min_p);
        int32_t m = 0;
        double mass = 0.0;
        for (int32_t i = 0; i < n; i++) {
            if (c[i].logit >= thr) {
                mass += c[i].p;
                swap_cand(&c[m], &c[i]);
                m++;
            }
        }
        s->n_cand = reached(mass, p, false) ? mass_prefix(c, m, p, false) : m;
        return true;
    }
    int32_t kept = mass_prefix(c, n, p, false);
    s->n_cand = keep_at_least(s, kept, n);
    return false;
}

static void min_p_filter(clv_sampler *s) {
    cand *c = s->cand;
    int32_t n = s->n_cand;
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit > mx) mx = c[i].logit;
    /* p >= min_p * p_max, in logits */
    const float thr = mx + logf(s->prm.min_p);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit >= thr) swap_cand(&c[m++], &c[i]);
    if (m < s->min_keep && m < n) {
        for (int32_t i = 0; i < n; i++) c[i].key = -c[i].logit;
        m = keep_at_least(s, m, n);
    }
    s->n_cand = m;
}

/* Runs the chain; leaves the distribution in out_ids / out_probs. */
static int32_t run_chain(clv_sampler *s, const float *logits) {
    const clv_sampler_params *p = &s->prm;
    const int32_t n = s->n_vocab;
    if (s->mod_cap > 0) build_mods(s, logits);
    const bool greedy = p->temperature <= 0.0f;
    int32_t k = p->top_k;
    if (k > 0 && k < s->min_keep) k = s->min_keep;
    if (greedy) k = 1;

    if (k > 0 && (int64_t)k + s->n_mod < n) {
        s->n_cand = select_top_k(s, logits, k);
    } else {
        s->n_cand = all_candidates(s, logits);
        if (greedy && s->n_cand > 0) {
            int32_t best = 0;
            for (int32_t i = 1; i < s->n_cand; i++)
                if (worse(&s->cand[best], &s->cand[i])) best = i;
            s->cand[0] = s->cand[best];
            s->n_cand = 1;
        } else if (k > 0 && k < s->n_cand) {
            /* Only when k + changed tokens cover most of a small vocabulary. */
            for (int32_t i = 0; i < s->n_cand; i++) s->cand[i].key = -s->cand[i].logit;
            sort_by_key(s->cand, s->n_cand);
            s->n_cand = k;
        }
    }
    if (s->mod_cap > 0) clear_mods(s);
    if (s->n_cand == 0) {
        clv_fail(CLV_ERR_ARG,
                 "sampler: no token can be sampled: all %d logits are NaN or -inf after bias "
                 "and penalties",
                 (int)n);
        return 0;
    }

    if (greedy) {
        s->cand[0].p = 1.0f;
    } else {
        bool min_p_done = false;
        if (p->typical_p < 1.0f) typical_filter(s);
        if (p->top_p < 1.0f) min_p_done = top_p_filter(s);
        if (p->min_p > 0.0f && !min_p_done) min_p_filter(s);
        softmax(s->cand, s->n_cand, p->temperature);
    }
    for (int32_t i = 0; i < s->n_cand; i++) {
        s->out_ids[i] = s->cand[i].id;
        s->out_probs[i] = s->cand[i].p;
    }
    return s->n_cand;
}

int32_t clv_sampler_candidates(clv_sampler *s, const float *logits, const int32_t **ids,
                               const float **probs) {
    int32_t n = run_chain(s, logits);
    *ids = s->out_ids;
    *probs = s->out_probs;
    return n;
}

int32_t clv_sampler_sample(clv_sampler *s, const float *logits) {
    int32_t n = run_chain(s, logits);
    if (n == 0) return -1;
    if (n == 1) return s->out_ids[0];
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) total += s->out_probs[i];
    const double r = rng_uniform(s->rng) * total;
    double cum = 0.0;
    int32_t last = 0;
    for (int32_t i = 0; i < n; i++) {
        if (s->out_probs[i] <= 0.0f) continue;
        cum += s->out_probs[i];
        last = i;
        if (r < cum) return s->out_ids[i];
    }
    return s->out_ids[last]; /* rounding left r at the very top */
}
