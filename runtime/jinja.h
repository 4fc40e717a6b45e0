/* A Jinja2 interpreter for the subset that chat templates use, configured the
 * way Hugging Face transformers configures jinja2 for apply_chat_template
 * (trim_blocks, lstrip_blocks, loop controls, the `generation` tag,
 * raise_exception, strftime_now, tojson with json.dumps options). Values
 * follow Python's semantics: undefined variables, truthiness, str() and
 * repr() of containers, integer and float arithmetic, string methods.
 *
 * Templates come from model files and are treated as hostile: parsing bounds
 * nesting, rendering bounds steps, memory, output size and call depth, and
 * every failure is a status with a message naming the template line and
 * column. Status codes:
 *   CLV_ERR_FORMAT      syntax error in the template
 *   CLV_ERR_UNSUPPORTED valid Jinja that this interpreter does not implement
 *   CLV_ERR_ARG         the template called raise_exception (its message)
 *   CLV_ERR_TYPE        a run-time type or undefined-value error
 *   CLV_ERR_RANGE       a limit was hit (steps, memory, output, depth)
 */
#ifndef CLV_JINJA_H
#define CLV_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "json.h"
#include "status.h"
#include "strbuf.h"

typedef struct clv_jinja clv_jinja;

/* Parses a template. The source is copied; it must be UTF-8. */
clv_status clv_jinja_parse(const char *source, size_t len, clv_jinja **out);
void clv_jinja_free(clv_jinja *t); /* accepts NULL */

typedef struct clv_jinja_render_params {
    uint64_t max_steps;   /* evaluation steps (default 20 million) */
    size_t max_memory;    /* bytes of values built while rendering (default 256 MiB) */
    size_t max_output;    /* bytes of output (default 64 MiB) */
    int max_call_depth;   /* nested macro calls (default 64) */
    /* The time strftime_now() formats, as local time; 0: the current time. */
    time_t now;
} clv_jinja_render_params;

clv_jinja_render_params clv_jinja_default_render_params(void);

/* Renders the template with the members of `vars` (a JSON object, or NULL) as
 * variables, appending the text to out. JSON null is Python None; integers
 * stay integers. params may be NULL for the defaults. On failure out holds
 * whatever was rendered before the error. */
clv_status clv_jinja_render(const clv_jinja *t, const clv_json *vars,
                            const clv_jinja_render_params *params, clv_strbuf *out);

#endif
