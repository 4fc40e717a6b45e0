/* The `cleave` subcommands: one file per command, one line per command in
 * the table in main.c. Each returns the process exit status. */
#ifndef CLV_CLI_COMMANDS_H
#define CLV_CLI_COMMANDS_H

typedef struct clv_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} clv_command;

int clv_cmd_inspect(int argc, char **argv);
int clv_cmd_tokenize(int argc, char **argv);
int clv_cmd_detokenize(int argc, char **argv);
int clv_cmd_run(int argc, char **argv);
int clv_cmd_chat(int argc, char **argv);
int clv_cmd_perplexity(int argc, char **argv);
int clv_cmd_bench(int argc, char **argv);
int clv_cmd_mkmodel(int argc, char **argv);
int clv_cmd_template(int argc, char **argv);
int clv_cmd_profile(int argc, char **argv);
int clv_cmd_profile_hardware(int argc, char **argv); /* `cleave profile --hardware` */
int clv_cmd_predictor(int argc, char **argv);

#endif
