/*
 * context.c - what every `sysrepl` command shares: its messages and exit
 * codes, its parsed options, the store connection, the kind words. The
 * command files (cmd_*.c) and main.c call down into this file; it calls
 * none of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

/* ------------------------------------------------------------------ */
/* messages                                                             */

static void vmsg(cli_ctx_t *ctx, const char *level, const char *fmt, va_list ap)
{
    fprintf(ctx->err, "%s: %s", ctx->words ? ctx->words : "sysrepl", level);
    vfprintf(ctx->err, fmt, ap);
    fputc('\n', ctx->err);
}

void cli_error(cli_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(ctx, "", fmt, ap);
    va_end(ap);
}

void cli_warn(cli_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(ctx, "warning: ", fmt, ap);
    va_end(ap);
}

int cli_exit_code(srl_store_rc_t rc)
{
    switch (rc) {
    case SRL_STORE_OK:
    case SRL_STORE_DONE:
        return CLI_EXIT_OK;
    case SRL_STORE_INVALID:
        return CLI_EXIT_INVALID;
    case SRL_STORE_UNREACHABLE:
        return CLI_EXIT_UNREACHABLE;
    case SRL_STORE_NOT_FOUND:
        return CLI_EXIT_NOT_FOUND;
    default:
        return CLI_EXIT_USAGE;
    }
}

bool cli_name_matches(const char *name, const char *aliases, const char *word)
{
    if (strcmp(name, word) == 0)
        return true;
    if (!aliases)
        return false;
    size_t n = strlen(word);
    for (const char *p = aliases; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* options                                                              */

int cli_opt_index(const cli_args_t *a, const char *name)
{
    for (int i = 0; a->opts[i].name; i++)
        if (strcmp(a->opts[i].name, name) == 0)
            return i;
    return -1;
}

const char *cli_opt(const cli_args_t *a, const char *name)
{
    int i = cli_opt_index(a, name);
    return i < 0 ? NULL : a->value[i];
}

int cli_opt_count(const cli_args_t *a, const char *name)
{
    int i = cli_opt_index(a, name);
    return i < 0 ? 0 : a->count[i];
}

const char *cli_opt_at(const cli_args_t *a, const char *name, int k)
{
    int i = cli_opt_index(a, name);
    return i < 0 || k >= a->count[i] || k >= CLI_MAX_REPEAT ? NULL : a->all[i][k];
}

/* ------------------------------------------------------------------ */
/* connecting                                                           */

srl_store_t *cli_connect(cli_ctx_t *ctx, bool check_version, int *exit_code)
{
    char errstr[512];
    srl_store_rc_t rc;
    const char *dsn = srl_config_str(ctx->cfg, SRL_KEY_STORE_DSN);
    if (!dsn || !dsn[0])
        dsn = getenv("SRL_DSN");
    if (!dsn || !dsn[0]) {
        cli_error(ctx, "no store given: use --dsn DSN, -X store.dsn=DSN, store.dsn in the "
                       "config file (-c FILE), or SRL_DSN");
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    srl_store_t *st = srl_store_connect(dsn, &rc, errstr, sizeof(errstr));
    if (!st) {
        cli_error(ctx, "%s", errstr);
        *exit_code = CLI_EXIT_UNREACHABLE;
        return NULL;
    }
    if (check_version) {
        rc = srl_store_check_version(st, errstr, sizeof(errstr));
        if (rc != SRL_STORE_OK) {
            cli_error(ctx, "%s", errstr);
            *exit_code = cli_exit_code(rc);
            srl_store_close(st);
            return NULL;
        }
    }
    *exit_code = CLI_EXIT_OK;
    return st;
}

/* The kind groups' words, as the command table names them (cli.h). */
static const struct {
    const char *name, *aliases;
    srl_kind_t kind;
} kind_words[] = {
    {CLI_WORDS_TYPE, SRL_KIND_ASSESSMENT_TYPE},
    {CLI_WORDS_ASSESSMENT, SRL_KIND_ASSESSMENT},
    {CLI_WORDS_POLICY, SRL_KIND_POLICY},
};

bool cli_kind_parse(const char *name, srl_kind_t *out)
{
    if (srl_kind_parse(name, out))
        return true;
    for (size_t i = 0; i < sizeof(kind_words) / sizeof(kind_words[0]); i++) {
        if (cli_name_matches(kind_words[i].name, kind_words[i].aliases, name)) {
            *out = kind_words[i].kind;
            return true;
        }
    }
    return false;
}

void cli_default_assessed_at(const json_t *value, srl_entity_t *e)
{
    if (e->kind == SRL_KIND_ASSESSMENT && !json_object_get(value, "assessed_at"))
        e->u.assessment.assessed_at = SRL_STORE_ASSESSED_AT_KEEP;
}
