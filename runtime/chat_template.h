/* Chat templates: turns a conversation into the prompt text a model expects,
 * by running the model's `tokenizer.chat_template` (Jinja) exactly as
 * Hugging Face transformers' apply_chat_template does:
 *
 *   - the template sees `messages`, `tools` (None unless given), `documents`
 *     (None), `add_generation_prompt`, the special tokens that are set
 *     (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
 *     mask_token) and any extra variables, which may override the tokens;
 *   - message keys whose value is null are dropped, and a message's reasoning
 *     (reasoning_content, thinking or reasoning) is copied under the names
 *     `thinking` and `reasoning_content`, as transformers 5 does;
 *   - raise_exception() and strftime_now() are available; tojson takes
 *     json.dumps' options (ensure_ascii, indent, separators, sort_keys).
 *
 * When a template cannot be parsed, or uses Jinja that cleave does not
 * implement, clv_chat_render() falls back to ChatML and says why. */
#ifndef CLV_CHAT_TEMPLATE_H
#define CLV_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gguf.h"
#include "json.h"
#include "status.h"
#include "strbuf.h"

typedef struct clv_chat_template clv_chat_template;

/* The tokenizer's special tokens as strings; NULL ones are not passed to the
 * template (transformers passes only those that are set). */
typedef struct clv_chat_template_params {
    const char *bos_token;
    const char *eos_token;
    const char *unk_token;
    const char *sep_token;
    const char *pad_token;
    const char *cls_token;
    const char *mask_token;
} clv_chat_template_params;

clv_chat_template_params clv_chat_template_default_params(void); /* all NULL */

/* The special tokens of a GGUF file's vocabulary (tokenizer.ggml.*_token_id
 * looked up in tokenizer.ggml.tokens); the strings point into g. */
clv_chat_template_params clv_chat_template_params_from_gguf(const clv_gguf *g);

/* Parses a template (Jinja source, UTF-8). Failure: CLV_ERR_FORMAT for a
 * syntax error, CLV_ERR_UNSUPPORTED for Jinja cleave does not implement; the
 * message names the template line and column. params may be NULL. */
clv_status clv_chat_template_new(const char *source, size_t len, const clv_chat_template_params *params,
                                 clv_chat_template **out);
/* The built-in ChatML template (<|im_start|>role\ncontent<|im_end|>\n). */
clv_status clv_chat_template_chatml(const clv_chat_template_params *params, clv_chat_template **out);
void clv_chat_template_free(clv_chat_template *t); /* accepts NULL */

typedef struct clv_chat_render_params {
    bool add_generation_prompt;
    const clv_json *tools;      /* array of tool schemas, or NULL (the template sees None) */
    const clv_json *documents;  /* array, or NULL */
    const clv_json *extra_vars; /* object of more variables (enable_thinking, date_string, ...) or NULL */
    time_t now;                 /* what strftime_now() formats; 0: the current time */
    uint64_t max_steps;         /* 0: the interpreter's defaults */
    size_t max_memory;
    size_t max_output;
} clv_chat_render_params;

clv_chat_render_params clv_chat_default_render_params(void);

/* Renders `messages` (a JSON array of message objects) and appends the text
 * to out. CLV_ERR_ARG: bad messages, or the template rejected them through
 * raise_exception (whose message is passed on); CLV_ERR_TYPE: the template
 * failed on the data (an undefined value, a type error); CLV_ERR_RANGE: a
 * limit was hit; CLV_ERR_UNSUPPORTED: the template used something cleave
 * does not implement. On failure out is left as it was. */
clv_status clv_chat_template_render(const clv_chat_template *t, const clv_json *messages,
                                    const clv_chat_render_params *params, clv_strbuf *out);

/* Parse and render in one go, with the ChatML fallback: when `source` is NULL
 * or empty, cannot be parsed, or fails with CLV_ERR_UNSUPPORTED, the
 * conversation is rendered with ChatML instead and *warning receives a
 * malloc'd sentence saying why (free it); otherwise *warning is NULL. Errors
 * that a fallback would hide (raise_exception, bad data) are returned. */
clv_status clv_chat_render(const char *source, size_t len, const clv_chat_template_params *tparams,
                           const clv_json *messages, const clv_chat_render_params *params,
                           clv_strbuf *out, char **warning);

#endif
