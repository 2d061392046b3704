/*
 * cmdline.h - the command-line grammar every sysrepl program shares.
 *
 * Common options, accepted anywhere on the line before a `--` (before or
 * after a sysrepl subcommand alike):
 *     -c FILE, --config FILE     the config file (at most one)
 *     -X KEY=VALUE, --set ...    one config key, wins over the file (repeatable)
 *     --print-config             print the effective config (secrets redacted), exit 0
 *     --version                  print "<program> <version>", exit 0
 *     -h, --help                 print the help, exit 0
 * --version and --help answer before the config is read, so they work
 * with a broken config file. A program's own options come from its
 * table (srl_cmdline_opt_t), so parsing, errors and --help agree: an
 * unknown option or an unexpected argument is exit 1 with a message that
 * names it.
 */
#ifndef SRL_CMDLINE_H
#define SRL_CMDLINE_H

#include <stdbool.h>
#include <stdio.h>

#include "sysrepl/config.h"

/* One option of a program's own: `--name VALUE`, `--name=VALUE`,
 * `-s VALUE`; a flag takes no value. */
typedef struct srl_cmdline_opt {
    const char *name; /* long name without "--"; NULL ends a table */
    char short_name;  /* 0: none */
    const char *arg;  /* metavar ("FILE"); NULL: a flag */
    const char *help; /* one line */
} srl_cmdline_opt_t;

typedef struct srl_cmdline {
    const char *program;           /* "sysrepl-producer": messages, --version */
    unsigned prog_mask;            /* SRL_PROG_*: the keys of --help and --print-config */
    const char *synopsis;          /* usage line(s) after the program name */
    const char *about;             /* what the program does, one paragraph */
    const srl_cmdline_opt_t *opts; /* the program's own options (NULL: none) */
    const char *epilog;            /* exit codes, ...; NULL: none */
    /* Prints --help instead of the generated text (followed by the
     * common options). Only for a program whose help text is not made
     * from its table yet (the consumer's). */
    void (*usage)(FILE *out);
    /* The program parses the rest itself (sysrepl and its subcommands):
     * --help/-h, unknown options and positional arguments stay in argv. */
    bool pass_through;
} srl_cmdline_t;

/* srl_cmdline_parse() found nothing that ends the program: run it. */
#define SRL_CMDLINE_RUN (-1)

/* Parse argv for the program described by spec: answer --version and
 * --help, load -c/-X into cfg (see srl_config_parse_args), answer
 * --print-config, and match the program's own options. values gets one
 * entry per row of spec->opts: NULL when absent, "" for a flag given, the
 * value otherwise (an option given twice is an error). Consumed arguments
 * are removed from argv (*argc updated; with pass_through, what is left
 * keeps its order). Returns SRL_CMDLINE_RUN, or the exit code the program
 * must end with: 0 after --version, --help or --print-config, 1 after a
 * usage or config error, which has been printed as "<program>: <reason>"
 * on stderr. */
int srl_cmdline_parse(const srl_cmdline_t *spec, srl_config_t *cfg, int *argc, char **argv,
                      const char **values);

/* The common options' lines of a --help text (for programs that print
 * their own help, as sysrepl does). */
void srl_cmdline_print_common(FILE *out);

/* The generated --help of spec: usage, about, options, epilog, keys. */
void srl_cmdline_print_help(const srl_cmdline_t *spec, FILE *out);

#endif
