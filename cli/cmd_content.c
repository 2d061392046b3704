/*
 * cmd_content.c - `sysrepl <kind> put|get|list|delete`: one entity at a
 * time, in the JSON form of json.h.
 *
 * put checks everything it can before touching the store (JSON syntax,
 * fields, an expiry already past) and exits 2 naming the field; the store
 * then checks what needs it (the assessment type exists).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "sysrepl/json.h"
#include "sysrepl/keys.h"

/* Parse the JSON object of a put: the argument itself, or the content of
 * a file / stdin ("-"). Returns a new reference or NULL after a message. */
static json_t *load_object(cli_ctx_t *ctx, const char *text, const char *path, int *code)
{
    json_error_t jerr;
    json_t *obj;
    const char *source = path ? (strcmp(path, "-") == 0 ? "<stdin>" : path) : "argument";
    if (path && strcmp(path, "-") == 0) {
        obj = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
    } else if (path) {
        FILE *f = fopen(path, "r");
        if (!f) {
            cli_error(ctx, "%s: %s", path, strerror(errno));
            *code = CLI_EXIT_USAGE;
            return NULL;
        }
        obj = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
        fclose(f);
    } else {
        obj = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    }
    if (!obj) {
        cli_error(ctx, "%s: invalid JSON at line %d column %d: %s", source, jerr.line, jerr.column,
                  jerr.text);
        *code = CLI_EXIT_INVALID;
        return NULL;
    }
    if (!json_is_object(obj)) {
        cli_error(ctx, "%s: expected a JSON object", source);
        json_decref(obj);
        *code = CLI_EXIT_INVALID;
        return NULL;
    }
    return obj;
}

int cli_cmd_put(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code = CLI_EXIT_OK;
    const char *file = cli_opt(args, "file");
    const char *arg = args->npos > 0 ? args->pos[0] : NULL;
    if ((file != NULL) == (arg != NULL)) {
        cli_error(ctx, "give the JSON object as an argument, '-' for stdin, or -f FILE "
                       "(exactly one)");
        return CLI_EXIT_USAGE;
    }
    if (arg && strcmp(arg, "-") == 0) {
        file = "-";
        arg = NULL;
    }
    json_t *obj = load_object(ctx, arg, file, &code);
    if (!obj)
        return code;

    srl_entity_t e = {.kind = ctx->kind};
    srl_store_t *st = NULL;
    if (!srl_json_to_entity(obj, ctx->kind, &e, errstr, sizeof(errstr)) ||
        !srl_store_validate(&e, 0, errstr, sizeof(errstr))) {
        cli_error(ctx, "%s", errstr);
        code = CLI_EXIT_INVALID;
        goto cleanup;
    }
    cli_default_assessed_at(obj, &e);
    st = cli_connect(ctx, true, &code);
    if (!st)
        goto cleanup;
    bool changed = false;
    srl_store_rc_t rc = srl_store_put(st, &e, &changed, errstr, sizeof(errstr));
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }
    char *key = srl_key_dup(&e);
    fprintf(ctx->out, "%s \"%s\": %s\n", srl_kind_name(ctx->kind), key ? key : "?",
            changed ? "stored" : "unchanged (identical to the stored one)");
    free(key);
cleanup:
    srl_store_close(st);
    srl_entity_clear(&e);
    json_decref(obj);
    return code;
}

/* Print e as JSON: indented, or one line (flags). */
static bool print_entity(cli_ctx_t *ctx, const srl_entity_t *e, size_t flags)
{
    char errstr[256];
    json_t *o = srl_json_from_entity(e, errstr, sizeof(errstr));
    if (!o) {
        cli_error(ctx, "%s", errstr);
        return false;
    }
    json_dumpf(o, ctx->out, flags);
    fputc('\n', ctx->out);
    json_decref(o);
    return true;
}

int cli_cmd_get(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code;
    srl_store_t *st = cli_connect(ctx, true, &code);
    if (!st)
        return code;
    srl_entity_t e = {.kind = ctx->kind};
    srl_store_rc_t rc = srl_store_get(st, ctx->kind, args->pos[0], &e, errstr, sizeof(errstr));
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
    } else {
        code = print_entity(ctx, &e, JSON_INDENT(2)) ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    srl_entity_clear(&e);
    srl_store_close(st);
    return code;
}

int cli_cmd_delete(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code;
    srl_store_t *st = cli_connect(ctx, true, &code);
    if (!st)
        return code;
    srl_store_rc_t rc = srl_store_delete(st, ctx->kind, args->pos[0], errstr, sizeof(errstr));
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
    } else {
        fprintf(ctx->out, "%s \"%s\": deleted\n", srl_kind_name(ctx->kind), args->pos[0]);
        code = CLI_EXIT_OK;
    }
    srl_store_close(st);
    return code;
}

/* One table line per entity. */
static void print_row(cli_ctx_t *ctx, const srl_entity_t *e)
{
    char t[40], key[512];
    if (srl_key_build(e, key, sizeof(key)) < 0)
        snprintf(key, sizeof(key), "?");
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE: {
        const srl_assessment_type_t *x = &e->u.type;
        fprintf(ctx->out, "%-32s %-8s %-8s %-8s %" PRId64 "\n", key,
                srl_severity_class_name(x->severity_class), x->color ? x->color : "-",
                x->inactive ? "inactive" : "active", x->meta.version);
        break;
    }
    case SRL_KIND_ASSESSMENT: {
        const srl_assessment_t *x = &e->u.assessment;
        if (!x->has_expires_at || !srl_json_format_time(x->expires_at, t, sizeof(t)))
            snprintf(t, sizeof(t), "-");
        fprintf(ctx->out, "%-48s %-16s %-24s %" PRId64 "\n", key, x->assessment_type, t,
                x->meta.version);
        break;
    }
    case SRL_KIND_POLICY: {
        const srl_policy_t *x = &e->u.policy;
        fprintf(ctx->out, "%-32s %-6zu %-10zu %" PRId64 "\n", key, x->feed_count,
                x->exception_count, x->meta.version);
        break;
    }
    default:
        break;
    }
}

static void print_header(cli_ctx_t *ctx, srl_kind_t kind)
{
    switch (kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        fprintf(ctx->out, "%-32s %-8s %-8s %-8s %s\n", "NAME", "CLASS", "COLOR", "STATE",
                "VERSION");
        break;
    case SRL_KIND_ASSESSMENT:
        fprintf(ctx->out, "%-48s %-16s %-24s %s\n", "KEY", "TYPE", "EXPIRES", "VERSION");
        break;
    case SRL_KIND_POLICY:
        fprintf(ctx->out, "%-32s %-6s %-10s %s\n", "NAME", "FEEDS", "EXCEPTIONS", "VERSION");
        break;
    default:
        break;
    }
}

int cli_cmd_list(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code;
    srl_store_filter_t f = {.type = cli_opt(args, "type"),
                            .scope = cli_opt(args, "scope"),
                            .expired = cli_opt(args, "expired") != NULL};
    if (ctx->kind != SRL_KIND_ASSESSMENT && (f.type || f.scope || f.expired)) {
        cli_error(ctx, "--type, --scope and --expired filter assessments only");
        return CLI_EXIT_USAGE;
    }
    const char *limit = cli_opt(args, "limit");
    if (limit) {
        char *end;
        errno = 0;
        long n = strtol(limit, &end, 10);
        if (errno || end == limit || *end || n <= 0) {
            cli_error(ctx, "--limit: expected a positive integer, got \"%s\"", limit);
            return CLI_EXIT_USAGE;
        }
        f.limit = n;
    }
    bool json = cli_opt(args, "json") != NULL;
    srl_store_t *st = cli_connect(ctx, true, &code);
    if (!st)
        return code;
    srl_store_rc_t rc;
    srl_store_cursor_t *cur = srl_store_cursor_new(st, ctx->kind, &f, &rc, errstr, sizeof(errstr));
    if (!cur) {
        cli_error(ctx, "%s", errstr);
        code = rc == SRL_STORE_INVALID ? CLI_EXIT_USAGE : cli_exit_code(rc);
        srl_store_close(st);
        return code;
    }
    if (!json)
        print_header(ctx, ctx->kind);
    srl_entity_t e = {.kind = ctx->kind};
    code = CLI_EXIT_OK;
    while ((rc = srl_store_cursor_next(cur, &e, errstr, sizeof(errstr))) == SRL_STORE_OK) {
        if (json) {
            if (!print_entity(ctx, &e, JSON_COMPACT)) {
                code = CLI_EXIT_USAGE;
                break;
            }
        } else {
            print_row(ctx, &e);
        }
    }
    if (rc != SRL_STORE_DONE && code == CLI_EXIT_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
    }
    srl_entity_clear(&e);
    srl_store_cursor_free(cur);
    srl_store_close(st);
    return code;
}
