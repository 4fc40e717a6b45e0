/* JSON parser, builder and writer: results that match Python's json module,
 * errors with line and column, and hostile inputs that must not crash. */
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "test.h"

static clv_json *parse(const char *s) {
    clv_json *v = NULL;
    clv_status st = clv_json_parse(s, strlen(s), NULL, &v);
    CHECK_MSG(st == CLV_OK, "parse %s: %s", s, clv_last_error());
    return v;
}

/* Parses s, writes it back with p, compares with want. */
static void roundtrip(const char *s, const clv_json_write_params *p, const char *want) {
    clv_json *v = parse(s);
    if (!v) return;
    size_t len;
    char *out = clv_json_to_string(v, p, &len);
    CHECK_MSG(out && !strcmp(out, want), "%s -> %s, want %s", s, out ? out : "(null)", want);
    free(out);
    clv_json_free(v);
}

static void expect_error(const char *s, const char *want_in_msg) {
    clv_json *v = (clv_json *)1;
    clv_status st = clv_json_parse(s, strlen(s), NULL, &v);
    CHECK_MSG(st != CLV_OK && v == NULL, "'%s' parsed but should not", s);
    CHECK_MSG(strstr(clv_last_error(), want_in_msg), "'%s': message '%s' lacks '%s'", s,
              clv_last_error(), want_in_msg);
}

static void test_parse_basic(void) {
    clv_json *v = parse("{\"a\": [1, 2.5, -3e2, true, false, null], \"b\": \"x\\u00e9\\n\", \"c\": {}}");
    CHECK(clv_json_kind_of(v) == CLV_JSON_OBJECT);
    CHECK_EQ_INT(clv_json_count(v), 3);
    const clv_json *a = clv_json_get(v, "a");
    CHECK_EQ_INT(clv_json_count(a), 6);
    CHECK(clv_json_is_int(clv_json_at(a, 0)) && clv_json_int(clv_json_at(a, 0)) == 1);
    CHECK(!clv_json_is_int(clv_json_at(a, 1)) && clv_json_number(clv_json_at(a, 1)) == 2.5);
    CHECK(!clv_json_is_int(clv_json_at(a, 2)) && clv_json_number(clv_json_at(a, 2)) == -300.0);
    CHECK(clv_json_bool(clv_json_at(a, 3)) && !clv_json_bool(clv_json_at(a, 4)));
    CHECK(clv_json_kind_of(clv_json_at(a, 5)) == CLV_JSON_NULL);
    CHECK(clv_json_at(a, 6) == NULL);
    CHECK(!strcmp(clv_json_string(clv_json_get(v, "b")), "x\xc3\xa9\n"));
    CHECK_EQ_INT(clv_json_string_len(clv_json_get(v, "b")), 4);
    CHECK(clv_json_get(v, "zz") == NULL);
    size_t klen;
    CHECK(!strcmp(clv_json_key_at(v, 2, &klen), "c") && klen == 1);
    CHECK(!strcmp(clv_json_get_string(v, "b", "?"), "x\xc3\xa9\n"));
    CHECK(!strcmp(clv_json_get_string(v, "a", "?"), "?"));
    clv_json_free(v);

    /* Embedded NUL, surrogate pairs, lone surrogates (no UTF-8 form: U+FFFD). */
    v = parse("\"a\\u0000b\\ud83d\\ude00\\ud800x\"");
    CHECK_EQ_INT(clv_json_string_len(v), 1 + 1 + 1 + 4 + 3 + 1);
    CHECK(!memcmp(clv_json_string(v), "a\0b\xf0\x9f\x98\x80\xef\xbf\xbdx", 11));
    clv_json_free(v);

    /* Big integers stay numbers, not ints. */
    v = parse("[9223372036854775807, 9223372036854775808, -0, 1E2]");
    CHECK(clv_json_is_int(clv_json_at(v, 0)) && clv_json_int(clv_json_at(v, 0)) == INT64_MAX);
    CHECK(!clv_json_is_int(clv_json_at(v, 1)));
    CHECK(clv_json_is_int(clv_json_at(v, 2)));
    CHECK(!clv_json_is_int(clv_json_at(v, 3)) && clv_json_number(clv_json_at(v, 3)) == 100.0);
    clv_json_free(v);

    /* Byte order mark and surrounding whitespace. */
    v = parse("\xEF\xBB\xBF \n[ ]\r\n");
    CHECK(clv_json_kind_of(v) == CLV_JSON_ARRAY && clv_json_count(v) == 0);
    clv_json_free(v);
}

static void test_duplicates(void) {
    /* Python: the last value wins, at the first key's position. */
    clv_json_write_params p = clv_json_default_write_params();
    roundtrip("{\"a\":1,\"b\":2,\"a\":3}", &p, "{\"a\": 3, \"b\": 2}");
    /* The same through the sorted index of a large object. */
    char big[2048];
    char *w = big;
    w += sprintf(w, "{");
    for (int i = 0; i < 40; i++) w += sprintf(w, "\"k%02d\": %d, ", i, i);
    w += sprintf(w, "\"k05\": 500, \"k39\": 3900, \"k05\": 5000}");
    clv_json *v = parse(big);
    CHECK_EQ_INT(clv_json_count(v), 40);
    CHECK_EQ_INT(clv_json_int(clv_json_get(v, "k05")), 5000);
    CHECK_EQ_INT(clv_json_int(clv_json_get(v, "k39")), 3900);
    CHECK_EQ_INT(clv_json_int(clv_json_get(v, "k17")), 17);
    size_t kl;
    CHECK(!strcmp(clv_json_key_at(v, 5, &kl), "k05"));
    CHECK(clv_json_get(v, "k40") == NULL);
    clv_json_free(v);
}

static void test_errors(void) {
    expect_error("", "line 1, column 1");
    expect_error("[1,2", "unterminated array");
    expect_error("[1,]", "trailing comma");
    expect_error("{\"a\":1,}", "trailing comma");
    expect_error("{\"a\" 1}", "expected ':'");
    expect_error("{a:1}", "expected a string key");
    expect_error("[1 2]", "expected ',' or ']'");
    expect_error("\"abc", "unterminated string");
    expect_error("\"a\tb\"", "control character");
    expect_error("\"\\x\"", "unknown escape");
    expect_error("\"\\u12G4\"", "bad \\u escape");
    expect_error("\"\xff\"", "invalid UTF-8");
    expect_error("\"\xc0\xaf\"", "invalid UTF-8"); /* overlong */
    expect_error("\"\xed\xa0\x80\"", "invalid UTF-8"); /* encoded surrogate */
    expect_error("01", "extra data");
    expect_error("1.", "digits must follow '.'");
    expect_error("1e", "digits must follow the exponent");
    expect_error("-", "invalid number");
    expect_error("NaN", "unexpected character");
    expect_error("tru", "unexpected character");
    expect_error("[1] [2]", "extra data");
    expect_error("{\"a\":\n  [1,\n   x]}", "line 3, column 4");
    /* Column counts characters, not bytes. */
    expect_error("[\"\xc3\xa9\xc3\xa9\", x]", "line 1, column 8");

    /* Depth limit. */
    char deep[3000];
    memset(deep, '[', 2000);
    deep[2000] = '\0';
    expect_error(deep, "nesting deeper than 512");
    clv_json_parse_params pp = clv_json_default_parse_params();
    pp.max_depth = 3;
    clv_json *v = NULL;
    CHECK_STATUS(clv_json_parse("[[[1]]]", 7, &pp, &v), CLV_OK);
    clv_json_free(v);
    CHECK_STATUS(clv_json_parse("[[[[1]]]]", 9, &pp, &v), CLV_ERR_RANGE);
    pp = clv_json_default_parse_params();
    pp.max_bytes = 4;
    CHECK_STATUS(clv_json_parse("[1, 2]", 6, &pp, &v), CLV_ERR_RANGE);
    CHECK_STATUS(clv_json_parse_file("/nonexistent/x.json", NULL, &v), CLV_ERR_IO);
}

static void test_write(void) {
    clv_json_write_params p = clv_json_default_write_params();
    /* Expected strings come from Python's json.dumps with the same options. */
    roundtrip("{\"a\": [1, 2.5, true, null], \"b\": {}, \"c\": []}", &p,
              "{\"a\": [1, 2.5, true, null], \"b\": {}, \"c\": []}");
    roundtrip("\"\\u00e9\\u4e2d\\ud83d\\ude00 \\\" \\\\ / \\b\\f\\n\\r\\t \\u0001 \\u007f\"", &p,
              "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 \\\" \\\\ / \\b\\f\\n\\r\\t \\u0001 \x7f\"");
    p.ensure_ascii = true;
    roundtrip("\"\\u00e9\\u4e2d\\ud83d\\ude00 \\u007f\"", &p,
              "\"\\u00e9\\u4e2d\\ud83d\\ude00 \\u007f\"");
    p = clv_json_default_write_params();
    p.indent = 2;
    roundtrip("{\"a\": [1, {\"x\": []}], \"b\": {}}", &p,
              "{\n  \"a\": [\n    1,\n    {\n      \"x\": []\n    }\n  ],\n  \"b\": {}\n}");
    p.indent = 0;
    roundtrip("[1,[2]]", &p, "[\n1,\n[\n2\n]\n]");
    p = clv_json_default_write_params();
    p.item_sep = ",";
    p.key_sep = ":";
    roundtrip("{\"a\": [1, 2]}", &p, "{\"a\":[1,2]}");
    p = clv_json_default_write_params();
    p.sort_keys = true;
    roundtrip("{\"b\": 1, \"a\": {\"z\": 1, \"y\": 2}, \"\xc3\xa9\": 0, \"B\": 3}", &p,
              "{\"B\": 3, \"a\": {\"y\": 2, \"z\": 1}, \"b\": 1, \"\xc3\xa9\": 0}");
    p = clv_json_default_write_params();
    roundtrip("[1e16, 1e15, 0.0001, 0.00001, 0.1, 1.5e300, -2.0, 123456789.125, 1e-7, 5e-324]", &p,
              "[1e+16, 1000000000000000.0, 0.0001, 1e-05, 0.1, 1.5e+300, -2.0, 123456789.125, "
              "1e-07, 5e-324]");
    roundtrip("[0.30000000000000004, 1.7976931348623157e308, 100.0, 2.5e-5]",
              &p, "[0.30000000000000004, 1.7976931348623157e+308, 100.0, 2.5e-05]");

    /* Invalid UTF-8 handed to the writer still gives valid JSON. */
    clv_strbuf b = {0};
    clv_json_write_string(&b, "a\xffz\xe2\x82", 5, false);
    CHECK(!strcmp(b.data, "\"a\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\""));
    clv_strbuf_free(&b);

    char buf[32];
    clv_json_format_double(buf, 1.0 / 3);
    CHECK(!strcmp(buf, "0.3333333333333333"));
    clv_json_format_double(buf, -0.0);
    CHECK(!strcmp(buf, "-0.0"));
    clv_json_format_double(buf, 1e22);
    CHECK(!strcmp(buf, "1e+22"));
    clv_json_format_double(buf, 9007199254740993.0);
    CHECK(!strcmp(buf, "9007199254740992.0"));
}

static void test_builder_and_writer(void) {
    clv_json *o = clv_json_new_object();
    CHECK_STATUS(clv_json_set(o, "name", clv_json_new_cstring("q\"x")), CLV_OK);
    clv_json *arr = clv_json_new_array();
    CHECK_STATUS(clv_json_append(arr, clv_json_new_int(-5)), CLV_OK);
    CHECK_STATUS(clv_json_append(arr, clv_json_new_number(0.5)), CLV_OK);
    CHECK_STATUS(clv_json_append(arr, clv_json_new_bool(true)), CLV_OK);
    CHECK_STATUS(clv_json_append(arr, clv_json_new_null()), CLV_OK);
    CHECK_STATUS(clv_json_set(o, "arr", arr), CLV_OK);
    CHECK_STATUS(clv_json_set(o, "name", clv_json_new_cstring("y")), CLV_OK); /* replaces */
    CHECK_STATUS(clv_json_append(o, clv_json_new_null()), CLV_ERR_TYPE);
    CHECK_STATUS(clv_json_append(arr, NULL), CLV_ERR_NOMEM);
    for (int i = 0; i < 30; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        CHECK_STATUS(clv_json_set(o, k, clv_json_new_int(i)), CLV_OK);
    }
    CHECK_EQ_INT(clv_json_int(clv_json_get(o, "k29")), 29);
    CHECK_STATUS(clv_json_set(o, "k3", clv_json_new_int(33)), CLV_OK);
    CHECK_EQ_INT(clv_json_int(clv_json_get(o, "k3")), 33);
    CHECK_EQ_INT(clv_json_count(o), 32);
    clv_json *c = clv_json_clone(o);
    char *s1 = clv_json_to_string(o, NULL, NULL), *s2 = clv_json_to_string(c, NULL, NULL);
    CHECK(s1 && s2 && !strcmp(s1, s2));
    CHECK(!strncmp(s1, "{\"name\": \"y\", \"arr\": [-5, 0.5, true, null], \"k0\": 0", 50));
    free(s1);
    free(s2);
    clv_json_free(c);
    clv_json_free(o);

    /* Streaming writer. */
    clv_strbuf b = {0};
    clv_json_writer w;
    clv_json_write_params p = clv_json_default_write_params();
    p.indent = 2;
    clv_json_writer_init_buf(&w, &b, &p);
    clv_json_begin_object(&w);
    clv_json_key(&w, "n");
    clv_json_uint_value(&w, 18446744073709551615ull);
    clv_json_key(&w, "list");
    clv_json_begin_array(&w);
    clv_json_string_value(&w, "a");
    clv_json_double_value(&w, 2.0);
    clv_json_end_array(&w);
    clv_json_key(&w, "empty");
    clv_json_begin_object(&w);
    clv_json_end_object(&w);
    clv_json_end_object(&w);
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_OK);
    CHECK(!strcmp(b.data, "{\n  \"n\": 18446744073709551615,\n  \"list\": [\n    \"a\",\n    2.0\n  ],"
                          "\n  \"empty\": {}\n}"));
    clv_strbuf_free(&b);

    /* Misuse is a status, not a crash. */
    clv_json_writer_init_buf(&w, &b, NULL);
    clv_json_begin_array(&w);
    clv_json_key(&w, "x");
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_ERR_ARG);
    clv_strbuf_free(&b);
    clv_json_writer_init_buf(&w, &b, NULL);
    clv_json_begin_object(&w);
    clv_json_null(&w);
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_ERR_ARG);
    clv_strbuf_free(&b);
    clv_json_writer_init_buf(&w, &b, NULL);
    clv_json_begin_array(&w);
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_ERR_ARG);
    clv_strbuf_free(&b);
    clv_json_writer_init_buf(&w, &b, NULL);
    clv_json_double_value(&w, NAN);
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_ERR_RANGE);
    clv_strbuf_free(&b);
    p = clv_json_default_write_params();
    p.allow_nan = true;
    clv_json_writer_init_buf(&w, &b, &p);
    clv_json_begin_array(&w);
    clv_json_double_value(&w, NAN);
    clv_json_double_value(&w, -INFINITY);
    clv_json_end_array(&w);
    CHECK_STATUS(clv_json_writer_finish(&w), CLV_OK);
    CHECK(!strcmp(b.data, "[NaN, -Infinity]"));
    clv_strbuf_free(&b);
}

/* Random mutations of valid documents: every outcome is a tree or a status. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void test_random(void) {
    static const char *seeds[] = {
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi \\u00e9\"}], \"n\": [1, -2.5e3]}",
        "[true, false, null, \"\\ud83d\\ude00\", {\"a\": {\"b\": [[]]}}]",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    };
    const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnrl \n\xc3\xa9\xff";
    char buf[256];
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int muts = 1 + (int)(rng() % 4);
        for (int m = 0; m < muts; m++) {
            size_t at = rng() % n;
            switch (rng() % 3) {
            case 0: buf[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
            case 1: if (n > 1) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
            default:
                if (n < sizeof buf - 1) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = alphabet[rng() % (sizeof alphabet - 1)];
                    n++;
                }
            }
        }
        clv_json *v = NULL;
        if (clv_json_parse(buf, n, NULL, &v) == CLV_OK) {
            char *s = clv_json_to_string(v, NULL, NULL);
            CHECK(s != NULL);
            /* What we write must parse again to the same text. */
            clv_json *v2 = NULL;
            CHECK(s && clv_json_parse(s, strlen(s), NULL, &v2) == CLV_OK);
            char *s2 = v2 ? clv_json_to_string(v2, NULL, NULL) : NULL;
            CHECK(s && s2 && !strcmp(s, s2));
            free(s);
            free(s2);
            clv_json_free(v2);
            clv_json_free(v);
            ok++;
        } else {
            CHECK(v == NULL && strstr(clv_last_error(), "line "));
            bad++;
        }
    }
    CHECK(ok > 100 && bad > 100);
}

int main(void) {
    test_parse_basic();
    test_duplicates();
    test_errors();
    test_write();
    test_builder_and_writer();
    test_random();
    return test_finish("test_json");
}
