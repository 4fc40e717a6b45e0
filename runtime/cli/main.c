/* `cleave`: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const clv_command commands[] = {
    {"inspect", "show a GGUF file's metadata, tensors and sizes", clv_cmd_inspect},
    {"tokenize", "turn text into token ids with a model's tokenizer", clv_cmd_tokenize},
    {"detokenize", "turn token ids back into text", clv_cmd_detokenize},
    {"run", "complete a prompt, streaming the text", clv_cmd_run},
    {"chat", "chat with a model, using its chat template", clv_cmd_chat},
    {"bench", "prompt and generation speed (pp512 / tg128) and bandwidth per tier", clv_cmd_bench},
    {"perplexity", "perplexity of a model on a text (llama-perplexity conventions)", clv_cmd_perplexity},
    {"mkmodel", "write a synthetic model of a real shape with planted statistics", clv_cmd_mkmodel},
    {"template", "render a conversation with the model's chat template", clv_cmd_template},
    {"profile", "count hot neurons and experts on calibration text; measure the hardware", clv_cmd_profile},
    {"predictor", "train and evaluate activation predictors from a profile", clv_cmd_predictor},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f) {
    fprintf(f, "usage: cleave COMMAND [options]\n\n"
               "cleave runs large language models, above all large Mixture-of-Experts\n"
               "models, on a machine whose GPU is too small to hold them.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`cleave COMMAND --help` lists a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("cleave " CLEAVE_VERSION "\n");
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "cleave: unknown command '%s'\n\n", name);
    print_usage(stderr);
    return 2;
}
