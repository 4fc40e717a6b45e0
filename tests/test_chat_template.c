/* Chat templates: every fixture in tests/data/chat/ (real templates rendered
 * by transformers' apply_chat_template, see tests/gen_chat_refs.py) must come
 * out byte for byte the same; Jinja semantics probes must match jinja2;
 * malformed and hostile templates must fail with clear errors and never
 * crash; the ChatML fallback must work; and random templates must only ever
 * give a result or a status. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "chat_template.h"
#include "gguf_writer.h"
#include "jinja.h"
#include "json.h"
#include "test.h"

static const char *data_dir(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/chat", CLEAVE_SOURCE_DIR);
    return path;
}

/* Prints where two texts first differ. */
static void show_diff(const char *what, const char *want, size_t want_len, const char *got, size_t got_len) {
    size_t i = 0;
    while (i < want_len && i < got_len && want[i] == got[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  %s: first difference at byte %zu (want %zu bytes, got %zu)\n", what, i, want_len, got_len);
    fprintf(stderr, "    want: ");
    clv_json_fwrite_string(stderr, want + from, (want_len < i + 40 ? want_len : i + 40) - from, false);
    fprintf(stderr, "\n    got : ");
    clv_json_fwrite_string(stderr, got + from, (got_len < i + 40 ? got_len : i + 40) - from, false);
    fprintf(stderr, "\n");
}

/* Renders one case; returns true when it matches the fixture. */
static bool run_case(const char *fixture, const clv_chat_template *t, const clv_json *c, time_t now,
                     const clv_json *extra_override) {
    const char *name = clv_json_get_string(c, "name", "?");
    clv_chat_render_params rp = clv_chat_default_render_params();
    rp.add_generation_prompt = clv_json_bool(clv_json_get(c, "add_generation_prompt"));
    rp.tools = clv_json_get(c, "tools");
    rp.extra_vars = extra_override ? extra_override : clv_json_get(c, "kwargs");
    rp.now = now;
    clv_strbuf out = {0};
    clv_status st = clv_chat_template_render(t, clv_json_get(c, "messages"), &rp, &out);
    bool ok;
    const clv_json *expected = clv_json_get(c, "expected");
    if (expected) {
        ok = st == CLV_OK && out.len == clv_json_string_len(expected) &&
             !memcmp(out.data ? out.data : "", clv_json_string(expected), out.len);
        if (!ok) {
            fprintf(stderr, "%s / %s: mismatch\n", fixture, name);
            if (st != CLV_OK) fprintf(stderr, "  render failed: %s\n", clv_last_error());
            else show_diff("text", clv_json_string(expected), clv_json_string_len(expected), out.data ? out.data : "", out.len);
        }
    } else {
        /* jinja2 failed here; cleave must fail too, and a raise_exception
         * must come out as CLV_ERR_ARG carrying the template's message. */
        const char *kind = clv_json_get_string(c, "error_kind", "");
        const char *msg = clv_json_get_string(c, "error", "");
        ok = st != CLV_OK;
        if (ok && !strcmp(kind, "raise_exception")) ok = st == CLV_ERR_ARG && strstr(clv_last_error(), msg);
        if (!ok)
            fprintf(stderr, "%s / %s: want an error (%s: %s), got %s: %s\n", fixture, name, kind, msg,
                    clv_status_str(st), st == CLV_OK ? (out.data ? out.data : "") : clv_last_error());
    }
    clv_strbuf_free(&out);
    return ok;
}

static void run_template_fixture(const char *path, const char *file) {
    clv_json *fx = NULL;
    if (clv_json_parse_file(path, NULL, &fx) != CLV_OK) {
        CHECK_MSG(false, "%s", clv_last_error());
        return;
    }
    const clv_json *special = clv_json_get(fx, "special_tokens");
    clv_chat_template_params tp = clv_chat_template_default_params();
    tp.bos_token = clv_json_get_string(special, "bos_token", NULL);
    tp.eos_token = clv_json_get_string(special, "eos_token", NULL);
    tp.unk_token = clv_json_get_string(special, "unk_token", NULL);
    tp.sep_token = clv_json_get_string(special, "sep_token", NULL);
    tp.pad_token = clv_json_get_string(special, "pad_token", NULL);
    tp.cls_token = clv_json_get_string(special, "cls_token", NULL);
    tp.mask_token = clv_json_get_string(special, "mask_token", NULL);
    const clv_json *tmpl = clv_json_get(fx, "template");
    clv_chat_template *t = NULL;
    clv_status st = clv_chat_template_new(clv_json_string(tmpl), clv_json_string_len(tmpl), &tp, &t);
    CHECK_MSG(st == CLV_OK, "%s: %s", file, clv_last_error());
    const clv_json *cases = clv_json_get(fx, "cases");
    time_t now = (time_t)clv_json_int(clv_json_get(fx, "now"));
    size_t pass = 0, n = clv_json_count(cases);
    for (size_t i = 0; t && i < n; i++) {
        bool ok = run_case(file, t, clv_json_at(cases, i), now, NULL);
        CHECK(ok);
        pass += ok;
    }
    printf("  %-26s %zu/%zu conversations match\n", clv_json_get_string(fx, "name", file), pass, n);
    clv_chat_template_free(t);
    clv_json_free(fx);
}

static void run_semantics_fixture(const char *path) {
    clv_json *fx = NULL;
    if (clv_json_parse_file(path, NULL, &fx) != CLV_OK) {
        CHECK_MSG(false, "%s", clv_last_error());
        return;
    }
    const clv_json *cases = clv_json_get(fx, "cases");
    const clv_json *messages = clv_json_get(fx, "messages");
    const clv_json *vars = clv_json_get(fx, "variables");
    time_t now = (time_t)clv_json_int(clv_json_get(fx, "now"));
    size_t pass = 0, n = clv_json_count(cases);
    for (size_t i = 0; i < n; i++) {
        const clv_json *c = clv_json_at(cases, i);
        const clv_json *tmpl = clv_json_get(c, "template");
        clv_chat_template *t = NULL;
        bool ok;
        if (clv_chat_template_new(clv_json_string(tmpl), clv_json_string_len(tmpl), NULL, &t) != CLV_OK) {
            ok = clv_json_get(c, "error") != NULL;
            if (!ok)
                fprintf(stderr, "semantics: %s\n  parse failed: %s\n", clv_json_string(tmpl), clv_last_error());
        } else {
            /* run_case reads messages/add_generation_prompt from the case. */
            clv_json *cc = clv_json_clone(c);
            clv_json_set(cc, "messages", clv_json_clone(messages));
            clv_json_set(cc, "add_generation_prompt", clv_json_new_bool(false));
            clv_json_set(cc, "name", clv_json_clone(tmpl));
            ok = run_case("semantics", t, cc, now, vars);
            clv_json_free(cc);
        }
        CHECK(ok);
        pass += ok;
        clv_chat_template_free(t);
    }
    printf("  %-26s %zu/%zu probes match jinja2\n", "jinja semantics", pass, n);
    clv_json_free(fx);
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

static void test_fixtures(void) {
    DIR *d = opendir(data_dir());
    if (!d) {
        CHECK_MSG(false, "cannot open %s", data_dir());
        return;
    }
    char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".json") && len < 256) strcpy(names[n++], e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names); /* the report reads the same every time */
    int templates = 0;
    for (int i = 0; i < n; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%.255s", data_dir(), names[i]);
        if (!strcmp(names[i], "jinja_semantics.json")) {
            run_semantics_fixture(path);
        } else {
            run_template_fixture(path, names[i]);
            templates++;
        }
    }
    CHECK_MSG(templates >= 6, "only %d template fixtures", templates);
}

/* --- malformed and hostile templates ------------------------------------------- */

static clv_json *one_message(void) {
    clv_json *msgs = NULL;
    const char *s = "[{\"role\": \"user\", \"content\": \"hi\"}]";
    clv_json_parse(s, strlen(s), NULL, &msgs);
    return msgs;
}

/* Parses and renders src; checks the status and that the message holds `want`. */
static void expect_failure(const char *src, clv_status want, const char *want_msg) {
    clv_json *msgs = one_message();
    clv_chat_template *t = NULL;
    clv_status st = clv_chat_template_new(src, strlen(src), NULL, &t);
    if (st == CLV_OK) {
        clv_chat_render_params rp = clv_chat_default_render_params();
        rp.max_steps = 2000000;
        rp.max_memory = (size_t)64 << 20;
        rp.max_output = (size_t)1 << 20;
        clv_strbuf out = {0};
        st = clv_chat_template_render(t, msgs, &rp, &out);
        CHECK_MSG(out.len == 0, "failed render changed the output: %s", src);
        clv_strbuf_free(&out);
    }
    CHECK_MSG(st == want, "'%.60s': got %s (%s), want %s", src, clv_status_str(st), clv_last_error(),
              clv_status_str(want));
    CHECK_MSG(strstr(clv_last_error(), want_msg), "'%.60s': message '%s' lacks '%s'", src, clv_last_error(),
              want_msg);
    clv_chat_template_free(t);
    clv_json_free(msgs);
}

static char *repeat_str(const char *unit, int n, const char *prefix, const char *suffix) {
    size_t ul = strlen(unit);
    char *s = malloc(strlen(prefix) + ul * (size_t)n + strlen(suffix) + 1);
    strcpy(s, prefix);
    char *w = s + strlen(prefix);
    for (int i = 0; i < n; i++, w += ul) memcpy(w, unit, ul);
    strcpy(w, suffix);
    return s;
}

static void test_malformed(void) {
    /* Syntax errors name the line and column. */
    expect_failure("{% if x %}never closed", CLV_ERR_FORMAT, "'if' block was not closed");
    expect_failure("a\n{% for m in messages %}\n{{ m }}", CLV_ERR_FORMAT, "line 3");
    expect_failure("{{ messages", CLV_ERR_FORMAT, "unclosed '{{' tag");
    expect_failure("{% if true %}{% endfor %}", CLV_ERR_FORMAT, "unexpected 'endfor'");
    expect_failure("{% endif %}", CLV_ERR_FORMAT, "no block is open");
    expect_failure("{# no end", CLV_ERR_FORMAT, "missing end of comment");
    expect_failure("{% raw %}x", CLV_ERR_FORMAT, "missing end of raw");
    expect_failure("{{ 'abc }}", CLV_ERR_FORMAT, "unterminated string");
    expect_failure("{{ (1 }}", CLV_ERR_FORMAT, "expected ')'");
    expect_failure("{{ 1 + }}", CLV_ERR_FORMAT, "unexpected end of print statement");
    expect_failure("{{ x ! y }}", CLV_ERR_FORMAT, "unexpected character '!'");
    expect_failure("{% frobnicate %}", CLV_ERR_FORMAT, "unknown tag 'frobnicate'");
    expect_failure("{% break %}", CLV_ERR_FORMAT, "outside a for loop");
    expect_failure("{% set true = 1 %}", CLV_ERR_FORMAT, "cannot assign");
    expect_failure("{{ '\\xZZ' }}", CLV_ERR_FORMAT, "truncated");
    expect_failure("line1\nline2 {{ ) }}", CLV_ERR_FORMAT, "line 2, column 10");
    expect_failure("\xff\xfe", CLV_ERR_FORMAT, "not valid UTF-8");
    /* Valid Jinja that cleave does not implement. */
    expect_failure("{{ messages | frobnicate }}", CLV_ERR_UNSUPPORTED, "no filter named 'frobnicate'");
    expect_failure("{% if x is frobnicated %}{% endif %}", CLV_ERR_UNSUPPORTED, "no test named 'frobnicated'");
    expect_failure("{% include 'other.jinja' %}", CLV_ERR_UNSUPPORTED, "'include' tag is not supported");
    expect_failure("{% for x in y recursive %}{% endfor %}", CLV_ERR_UNSUPPORTED, "recursive");
    expect_failure("{{ 'x'.zfill(3) }}", CLV_ERR_UNSUPPORTED, "str.zfill() is not supported");
    /* Run-time errors. */
    expect_failure("{{ raise_exception('Roles must alternate') }}", CLV_ERR_ARG, "Roles must alternate");
    expect_failure("{{ messages[0].content + 1 }}", CLV_ERR_TYPE, "can only concatenate str");
    expect_failure("{{ nothing.here }}", CLV_ERR_TYPE, "'nothing' is undefined");
    expect_failure("{{ 1 // 0 }}", CLV_ERR_TYPE, "division");
    expect_failure("{{ messages.append(1) }}", CLV_ERR_TYPE, "unsafe");
    expect_failure("{% set x = 5 %}{% set x.y = 1 %}", CLV_ERR_TYPE, "non-namespace");
    /* Limits: recursion, long loops, huge ranges and strings, deep nesting. */
    expect_failure("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", CLV_ERR_RANGE, "macro calls nested deeper");
    expect_failure("{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
                   CLV_ERR_RANGE, "steps");
    /* Allocating loops hit the memory limit instead. */
    expect_failure("{% for a in range(100000) %}{% set x = range(100000) %}{% endfor %}", CLV_ERR_RANGE, "memory");
    expect_failure("{{ range(1000000000) }}", CLV_ERR_RANGE, "range too big");
    expect_failure("{{ 'x' * 100000000000 }}", CLV_ERR_RANGE, "memory limit");
    expect_failure("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", CLV_ERR_RANGE,
                   "output grew past");
    expect_failure("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                   CLV_ERR_RANGE, "");
    expect_failure("{{ 9223372036854775807 + 1 }}", CLV_ERR_UNSUPPORTED, "integer overflow");
    /* Operations whose cost grows with the data count against the steps:
     * comparing self-nested lists made by doubling, scanning a large string
     * in a loop, unique() over a long list. */
    expect_failure("{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
                   "{{ ns.x == ns.x }}", CLV_ERR_RANGE, "steps");
    expect_failure("{% set s = 'ab' * 5000000 %}{% for i in range(100000) %}{{ 'z' in s }}{% endfor %}",
                   CLV_ERR_RANGE, "steps");
    expect_failure("{{ range(100000)|unique|list|length }}", CLV_ERR_RANGE, "steps");
    expect_failure("{% set big = range(100000)|list %}{% for i in big %}{{ big|select('odd')|list|length }}{% endfor %}",
                   CLV_ERR_RANGE, "the template"); /* steps or memory, whichever runs out first */
    expect_failure("{% set s = 'ab' * 5000000 %}{% for i in range(100000) %}{{ s|length }}{{ s[-1] }}{% endfor %}",
                   CLV_ERR_RANGE, "steps");
    expect_failure("{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
                   "{{ ns.x|tojson }}", CLV_ERR_RANGE, "");
    char *deep = repeat_str("(", 5000, "{{ ", "");
    expect_failure(deep, CLV_ERR_RANGE, "deeper than");
    free(deep);
    deep = repeat_str("{% if true %}", 500, "", "");
    expect_failure(deep, CLV_ERR_RANGE, "nests deeper");
    free(deep);
    deep = repeat_str("[", 10000, "{{ ", "");
    expect_failure(deep, CLV_ERR_RANGE, "nest deeper than");
    free(deep);
    /* A long flat chain parses (it is a loop) but must not exhaust the stack. */
    deep = repeat_str(" + 1", 200000, "{{ 1", " }}");
    expect_failure(deep, CLV_ERR_RANGE, "nest too deeply");
    free(deep);
    deep = repeat_str("not ", 100000, "{{ ", "1 }}");
    expect_failure(deep, CLV_ERR_RANGE, "nests deeper");
    free(deep);
}

/* --- the ChatML fallback and the API's checks ------------------------------------ */

static void test_fallback_and_api(void) {
    const char *msgs_text =
        "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\", \"name\": null},"
        " {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"parts\"}]}]";
    clv_json *msgs = NULL;
    CHECK_STATUS(clv_json_parse(msgs_text, strlen(msgs_text), NULL, &msgs), CLV_OK);
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n[{\"type\": \"text\", \"text\": \"parts\"}]<|im_end|>\n"
                       "<|im_start|>assistant\n";
    clv_chat_render_params rp = clv_chat_default_render_params();
    rp.add_generation_prompt = true;

    /* No template at all. */
    clv_strbuf out = {0};
    char *warning = NULL;
    CHECK_STATUS(clv_chat_render(NULL, 0, NULL, msgs, &rp, &out, &warning), CLV_OK);
    CHECK(out.data && !strcmp(out.data, want));
    CHECK(warning && strstr(warning, "no chat template") && strstr(warning, "ChatML"));
    free(warning);
    clv_strbuf_free(&out);

    /* A template cleave cannot parse. */
    const char *bad = "{% for m in messages %}{{ m.content | frobnicate }}{% endfor %}";
    CHECK_STATUS(clv_chat_render(bad, strlen(bad), NULL, msgs, &rp, &out, &warning), CLV_OK);
    CHECK(out.data && !strcmp(out.data, want));
    CHECK(warning && strstr(warning, "frobnicate") && strstr(warning, "ChatML"));
    free(warning);
    clv_strbuf_free(&out);

    /* The template's own errors are not hidden by the fallback. */
    const char *strict = "{{ raise_exception('no system prompts') }}";
    CHECK_STATUS(clv_chat_render(strict, strlen(strict), NULL, msgs, &rp, &out, &warning), CLV_ERR_ARG);
    CHECK(warning == NULL && out.len == 0);
    CHECK(strstr(clv_last_error(), "no system prompts") != NULL);

    /* A working template: null members dropped, special tokens passed. */
    const char *good = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.name is defined }};{% endfor %}"
                       "{{ eos_token }}{{ pad_token is defined }}";
    clv_chat_template_params tp = clv_chat_template_default_params();
    tp.bos_token = "<s>";
    tp.eos_token = "</s>";
    CHECK_STATUS(clv_chat_render(good, strlen(good), &tp, msgs, &rp, &out, &warning), CLV_OK);
    CHECK(warning == NULL);
    CHECK(out.data && !strcmp(out.data, "<s>system:False;user:False;assistant:False;</s>False"));
    clv_strbuf_free(&out);

    /* Reasoning is copied to `thinking` and `reasoning_content`. */
    const char *r_text = "[{\"role\": \"assistant\", \"reasoning\": \"because\", \"content\": \"x\"}]";
    clv_json *rmsgs = NULL;
    CHECK_STATUS(clv_json_parse(r_text, strlen(r_text), NULL, &rmsgs), CLV_OK);
    const char *show = "{{ messages[0]|tojson }}";
    CHECK_STATUS(clv_chat_render(show, strlen(show), NULL, rmsgs, &rp, &out, &warning), CLV_OK);
    CHECK(out.data && !strcmp(out.data, "{\"thinking\": \"because\", \"role\": \"assistant\", \"reasoning\": "
                                        "\"because\", \"content\": \"x\", \"reasoning_content\": \"because\"}"));
    clv_strbuf_free(&out);
    clv_json_free(rmsgs);

    /* Bad input is a status. */
    clv_chat_template *t = NULL;
    CHECK_STATUS(clv_chat_template_chatml(NULL, &t), CLV_OK);
    clv_json *empty = clv_json_new_array(), *notarr = clv_json_new_object(), *extra = clv_json_new_object();
    CHECK_STATUS(clv_chat_template_render(t, empty, &rp, &out), CLV_ERR_ARG);
    CHECK_STATUS(clv_chat_template_render(t, notarr, &rp, &out), CLV_ERR_ARG);
    clv_json_append(empty, clv_json_new_int(3));
    CHECK_STATUS(clv_chat_template_render(t, empty, &rp, &out), CLV_ERR_ARG);
    clv_json_set(extra, "messages", clv_json_new_null());
    rp.extra_vars = extra;
    CHECK_STATUS(clv_chat_template_render(t, msgs, &rp, &out), CLV_ERR_ARG);
    CHECK(out.len == 0);
    clv_json_free(empty);
    clv_json_free(notarr);
    clv_json_free(extra);
    clv_chat_template_free(t);
    clv_chat_template_free(NULL);
    clv_jinja_free(NULL);
    clv_json_free(msgs);
}

/* --- random templates ------------------------------------------------------------ */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    clv_strbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) clv_strbuf_append(&b, chunk, n);
    fclose(f);
    return clv_strbuf_take(&b, len);
}

/* Mutates real templates and assembles random token soup; every outcome must
 * be text or a status (run under sanitizers to catch memory errors). */
static void test_random(void) {
    static const char *pieces[] = {
        "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", " if ", " else ", " elif ",
        " endif ", " for ", " in ", " endfor ", " set ", " = ", " ns.x ", "namespace(x=1)", " macro ",
        " endmacro ", " m(", ")", "(", "[", "]", "{", "}", "'a'", "\"b\"", "1", "2.5", "-", "+", "*",
        "/", "//", "%", "**", "~", "|", " trim", " length", " tojson", " join(',')", " default(1)",
        " is ", " not ", " defined", " none", " and ", " or ", ".", "messages", "message", "loop.index",
        "loop", ":", ",", "raise_exception('x')", " true ", "\n", "  ", "x", "range(3)", " break ",
        " continue ", " raw ", " endraw ", "[::-1]", ".split()", " filter ", " endfilter ", " upper",
        "{% for m in messages %}", "{% endfor %}", "{% if m.role == 'user' %}", "{% endif %}",
        "{{ m.content }}", "\xc3\xa9", "\xff", "\\", "'", "\"",
    };
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    static const char *files[] = {"chatml", "gemma3", "llama3.2", "qwen2.5", "deepseek-r1", "hermes2-pro-tools"};
    char *seeds[6];
    size_t seed_len[6];
    for (int i = 0; i < 6; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/templates/%s.jinja", data_dir(), files[i]);
        seeds[i] = read_text(path, &seed_len[i]);
        CHECK_MSG(seeds[i] != NULL, "cannot read %s", path);
        if (!seeds[i]) return;
    }
    const char *msgs_text =
        "[{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"hi \\u00e9\"},"
        " {\"role\": \"assistant\", \"content\": \"yo\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
        " {\"name\": \"f\", \"arguments\": {\"a\": 1}}}]}, {\"role\": \"tool\", \"content\": \"r\"},"
        " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"p\"}]}]";
    clv_json *msgs = NULL;
    clv_json_parse(msgs_text, strlen(msgs_text), NULL, &msgs);
    clv_chat_render_params rp = clv_chat_default_render_params();
    rp.add_generation_prompt = true;
    rp.max_steps = 20000;
    rp.max_memory = (size_t)4 << 20;
    rp.max_output = (size_t)64 << 10;
    int rendered = 0, parse_failed = 0, render_failed = 0;
    char *buf = malloc(1 << 16);
    const int iterations = 6000;
    for (int iter = 0; iter < iterations; iter++) {
        size_t n = 0;
        if (iter % 3 != 2) {
            /* A real template with a few random edits. */
            int k = (int)(rng() % 6);
            memcpy(buf, seeds[k], seed_len[k]);
            n = seed_len[k];
            int edits = 1 + (int)(rng() % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = n ? rng() % n : 0;
                const char *p = pieces[rng() % n_pieces];
                size_t pl = strlen(p);
                switch (rng() % 3) {
                case 0: /* delete a span */
                    if (n) {
                        size_t del = 1 + rng() % 16;
                        if (at + del > n) del = n - at;
                        memmove(buf + at, buf + at + del, n - at - del);
                        n -= del;
                    }
                    break;
                case 1: /* insert a piece */
                    if (n + pl < (1 << 16)) {
                        memmove(buf + at + pl, buf + at, n - at);
                        memcpy(buf + at, p, pl);
                        n += pl;
                    }
                    break;
                default: /* overwrite a byte */
                    if (n) buf[at] = p[0];
                }
            }
        } else {
            int count = 1 + (int)(rng() % 40);
            for (int i = 0; i < count; i++) {
                const char *p = pieces[rng() % n_pieces];
                size_t pl = strlen(p);
                memcpy(buf + n, p, pl);
                n += pl;
            }
        }
        clv_chat_template *t = NULL;
        clv_status st = clv_chat_template_new(buf, n, NULL, &t);
        if (st != CLV_OK) {
            parse_failed++;
            CHECK(t == NULL && clv_last_error()[0] != '\0');
            continue;
        }
        clv_strbuf out = {0};
        st = clv_chat_template_render(t, msgs, &rp, &out);
        if (st == CLV_OK) {
            rendered++;
        } else {
            render_failed++;
            CHECK(out.len == 0 && clv_last_error()[0] != '\0');
        }
        clv_strbuf_free(&out);
        clv_chat_template_free(t);
    }
    printf("  random templates: %d rendered, %d rejected by the parser, %d failed while rendering\n", rendered,
           parse_failed, render_failed);
    CHECK(rendered > 100 && parse_failed > 100);
    free(buf);
    for (int i = 0; i < 6; i++) free(seeds[i]);
    clv_json_free(msgs);
}

/* For the CLI tests: a GGUF that carries Gemma 3's template and tokens, the
 * messages of one fixture conversation and its expected text. */
static int write_cli_files(const char *prefix) {
    char path[4400];
    snprintf(path, sizeof path, "%s/gemma3.json", data_dir());
    clv_json *fx = NULL;
    if (clv_json_parse_file(path, NULL, &fx) != CLV_OK) {
        fprintf(stderr, "%s\n", clv_last_error());
        return 1;
    }
    const clv_json *c = clv_json_at(clv_json_get(fx, "cases"), 1); /* system_and_user */
    const char *tokens[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "hello"};
    clv_gguf_writer *w = NULL;
    snprintf(path, sizeof path, "%s.gguf", prefix);
    clv_status st = clv_gguf_writer_open(path, NULL, &w);
    if (!st) st = clv_gguf_writer_set_str(w, "general.architecture", "gemma3");
    if (!st) st = clv_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st) st = clv_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 7);
    if (!st) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    if (!st) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    if (!st) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    if (!st) st = clv_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    if (!st) st = clv_gguf_writer_set_str(w, "tokenizer.chat_template", clv_json_get_string(fx, "template", ""));
    if (!st) st = clv_gguf_writer_begin_data(w);
    if (!st) st = clv_gguf_writer_finish(w);
    else clv_gguf_writer_free(w);
    snprintf(path, sizeof path, "%s.messages.json", prefix);
    FILE *f = st ? NULL : fopen(path, "wb");
    if (f) {
        clv_json_fwrite(f, clv_json_get(c, "messages"), NULL);
        fclose(f);
        snprintf(path, sizeof path, "%s.expected.txt", prefix);
        f = fopen(path, "wb");
    }
    if (f) {
        fwrite(clv_json_string(clv_json_get(c, "expected")), 1, clv_json_string_len(clv_json_get(c, "expected")), f);
        fclose(f);
    }
    if (st || !f) fprintf(stderr, "writing %s: %s\n", path, st ? clv_last_error() : "cannot open");
    clv_json_free(fx);
    return st || !f ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-cli-files")) return write_cli_files(argv[2]);
    printf("chat template fixtures (expected text from transformers' apply_chat_template):\n");
    test_fixtures();
    test_malformed();
    test_fallback_and_api();
    test_random();
    return test_finish("test_chat_template");
}
