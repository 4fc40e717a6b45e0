/* Chat templates on top of the Jinja interpreter; see chat_template.h. */
#include "chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

#define N_TOKENS 7

/* transformers' SPECIAL_TOKENS_ATTRIBUTES, in its order. */
static const char *const token_names[N_TOKENS] = {
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
};

struct clv_chat_template {
    clv_jinja *jinja;
    char *tokens[N_TOKENS];
};

/* ChatML, tolerant of content that is not a string (content parts). */
static const char chatml_source[] =
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' ~ message['role'] ~ '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- elif message['content'] is defined and message['content'] is not none -%}"
    "{{- message['content'] | tojson -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

clv_chat_template_params clv_chat_template_default_params(void) {
    clv_chat_template_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* A special token's text from its id key, or NULL when the model has none. */
static const char *gguf_token(const clv_gguf *g, const clv_gguf_value *tokens, const char *key) {
    uint32_t id;
    if (!tokens || clv_gguf_get_u32(g, key, &id) != CLV_OK || id >= tokens->v.arr.count) return NULL;
    return tokens->v.arr.strs[id].data;
}

clv_chat_template_params clv_chat_template_params_from_gguf(const clv_gguf *g) {
    clv_chat_template_params p = clv_chat_template_default_params();
    const clv_gguf_value *tokens = NULL;
    if (clv_gguf_get_arr(g, "tokenizer.ggml.tokens", CLV_GGUF_STRING, &tokens) != CLV_OK) return p;
    p.bos_token = gguf_token(g, tokens, "tokenizer.ggml.bos_token_id");
    p.eos_token = gguf_token(g, tokens, "tokenizer.ggml.eos_token_id");
    p.unk_token = gguf_token(g, tokens, "tokenizer.ggml.unknown_token_id");
    p.sep_token = gguf_token(g, tokens, "tokenizer.ggml.seperator_token_id"); /* GGUF's spelling */
    p.pad_token = gguf_token(g, tokens, "tokenizer.ggml.padding_token_id");
    p.cls_token = gguf_token(g, tokens, "tokenizer.ggml.cls_token_id");
    p.mask_token = gguf_token(g, tokens, "tokenizer.ggml.mask_token_id");
    clv_clear_error(); /* absent keys are not errors here */
    return p;
}

clv_chat_render_params clv_chat_default_render_params(void) {
    clv_chat_render_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static const char *param_token(const clv_chat_template_params *p, int i) {
    if (!p) return NULL;
    const char *const v[N_TOKENS] = {p->bos_token, p->eos_token, p->unk_token, p->sep_token,
                                     p->pad_token, p->cls_token, p->mask_token};
    return v[i];
}

void clv_chat_template_free(clv_chat_template *t) {
    if (!t) return;
    clv_jinja_free(t->jinja);
    for (int i = 0; i < N_TOKENS; i++) free(t->tokens[i]);
    free(t);
}

clv_status clv_chat_template_new(const char *source, size_t len, const clv_chat_template_params *params,
                                 clv_chat_template **out) {
    *out = NULL;
    if (!source) return clv_fail(CLV_ERR_ARG, "chat template: no template text");
    clv_chat_template *t = calloc(1, sizeof *t);
    if (!t) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < N_TOKENS; i++) {
        const char *tok = param_token(params, i);
        if (tok && !(t->tokens[i] = strdup(tok))) {
            clv_chat_template_free(t);
            return clv_fail(CLV_ERR_NOMEM, "out of memory");
        }
    }
    clv_status st = clv_jinja_parse(source, len, &t->jinja);
    if (st != CLV_OK) {
        clv_error_prefix("chat template: ");
        clv_chat_template_free(t);
        return st;
    }
    *out = t;
    return CLV_OK;
}

clv_status clv_chat_template_chatml(const clv_chat_template_params *params, clv_chat_template **out) {
    return clv_chat_template_new(chatml_source, sizeof chatml_source - 1, params, out);
}

/* One message as transformers normalizes it: null members dropped, the
 * reasoning copied to `thinking` (first) and `reasoning_content`. */
static clv_status normalize_message(const clv_json *m, clv_json **out) {
    static const char *const reasoning_fields[] = {"reasoning_content", "thinking", "reasoning"};
    const clv_json *reasoning = NULL;
    for (size_t k = 0; k < 3 && !reasoning; k++) {
        const clv_json *r = clv_json_get(m, reasoning_fields[k]);
        if (r && clv_json_kind_of(r) != CLV_JSON_NULL) reasoning = r;
    }
    clv_json *o = clv_json_new_object();
    if (!o) return clv_fail(CLV_ERR_NOMEM, "out of memory");
    clv_status st = CLV_OK;
    if (reasoning) st = clv_json_set(o, "thinking", clv_json_clone(reasoning));
    for (size_t i = 0; st == CLV_OK && i < clv_json_count(m); i++) {
        const clv_json *v = clv_json_value_at(m, i);
        if (clv_json_kind_of(v) == CLV_JSON_NULL) continue;
        size_t klen;
        const char *key = clv_json_key_at(m, i, &klen);
        st = clv_json_setn(o, key, klen, clv_json_clone(v));
    }
    if (st == CLV_OK && reasoning) st = clv_json_set(o, "reasoning_content", clv_json_clone(reasoning));
    if (st != CLV_OK) {
        clv_json_free(o);
        return st;
    }
    *out = o;
    return CLV_OK;
}

static bool reserved_var(const char *key, size_t len) {
    static const char *const names[] = {"messages", "tools", "documents", "add_generation_prompt"};
    for (size_t i = 0; i < 4; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], key, len)) return true;
    return false;
}

/* The template's variables, as apply_chat_template passes them. */
static clv_status build_vars(const clv_chat_template *t, const clv_json *messages,
                             const clv_chat_render_params *p, clv_json **out) {
    *out = NULL;
    if (clv_json_kind_of(messages) != CLV_JSON_ARRAY)
        return clv_fail(CLV_ERR_ARG, "chat: messages must be a JSON array, not %s",
                        clv_json_kind_name(clv_json_kind_of(messages)));
    if (clv_json_count(messages) == 0)
        return clv_fail(CLV_ERR_ARG, "chat: cannot apply a chat template to an empty conversation");
    if (p->tools && clv_json_kind_of(p->tools) != CLV_JSON_ARRAY && clv_json_kind_of(p->tools) != CLV_JSON_NULL)
        return clv_fail(CLV_ERR_ARG, "chat: tools must be a JSON array of tool schemas");
    if (p->extra_vars && clv_json_kind_of(p->extra_vars) != CLV_JSON_OBJECT)
        return clv_fail(CLV_ERR_ARG, "chat: extra template variables must be a JSON object");
    clv_json *vars = clv_json_new_object();
    clv_json *msgs = clv_json_new_array();
    if (!vars || !msgs) {
        clv_json_free(vars);
        clv_json_free(msgs);
        return clv_fail(CLV_ERR_NOMEM, "out of memory");
    }
    clv_status st = CLV_OK;
    for (size_t i = 0; st == CLV_OK && i < clv_json_count(messages); i++) {
        const clv_json *m = clv_json_at(messages, i);
        if (clv_json_kind_of(m) != CLV_JSON_OBJECT) {
            st = clv_fail(CLV_ERR_ARG, "chat: messages[%zu] is %s, not an object", i,
                          clv_json_kind_name(clv_json_kind_of(m)));
            break;
        }
        clv_json *nm = NULL;
        st = normalize_message(m, &nm);
        if (st == CLV_OK) st = clv_json_append(msgs, nm);
    }
    if (st != CLV_OK) {
        clv_json_free(msgs);
        clv_json_free(vars);
        return st;
    }
    st = clv_json_set(vars, "messages", msgs);
    if (st == CLV_OK) st = clv_json_set(vars, "tools", p->tools ? clv_json_clone(p->tools) : clv_json_new_null());
    if (st == CLV_OK)
        st = clv_json_set(vars, "documents", p->documents ? clv_json_clone(p->documents) : clv_json_new_null());
    if (st == CLV_OK) st = clv_json_set(vars, "add_generation_prompt", clv_json_new_bool(p->add_generation_prompt));
    for (int i = 0; st == CLV_OK && i < N_TOKENS; i++)
        if (t->tokens[i]) st = clv_json_set(vars, token_names[i], clv_json_new_cstring(t->tokens[i]));
    for (size_t i = 0; st == CLV_OK && p->extra_vars && i < clv_json_count(p->extra_vars); i++) {
        size_t klen;
        const char *key = clv_json_key_at(p->extra_vars, i, &klen);
        if (reserved_var(key, klen)) {
            st = clv_fail(CLV_ERR_ARG, "chat: extra variable '%.*s' would replace one the template is given",
                          (int)klen, key);
            break;
        }
        st = clv_json_setn(vars, key, klen, clv_json_clone(clv_json_value_at(p->extra_vars, i)));
    }
    if (st != CLV_OK) {
        clv_json_free(vars);
        return st;
    }
    *out = vars;
    return CLV_OK;
}

clv_status clv_chat_template_render(const clv_chat_template *t, const clv_json *messages,
                                    const clv_chat_render_params *params, clv_strbuf *out) {
    if (!t || !out) return clv_fail(CLV_ERR_ARG, "chat: no template or output");
    clv_chat_render_params dp = clv_chat_default_render_params();
    const clv_chat_render_params *p = params ? params : &dp;
    clv_json *vars;
    clv_status st = build_vars(t, messages, p, &vars);
    if (st != CLV_OK) return st;
    clv_jinja_render_params jp = clv_jinja_default_render_params();
    jp.now = p->now;
    if (p->max_steps) jp.max_steps = p->max_steps;
    if (p->max_memory) jp.max_memory = p->max_memory;
    if (p->max_output) jp.max_output = p->max_output;
    /* Render aside so that a failure leaves out untouched. */
    clv_strbuf text = {0};
    st = clv_jinja_render(t->jinja, vars, &jp, &text);
    clv_json_free(vars);
    if (st == CLV_OK) {
        clv_strbuf_append(out, text.data ? text.data : "", text.len);
        st = clv_strbuf_status(out);
    } else {
        clv_error_prefix("chat template: ");
    }
    clv_strbuf_free(&text);
    return st;
}

/* A malloc'd "<what>; using ChatML instead" sentence. */
static char *fallback_warning(const char *what) {
    const char *tail = "; rendering the conversation as ChatML instead";
    size_t n = strlen(what) + strlen(tail) + 1;
    char *w = malloc(n);
    if (w) snprintf(w, n, "%s%s", what, tail);
    return w;
}

static clv_status render_chatml(const clv_chat_template_params *tparams, const clv_json *messages,
                                const clv_chat_render_params *params, clv_strbuf *out) {
    clv_chat_template *t;
    clv_status st = clv_chat_template_chatml(tparams, &t);
    if (st == CLV_OK) st = clv_chat_template_render(t, messages, params, out);
    clv_chat_template_free(t);
    return st;
}

clv_status clv_chat_render(const char *source, size_t len, const clv_chat_template_params *tparams,
                           const clv_json *messages, const clv_chat_render_params *params,
                           clv_strbuf *out, char **warning) {
    *warning = NULL;
    char reason[768];
    if (!source || len == 0) {
        snprintf(reason, sizeof reason, "the model has no chat template");
    } else {
        clv_chat_template *t;
        clv_status st = clv_chat_template_new(source, len, tparams, &t);
        if (st == CLV_ERR_NOMEM) return st;
        if (st == CLV_OK) {
            st = clv_chat_template_render(t, messages, params, out);
            clv_chat_template_free(t);
            if (st != CLV_ERR_UNSUPPORTED) return st;
        }
        snprintf(reason, sizeof reason, "the model's chat template cannot be used (%s)", clv_last_error());
    }
    *warning = fallback_warning(reason);
    clv_status st = render_chatml(tparams, messages, params, out);
    if (st != CLV_OK) {
        free(*warning);
        *warning = NULL;
    }
    return st;
}
