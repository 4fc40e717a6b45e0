/* Pre-tokenizers and the regex engine under them:
 * - every family's splits equal Hugging Face's on the strings of
 *   tests/data/pretok_refs.txt (tests/gen_pretok_refs.py),
 * - the engine's syntax and error handling,
 * - splitting stays linear on long runs of every kind of character. */
#include <time.h>

#include "pretokenize.h"
#include "test.h"
#include "tok_regex.h"
#include "unicode.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0;
}

static size_t unescape(char *s, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'n') s[o++] = '\n';
        else if (c == 't') s[o++] = '\t';
        else if (c == 'r') s[o++] = '\r';
        else if (c == 'x' && i + 2 < len) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else s[o++] = c;
    }
    return o;
}

static uint32_t decode_all(const char *s, size_t len, uint32_t *cps) {
    uint32_t n = 0;
    for (size_t i = 0; i < len;) i += clv_utf8_decode((const uint8_t *)s + i, len - i, &cps[n++]);
    return n;
}

/* Split ends of one pattern over a string, as "e1 e2 ..." */
static void split_ends(const clv_regex *re, const char *text, char *out, size_t cap) {
    uint32_t cps[256];
    uint32_t n = decode_all(text, strlen(text), cps);
    clv_span_vec v = {0};
    CHECK_STATUS(clv_regex_split(re, cps, 0, n, &v), CLV_OK);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v.n && o + 12 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, i ? " %u" : "%u", v.data[i].end);
    clv_span_vec_free(&v);
}

static void check_split(const char *pattern, const char *text, const char *want) {
    clv_regex *re = NULL;
    clv_status st = clv_regex_compile(pattern, &re);
    CHECK_MSG(st == CLV_OK, "%s: %s", pattern, clv_last_error());
    if (st) return;
    char got[1024];
    split_ends(re, text, got, sizeof got);
    CHECK_MSG(!strcmp(got, want), "/%s/ on \"%s\": got [%s], want [%s]", pattern, text, got, want);
    clv_regex_free(re);
}

static void test_engine(void) {
    check_split("a|b", "abcab", "1 2 3 4 5");
    check_split("ab*", "abbbcab", "4 5 7");
    check_split("\\s+(?!\\S)|\\s+", "a   b", "1 3 4 5"); /* b is a gap */
    check_split("\\s+(?!\\S)|\\s+", "a   ", "1 4");
    check_split("(?i:'s|'ll)", "'S'Ll's", "2 5 7");
    check_split("\\p{N}{1,3}", "1234567", "3 6 7");
    check_split("\\p{L}+", "héllo wörld", "5 6 11");
    check_split("\\s+$", "ab  ", "2 4");
    check_split("\\s+$", "  ab", "4");
    check_split("^a", "aaa", "1 3");
    check_split("[^\\s\\p{L}]+", "ab!? cd", "2 4 7");
    check_split("x(?=y)", "xyxz", "1 4");
    check_split("(?:ab)+", "ababab!", "6 7");
    check_split("(ab|a)c", "abcac", "3 5");
    check_split("[a-c\\-]+", "ab-cd", "4 5");
    check_split("\\x{4E2D}", "a\xe4\xb8\xad", "1 2");
    check_split("[\\x{FF01}-\\x{FF0F}]+", "\xef\xbc\x81\xef\xbc\x81" "a", "2 3");
    check_split(".", "a\nb", "1 2 3");
    check_split("\\d+", "a\xd9\xa3\xd9\xa4" "b", "1 3 4"); /* Arabic-Indic digits are Nd */
    check_split("", "abc", "3");

    static const char *bad[] = {"(ab", "ab)", "[ab", "a**", "a+?", "*a", "(?<=a)b", "\\q",
                                "\\p{Xx}", "[b-a]", "a{2,1}", "(?=a)*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clv_regex *re = (clv_regex *)1;
        clv_status st = clv_regex_compile(bad[i], &re);
        CHECK_MSG(st == CLV_ERR_ARG && re == NULL, "pattern '%s' should fail", bad[i]);
        CHECK_MSG(strstr(clv_last_error(), "regex"), "message: %s", clv_last_error());
    }
}

static void test_names(void) {
    size_t n = 0;
    for (const char *name; (name = clv_pretok_name_at(n)); n++) {
        clv_pretok *pt = NULL;
        CHECK_STATUS(clv_pretok_create(name, &pt), CLV_OK);
        clv_pretok_free(pt);
    }
    CHECK(n >= 20);
    clv_pretok *pt = (clv_pretok *)1;
    CHECK_STATUS(clv_pretok_create("no-such-splitter", &pt), CLV_ERR_UNSUPPORTED);
    CHECK(pt == NULL);
    CHECK_MSG(strstr(clv_last_error(), "'no-such-splitter'"), "message: %s", clv_last_error());
    CHECK_STATUS(clv_pretok_create(NULL, &pt), CLV_OK); /* absent: GPT-2's */
    CHECK(!strcmp(clv_pretok_family(pt), "gpt-2"));
    clv_pretok_free(pt);
}

static void test_refs(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/pretok_refs.txt", CLEAVE_SOURCE_DIR);
    size_t len;
    char *data = read_file(path, &len);
    CHECK_MSG(data != NULL, "cannot read %s", path);
    if (!data) return;

    char *fam_names[32];
    clv_pretok *fams[32];
    size_t pass[32] = {0}, n_fam = 0, n_strings = 0;
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    clv_span_vec out = {0}, tmp = {0};
    for (char *line = data; line < data + len;) {
        char *eol = strchr(line, '\n');
        if (!eol) eol = data + len;
        *eol = '\0';
        if (!strncmp(line, "# families: ", 12)) {
            for (char *tok = strtok(line + 12, " "); tok && n_fam < 32; tok = strtok(NULL, " ")) {
                fam_names[n_fam] = tok;
                CHECK_STATUS(clv_pretok_create(tok, &fams[n_fam]), CLV_OK);
                n_fam++;
            }
        } else if (line[0] != '#' && line != eol) {
            char *col[33] = {line};
            size_t nc = 1;
            for (char *p = line; nc < 33 && (p = strchr(p, '\t')); nc++) {
                *p++ = '\0';
                col[nc] = p;
            }
            CHECK_MSG(nc == n_fam + 1, "line with %zu columns", nc);
            size_t tl = unescape(col[0], strlen(col[0]));
            uint32_t n = decode_all(col[0], tl, cps);
            n_strings++;
            for (size_t f = 0; f < n_fam && f + 1 < nc; f++) {
                if (!fams[f]) continue;
                CHECK_STATUS(clv_pretok_split(fams[f], cps, n, &out, &tmp), CLV_OK);
                char got[4096];
                size_t o = 0;
                got[0] = '\0';
                for (size_t i = 0; i < out.n && o + 12 < sizeof got; i++)
                    o += (size_t)snprintf(got + o, sizeof got - o, i ? " %u" : "%u", out.data[i].end);
                bool same = !strcmp(got, col[f + 1]);
                pass[f] += same;
                CHECK_MSG(same, "%s on \"%s\":\n    got  [%s]\n    want [%s]", fam_names[f], col[0],
                          got, col[f + 1]);
            }
        }
        line = eol + 1;
    }
    CHECK(n_fam > 0 && n_strings > 100);
    for (size_t f = 0; f < n_fam; f++) {
        printf("  %-16s %zu/%zu strings split as Hugging Face does\n", fam_names[f], pass[f], n_strings);
        clv_pretok_free(fams[f]);
    }
    clv_span_vec_free(&out);
    clv_span_vec_free(&tmp);
    free(cps);
    free(data);
}

/* A quadratic split would take minutes here; linear takes milliseconds. Runs
 * of one character, and of two alternating ones, with another at the end. */
static void test_long_runs(void) {
    static const uint32_t kinds[][2] = {
        {' ', ' '}, {'\n', '\n'}, {'a', 'a'}, {'A', 'A'}, {'7', '7'}, {'!', '!'},
        {0x4E2D, 0x4E2D}, {0x0301, 0x0301}, {0x1F600, 0x1F600}, {0x00A0, 0x00A0}, {'\'', '\''},
        {0x3000, 0x3000}, {0xFF01, 0xFF01}, {' ', '\n'}, {'a', ' '}, {'\t', ' '}, {'1', 'a'},
        {'!', 'a'}, {'\'', 's'}, {' ', '!'}, {'\r', '\n'}, {0x4E2D, ' '}, {'A', 'a'}};
    static const uint32_t enders[] = {'x', ' ', '1', '\n', 0x4E2D, '!'};
    const uint32_t run = 100000;
    const char *done[64];
    size_t n_done = 0;
    uint32_t *cps = malloc((run + 2) * sizeof *cps);
    clv_span_vec out = {0}, tmp = {0};
    double worst = 0;
    const char *worst_name = "";
    size_t n_runs = sizeof kinds / sizeof kinds[0] * (sizeof enders / sizeof enders[0]);
    for (size_t i = 0; clv_pretok_name_at(i); i++) {
        clv_pretok *pt = NULL;
        if (clv_pretok_create(clv_pretok_name_at(i), &pt)) continue;
        bool seen = false; /* aliases share their family's splits */
        for (size_t j = 0; j < n_done; j++) seen |= !strcmp(done[j], clv_pretok_family(pt));
        if (seen || n_done == 64) {
            clv_pretok_free(pt);
            continue;
        }
        done[n_done++] = clv_pretok_family(pt);
        clock_t t0 = clock();
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            for (size_t e = 0; e < sizeof enders / sizeof enders[0]; e++) {
                for (uint32_t j = 0; j < run; j++) cps[j] = kinds[k][j & 1];
                cps[run] = enders[e];
                CHECK_STATUS(clv_pretok_split(pt, cps, run + 1, &out, &tmp), CLV_OK);
                CHECK(out.n > 0 && out.data[out.n - 1].end == run + 1);
            }
        }
        double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (s > worst) {
            worst = s;
            worst_name = clv_pretok_family(pt);
        }
        clv_pretok_free(pt);
    }
    printf("  long runs: slowest pre-tokenizer %s, %.2f s for %zu runs of %u\n", worst_name, worst,
           n_runs, run);
    CHECK_MSG(worst < 20.0, "splitting long runs took %.1f s: not linear", worst);
    clv_span_vec_free(&out);
    clv_span_vec_free(&tmp);
    free(cps);
}

int main(void) {
    test_engine();
    test_names();
    test_refs();
    test_long_runs();
    return test_finish("test_pretokenize");
}
