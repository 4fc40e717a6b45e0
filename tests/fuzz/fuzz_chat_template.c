/* libFuzzer target for chat templates (built with clang, see
 * tests/CMakeLists.txt): the input is a template; it is parsed and rendered
 * with a fixed conversation (system, user, tool call, tool result, content
 * parts) and tight limits. Checks: no crash, no leak, and every failure
 * carries a message. Seed it with tests/data/chat/templates/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conversation[] =
    "[{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"hi \\u00e9 \\ud83d\\ude00\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>r</think>yo\", \"tool_calls\": [{\"id\": \"call_123456789\","
    "  \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, null]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"call_123456789\", \"content\": \"r\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"p\"}, {\"type\": \"image\"}]}]";

static const char tools[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\":"
    " {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"items\": {\"type\": \"number\"}}}}}}]";

static clv_json *messages, *tool_list;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!messages) {
        if (clv_json_parse(conversation, sizeof conversation - 1, NULL, &messages) ||
            clv_json_parse(tools, sizeof tools - 1, NULL, &tool_list)) {
            fprintf(stderr, "fuzz_chat_template: %s\n", clv_last_error());
            abort();
        }
    }
    clv_chat_template_params tp = clv_chat_template_default_params();
    tp.bos_token = "<s>";
    tp.eos_token = "</s>";
    clv_chat_template *t = NULL;
    clv_status st = clv_chat_template_new((const char *)data, size, &tp, &t);
    if (st != CLV_OK) {
        if (!clv_last_error()[0]) abort();
        return 0;
    }
    clv_chat_render_params rp = clv_chat_default_render_params();
    rp.add_generation_prompt = size & 1;
    rp.tools = size & 2 ? tool_list : NULL;
    rp.now = 1721995200;
    rp.max_steps = 100000;
    rp.max_memory = (size_t)16 << 20;
    rp.max_output = (size_t)1 << 20;
    clv_strbuf out = {0};
    st = clv_chat_template_render(t, messages, &rp, &out);
    if (st != CLV_OK && (!clv_last_error()[0] || out.len)) abort();
    clv_strbuf_free(&out);
    clv_chat_template_free(t);
    return 0;
}
