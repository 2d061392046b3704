/*
 * cli.h - this file is private to the sysrepl command line (cli/).
 *
 * Commands and their options are tables (main.c); the same tables drive
 * parsing and every --help text, so they cannot disagree. What every
 * command shares (messages, options, the store connection) is context.c. A command's run
 * function gets the parsed arguments and returns an exit code.
 */
#ifndef SRL_CLI_H
#define SRL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "sysrepl/config.h"
#include "sysrepl/model.h"
#include "sysrepl/store.h"

/* Exit codes (documented in `sysrepl --help`). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_USAGE = 1,       /* usage, config, or any other failure */
    CLI_EXIT_INVALID = 2,     /* content refused: the message names the field */
    CLI_EXIT_UNREACHABLE = 3, /* the store cannot be reached */
    CLI_EXIT_NOT_FOUND = 4    /* get/delete: no entity with that key */
};

#define CLI_MAX_OPTS 16
#define CLI_MAX_REPEAT 8

typedef struct cli_opt {
    const char *name; /* long name, without "--"; NULL ends a table */
    char short_name;  /* 0: none */
    const char *arg;  /* metavar ("N", "FILE"); NULL for a flag */
    bool repeat;      /* may be given more than once */
    const char *help;
} cli_opt_t;

typedef struct cli_args {
    const cli_opt_t *opts;           /* the command's table */
    const char *value[CLI_MAX_OPTS]; /* last value ("" for a flag); NULL: absent */
    const char *all[CLI_MAX_OPTS][CLI_MAX_REPEAT];
    int count[CLI_MAX_OPTS];
    char **pos; /* positional arguments */
    int npos;
} cli_args_t;

typedef struct cli_ctx {
    srl_config_t *cfg;
    const char *prog;  /* argv[0] basename */
    const char *words; /* "sysrepl assessment put", for messages; NULL: "sysrepl" */
    srl_kind_t kind;   /* for the put/get/list/delete of a kind group */
    FILE *out, *err;
} cli_ctx_t;

typedef struct cli_cmd cli_cmd_t;
struct cli_cmd {
    const char *name;     /* NULL ends a table */
    const char *aliases;  /* other names, '|'-separated, or NULL */
    const char *usage;    /* positional arguments, "" for none */
    int min_pos, max_pos; /* max_pos -1: any number */
    const char *summary;
    const cli_opt_t *opts;
    int (*run)(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);
    const cli_cmd_t *subs; /* a group: its subcommands (run is NULL) */
    srl_kind_t kind;       /* a kind group: the kind its subcommands act on */
};

/* The value of an option, or NULL when absent. */
const char *cli_opt(const cli_args_t *a, const char *name);
/* How often an option was given, and its i-th value. */
int cli_opt_count(const cli_args_t *a, const char *name);
const char *cli_opt_at(const cli_args_t *a, const char *name, int i);

/* Connect, print the failure and return NULL with *exit_code set (3 when
 * unreachable). check_version: refuse a store at another schema version. */
srl_store_t *cli_connect(cli_ctx_t *ctx, bool check_version, int *exit_code);
/* Exit code of a store result. */
int cli_exit_code(srl_store_rc_t rc);
/* "<prog> <words>: " prefix + message on ctx->err. */
void cli_error(cli_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(cli_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Command implementations (one file per group). */
int cli_cmd_init(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);   /* cmd_store.c */
int cli_cmd_status(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args); /* cmd_store.c */
int cli_cmd_put(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);    /* cmd_content.c */
int cli_cmd_get(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);
int cli_cmd_list(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);
int cli_cmd_delete(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);
int cli_cmd_import(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args); /* cmd_transfer.c */
int cli_cmd_export(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);

/* An assessment written by a person without "assessed_at": keep the
 * stored one, or now for a new assessment (json.c would leave 0, the
 * epoch). See SRL_STORE_ASSESSED_AT_KEEP. */
void cli_default_assessed_at(const json_t *value, srl_entity_t *e);

/* Parse a kind name as on the command line: the kind names of model.h
 * plus the group names and aliases ("type", "assessment", "policy"). */
bool cli_kind_parse(const char *name, srl_kind_t *out);

/* Index of option name in a's table, -1 when it has none such. */
int cli_opt_index(const cli_args_t *a, const char *name);

/* word is name or one of aliases ('|'-separated, may be NULL). */
bool cli_name_matches(const char *name, const char *aliases, const char *word);

/* The kind groups' command words: name, aliases (the command table in
 * main.c and cli_kind_parse in context.c both use these). */
#define CLI_WORDS_TYPE "type", "assessment-type|assessment-types"
#define CLI_WORDS_ASSESSMENT \
    "assessment", "vulnerability-assessment|vulnerability-assessments|assessments"
#define CLI_WORDS_POLICY "policy", "policies"

#endif
