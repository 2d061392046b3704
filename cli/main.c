/*
 * main.c - `sysrepl`, the admin command line: the command and option
 * tables, the one parser and the --help texts made from them, and the
 * dispatch to the command groups (cmd_store.c, cmd_content.c,
 * cmd_transfer.c; `schemas` is common/schemas_cmd.c).
 *
 * Connection: --dsn DSN, else config key store.dsn (-c FILE, -X
 * store.dsn=...), else the SRL_DSN environment variable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sysrepl/cmdline.h"
#include "sysrepl/schemas_cmd.h"

/* ------------------------------------------------------------------ */
/* the tables                                                           */

/* -c, -X/--set, --print-config and --version are every program's
 * (common/cmdline.c) and taken off the line before these are parsed. */
static const cli_opt_t global_opts[] = {
    {"dsn", 0, "DSN", false, "PostgreSQL conninfo of the store (overrides store.dsn and $SRL_DSN)"},
    {"help", 'h', NULL, false, "show this help"},
    {NULL, 0, NULL, false, NULL}};

static const cli_opt_t init_opts[] = {
    {"instance-id", 0, "ID", false,
     "this instance's id, the origin of its changes (default: config instance.id, the "
     "stored id, or the host name)"},
    {"role", 0, "hub|spoke", false,
     "this instance's role (default: config role, or the stored role)"},
    {NULL, 0, NULL, false, NULL}};

static const cli_opt_t status_opts[] = {{"json", 0, NULL, false,
                                         "print one JSON object instead of text"},
                                        {NULL, 0, NULL, false, NULL}};

static const cli_opt_t put_opts[] = {{"file", 'f', "FILE", false,
                                      "read the JSON object from FILE ('-': standard input)"},
                                     {NULL, 0, NULL, false, NULL}};

static const cli_opt_t get_opts[] = {{NULL, 0, NULL, false, NULL}};

static const cli_opt_t list_opts[] = {
    {"type", 0, "NAME", false, "assessments: only those of this assessment type (any case)"},
    {"scope", 0, "SCOPE", false,
     "assessments: only this scope: global, policy:N, feed:N, project:N"},
    {"expired", 0, NULL, false, "assessments: only those whose expiry has passed"},
    {"limit", 0, "N", false, "at most N entries"},
    {"json", 0, NULL, false, "print JSON lines instead of a table"},
    {NULL, 0, NULL, false, NULL}};

static const cli_opt_t delete_opts[] = {{NULL, 0, NULL, false, NULL}};

static const cli_opt_t import_opts[] = {
    {"kind", 0, "KIND", false,
     "lines are bare objects of this kind (without --kind every line is {\"kind\": K, \"value\": {...}})"},
    {NULL, 0, NULL, false, NULL}};

static const cli_opt_t export_opts[] = {{"kind", 0, "KIND", true,
                                         "export only this kind (default: all kinds)"},
                                        {"output", 'o', "FILE", false,
                                         "write to FILE instead of standard output"},
                                        {NULL, 0, NULL, false, NULL}};

static const cli_opt_t schemas_opts[] = {
    {"check", 0, "FILE", false,
     "may FILE (an .avsc) replace our schema of its kind? (exit 2: incompatible)"},
    {NULL, 0, NULL, false, NULL}};

static int cli_cmd_schemas(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args);

#define KIND_SUBS                                                                                   \
    {"put",      NULL,                                                                              \
     "[JSON|-]", 0,                                                                                 \
     1,          "insert or replace one entity, from a JSON argument, -f FILE, or '-' (stdin)",     \
     put_opts,   cli_cmd_put,                                                                       \
     NULL,       0},                                                                                \
        {"get", NULL, "KEY", 1, 1, "print one entity as JSON", get_opts, cli_cmd_get, NULL, 0},     \
        {"list", "ls", "", 0, 0, "list entities in key order", list_opts, cli_cmd_list, NULL, 0},   \
        {"delete",    "rm",           "KEY", 1, 1, "delete one entity (replicated as a tombstone)", \
         delete_opts, cli_cmd_delete, NULL,  0},                                                    \
    {                                                                                               \
        NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, 0                                           \
    }

static const cli_cmd_t kind_subs[] = {KIND_SUBS};

static const cli_cmd_t commands[] = {
    {"init", NULL, "", 0, 0,
     "create the store's tables or migrate them to this build's schema version; set "
     "instance id and role",
     init_opts, cli_cmd_init, NULL, 0},
    {"status", NULL, "", 0, 0,
     "role, schema version, counts, outbox depth, last replication, dead letters, warnings",
     status_opts, cli_cmd_status, NULL, 0},
    {CLI_WORDS_TYPE, "", 0, 0, "assessment types (key: the name, any case): put, get, list, delete",
     NULL, NULL, kind_subs, SRL_KIND_ASSESSMENT_TYPE},
    {CLI_WORDS_ASSESSMENT, "", 0, 0,
     "vulnerability assessments (key: ID|global or ID|KIND:NAME): put, get, list, delete", NULL,
     NULL, kind_subs, SRL_KIND_ASSESSMENT},
    {CLI_WORDS_POLICY, "", 0, 0, "policies (key: the name): put, get, list, delete", NULL, NULL,
     kind_subs, SRL_KIND_POLICY},
    {"import", NULL, "[FILE|-]", 0, 1,
     "import JSON lines (default: standard input) in one transaction; the same key twice: "
     "the last line wins",
     import_opts, cli_cmd_import, NULL, 0},
    {"export", NULL, "", 0, 0, "export content as JSON lines, streamed", export_opts,
     cli_cmd_export, NULL, 0},
    {"schemas", NULL, "", 0, 0,
     "the Avro schemas of this build: each kind's fingerprint, schema id, subject (topic.prefix) "
     "and canonical form",
     schemas_opts, cli_cmd_schemas, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, 0}};

/* ------------------------------------------------------------------ */
/* messages                                                             */

/* ------------------------------------------------------------------ */
/* help                                                                 */

static const cli_cmd_t *find_cmd(const cli_cmd_t *table, const char *word)
{
    for (const cli_cmd_t *c = table; c->name; c++)
        if (cli_name_matches(c->name, c->aliases, word))
            return c;
    return NULL;
}

static void print_opt(FILE *out, const cli_opt_t *o)
{
    char left[64];
    if (o->short_name)
        snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    else
        snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
    fprintf(out, "  %-28s %s%s\n", left, o->help, o->repeat ? " (repeatable)" : "");
}

static void print_opts(FILE *out, const cli_opt_t *opts)
{
    for (const cli_opt_t *o = opts; o && o->name; o++)
        print_opt(out, o);
}

static void print_footer(FILE *out)
{
    fprintf(out, "\nglobal options (any command, anywhere on the line):\n");
    for (const cli_opt_t *o = global_opts; o->name; o++)
        if (strcmp(o->name, "help") != 0) /* the common lines have it */
            print_opt(out, o);
    srl_cmdline_print_common(out);
    fprintf(out, "\nexit codes: 0 ok; 1 usage, config or other error; 2 content refused (the "
                 "message names the field);\n            3 store unreachable; 4 no entity with "
                 "that key\n");
}

static void print_table(FILE *out, const cli_cmd_t *table)
{
    for (const cli_cmd_t *c = table; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
}

/* words: the command path ("assessment list"); cmd NULL: the top level. */
static void print_help(FILE *out, const char *words, const cli_cmd_t *cmd)
{
    if (!cmd) {
        fprintf(out, "usage: sysrepl COMMAND [ARGS] [OPTIONS]\n\n"
                     "Administer the sysrepl store of this instance: create it, edit its "
                     "content, import and export it,\nand see how replication is doing.\n\n"
                     "commands:\n");
        print_table(out, commands);
        fprintf(out, "\nKinds: type (assessment-types), assessment "
                     "(vulnerability-assessments), policy (policies).\n"
                     "`sysrepl COMMAND --help` describes a command.\n");
        print_footer(out);
        return;
    }
    if (cmd->subs) {
        fprintf(out, "usage: %s SUBCOMMAND [ARGS] [OPTIONS]\n\n%s\n\nsubcommands:\n", words,
                cmd->summary);
        print_table(out, cmd->subs);
        print_footer(out);
        return;
    }
    fprintf(out, "usage: %s%s%s [OPTIONS]\n\n%s\n", words, cmd->usage[0] ? " " : "", cmd->usage,
            cmd->summary);
    if (cmd->aliases)
        fprintf(out, "(also: %s)\n", cmd->aliases);
    if (cmd->opts && cmd->opts->name) {
        fprintf(out, "\noptions:\n");
        print_opts(out, cmd->opts);
    }
    print_footer(out);
}

/* ------------------------------------------------------------------ */
/* parsing                                                              */

/* Options of the command plus the global ones, in one table. */
static bool merge_opts(cli_opt_t *dst, const cli_opt_t *cmd_opts)
{
    int n = 0;
    for (const cli_opt_t *o = cmd_opts; o && o->name; o++) {
        if (n >= CLI_MAX_OPTS - 1)
            return false;
        dst[n++] = *o;
    }
    for (const cli_opt_t *o = global_opts; o->name; o++) {
        if (n >= CLI_MAX_OPTS - 1)
            return false;
        dst[n++] = *o;
    }
    dst[n] = (cli_opt_t){NULL, 0, NULL, false, NULL};
    return true;
}

/* Parse argv[0..argc) against a->opts. Positional arguments go to a->pos
 * (which must have room for argc entries). Returns false with a message. */
static bool parse_args(cli_ctx_t *ctx, cli_args_t *a, int argc, char **argv)
{
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        int k = -1;
        const char *value = NULL;
        char name[64];
        if (arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            if (len >= sizeof(name))
                len = sizeof(name) - 1;
            memcpy(name, arg + 2, len);
            name[len] = '\0';
            k = cli_opt_index(a, name);
            if (eq)
                value = eq + 1;
        } else {
            for (int j = 0; a->opts[j].name; j++)
                if (a->opts[j].short_name == arg[1])
                    k = j;
            snprintf(name, sizeof(name), "%c", arg[1]);
            if (k >= 0 && arg[2])
                value = arg + 2;
        }
        if (k < 0) {
            cli_error(ctx, "unknown option %s (see %s --help)", arg, ctx->words);
            return false;
        }
        const cli_opt_t *o = &a->opts[k];
        if (!o->arg && value) {
            cli_error(ctx, "option --%s takes no value", o->name);
            return false;
        }
        if (o->arg && !value) {
            if (i + 1 >= argc) {
                cli_error(ctx, "option --%s needs a value (%s)", o->name, o->arg);
                return false;
            }
            value = argv[++i];
        }
        if (a->count[k] > 0 && !o->repeat) {
            cli_error(ctx, "option --%s given twice", o->name);
            return false;
        }
        if (a->count[k] < CLI_MAX_REPEAT)
            a->all[k][a->count[k]] = value ? value : "";
        a->count[k]++;
        a->value[k] = value ? value : "";
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* connecting                                                           */

/* ------------------------------------------------------------------ */
/* main                                                                 */

/* Index of the first word at or after i that is not an option (or the
 * value of a global one). */
static int skip_options(int argc, char **argv, int i)
{
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
        bool takes_value = false;
        for (const cli_opt_t *o = global_opts; o->name; o++)
            if (o->arg && ((argv[i][1] == '-' && strcmp(argv[i] + 2, o->name) == 0) ||
                           (argv[i][1] == o->short_name && argv[i][2] == '\0')))
                takes_value = true;
        i += takes_value ? 2 : 1;
    }
    return i;
}

/* Is --help or -h among argv[from..to)? Before a command word it asks
 * for that command's help ("sysrepl --help export"), parsed with it. */
static bool asks_help(char **argv, int from, int to)
{
    for (int i = from; i < to; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* No command word came: the options before it are the global ones only
 * (the command's own are parsed once the command is known). False, with
 * the message naming it, for the first other option in argv[from..to). */
static bool only_global_options(cli_ctx_t *ctx, char **argv, int from, int to)
{
    for (int i = from; i < to; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0)
            continue;
        const cli_opt_t *found = NULL;
        for (const cli_opt_t *o = global_opts; o->name; o++) {
            size_t n = strlen(o->name);
            if ((a[1] == '-' && strncmp(a + 2, o->name, n) == 0 &&
                 (a[2 + n] == '\0' || a[2 + n] == '=')) ||
                (o->short_name && a[1] == o->short_name && a[2] == '\0'))
                found = o;
        }
        if (!found) {
            cli_error(ctx, "unknown option %s (see %s --help)", a, ctx->words);
            return false;
        }
        if (found->arg && !strchr(a, '='))
            i++;
    }
    return true;
}

/* `schemas` is common/schemas_cmd.c (codec_interop runs it too); here it
 * is parsed like every other command, global options included. */
static int cli_cmd_schemas(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    const char *check = cli_opt(args, "check");
    const char *prefix = ctx->cfg ? srl_config_str(ctx->cfg, SRL_KEY_TOPIC_PREFIX) : "sysrepl";
    char *argv[] = {"schemas", "--prefix", (char *)prefix, "--check", (char *)check, NULL};
    return srl_schemas_command(check ? 5 : 3, argv, ctx->out, ctx->err);
}

int main(int argc, char **argv)
{
    static char words[128];
    char errstr[512];
    cli_ctx_t ctx = {.prog = "sysrepl", .out = stdout, .err = stderr};
    int code = CLI_EXIT_USAGE;
    cli_args_t args;
    cli_opt_t opts[CLI_MAX_OPTS];
    char **pos = NULL;
    const cli_cmd_t *cmd = NULL;

    ctx.cfg = srl_config_new(SRL_PROG_CLI);
    if (!ctx.cfg) {
        cli_error(&ctx, "out of memory");
        return CLI_EXIT_USAGE;
    }
    /* The common options, wherever they are on the line; the command
     * words, --dsn and --help stay for the tables below. */
    static const srl_cmdline_t cmdline = {.program = "sysrepl",
                                          .prog_mask = SRL_PROG_CLI,
                                          .pass_through = true};
    int parsed = srl_cmdline_parse(&cmdline, ctx.cfg, &argc, argv, NULL);
    if (parsed != SRL_CMDLINE_RUN) {
        code = parsed;
        goto cleanup;
    }

    /* The command path: the first word, and a subcommand for a group. */
    int i = skip_options(argc, argv, 1); /* parsed below, with the command's */
    if (i >= argc && !only_global_options(&ctx, argv, 1, i))
        goto cleanup;
    if (i >= argc || argv[i][0] == '-') {
        bool help = asks_help(argv, 1, i);
        print_help(help ? stdout : stderr, "sysrepl", NULL);
        code = help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        goto cleanup;
    }
    int first_word = i;
    cmd = find_cmd(commands, argv[i]);
    if (!cmd) {
        cli_error(&ctx, "unknown command \"%s\" (see sysrepl --help)", argv[i]);
        goto cleanup;
    }
    snprintf(words, sizeof(words), "sysrepl %s", cmd->name);
    if (cmd->subs) {
        ctx.kind = cmd->kind;
        int j = skip_options(argc, argv, i + 1);
        ctx.words = words;
        if (j >= argc && !only_global_options(&ctx, argv, i + 1, j))
            goto cleanup;
        if (j >= argc || argv[j][0] == '-') {
            bool help = asks_help(argv, i + 1, j);
            print_help(help ? stdout : stderr, words, cmd);
            code = help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
            goto cleanup;
        }
        const cli_cmd_t *sub = find_cmd(cmd->subs, argv[j]);
        if (!sub) {
            cli_error(&ctx, "unknown subcommand \"%s\" (see %s --help)", argv[j], words);
            goto cleanup;
        }
        size_t len = strlen(words);
        snprintf(words + len, sizeof(words) - len, " %s", sub->name);
        /* Drop the subcommand word; the rest is parsed with its options. */
        memmove(&argv[j], &argv[j + 1], (size_t)(argc - j) * sizeof(char *));
        argc--;
        cmd = sub;
    }
    ctx.words = words;
    memmove(&argv[first_word], &argv[first_word + 1], (size_t)(argc - first_word) * sizeof(char *));
    argc--;

    memset(&args, 0, sizeof(args));
    if (!merge_opts(opts, cmd->opts)) {
        cli_error(&ctx, "internal: too many options");
        goto cleanup;
    }
    args.opts = opts;
    pos = calloc((size_t)argc + 1, sizeof(char *));
    if (!pos) {
        cli_error(&ctx, "out of memory");
        goto cleanup;
    }
    args.pos = pos;
    if (!parse_args(&ctx, &args, argc - 1, argv + 1))
        goto cleanup;
    if (cli_opt(&args, "help")) {
        print_help(stdout, words, cmd);
        code = CLI_EXIT_OK;
        goto cleanup;
    }
    if (args.npos < cmd->min_pos || (cmd->max_pos >= 0 && args.npos > cmd->max_pos)) {
        cli_error(&ctx, "expected %s%s (see %s --help)",
                  cmd->usage[0] ? "arguments: " : "no arguments", cmd->usage[0] ? cmd->usage : "",
                  words);
        goto cleanup;
    }
    /* --dsn is one more override, after -c and -X. */
    const char *dsn = cli_opt(&args, "dsn");
    if (dsn) {
        char kv[4096];
        int n = snprintf(kv, sizeof(kv), "store.dsn=%s", dsn);
        if (n < 0 || (size_t)n >= sizeof(kv) ||
            !srl_config_set_override(ctx.cfg, kv, errstr, sizeof(errstr))) {
            cli_error(&ctx, "--dsn: %s", n < 0 || (size_t)n >= sizeof(kv) ? "too long" : errstr);
            goto cleanup;
        }
    }
    code = cmd->run(&ctx, cmd, &args);
cleanup:
    free(pos);
    srl_config_free(ctx.cfg);
    if (fflush(stdout) != 0 && code == CLI_EXIT_OK)
        code = CLI_EXIT_USAGE;
    return code;
}
