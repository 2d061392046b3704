/*
 * cmd_transfer.c - `sysrepl import` and `sysrepl export`: content as JSON
 * lines, streamed both ways so memory does not grow with the data.
 *
 * A line is {"kind": "<kind>", "value": {<the JSON form of json.h>}};
 * with `import --kind K` a line may also be the bare object. Export writes
 * the envelope always, so `export | import` round-trips any mix of kinds.
 *
 * Import is all or nothing: every line is checked (JSON, fields, expiry),
 * every error is reported with its line (up to MAX_ERRORS), and the store
 * is written only when there was none. The same key twice: the last line
 * wins and the earlier one is reported as a warning.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "sysrepl/json.h"

#define MAX_ERRORS 20
#define OUT_BUF_SIZE (1 << 20)

typedef struct dup_report {
    cli_ctx_t *ctx;
    const char *source;
} dup_report_t;

static void on_duplicate(void *arg, srl_kind_t kind, const char *key, long line, long winning_line)
{
    dup_report_t *r = arg;
    cli_warn(r->ctx, "%s: line %ld: %s \"%s\" is given again at line %ld; line %ld wins", r->source,
             line, srl_kind_name(kind), key, winning_line, winning_line);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

/* The kind and object of one line; false with errstr. */
static bool split_line(const json_t *obj, bool have_kind, srl_kind_t given, srl_kind_t *kind,
                       const json_t **value, char *errstr, size_t size)
{
    const json_t *k = json_object_get(obj, "kind");
    const json_t *v = json_object_get(obj, "value");
    if (json_is_string(k) && json_is_object(v) && json_object_size(obj) == 2) {
        if (!cli_kind_parse(json_string_value(k), kind)) {
            snprintf(errstr, size, "kind: unknown kind \"%s\"", json_string_value(k));
            return false;
        }
        if (have_kind && *kind != given) {
            snprintf(errstr, size, "kind: \"%s\" but --kind %s was given", json_string_value(k),
                     srl_kind_name(given));
            return false;
        }
        *value = v;
        return true;
    }
    if (!have_kind) {
        snprintf(errstr, size,
                 "expected {\"kind\": KIND, \"value\": {...}} (or give --kind for bare objects)");
        return false;
    }
    *kind = given;
    *value = obj;
    return true;
}

int cli_cmd_import(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[1024];
    int code = CLI_EXIT_OK;
    const char *path = args->npos > 0 ? args->pos[0] : "-";
    const char *source = strcmp(path, "-") == 0 ? "<stdin>" : path;
    srl_kind_t given = SRL_KIND_ASSESSMENT;
    bool have_kind = cli_opt(args, "kind") != NULL;
    if (have_kind && !cli_kind_parse(cli_opt(args, "kind"), &given)) {
        cli_error(ctx, "--kind: unknown kind \"%s\" (type, assessment, policy)",
                  cli_opt(args, "kind"));
        return CLI_EXIT_USAGE;
    }
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        cli_error(ctx, "%s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    srl_store_rc_t rc;
    srl_store_import_t *imp = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, errors = 0;
    srl_entity_t e = {.kind = given};
    srl_store_t *st = cli_connect(ctx, true, &code);
    if (!st)
        goto cleanup;
    imp = srl_store_import_begin(st, &rc, errstr, sizeof(errstr));
    if (!imp) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }

    int64_t now_ms = 0; /* srl_store_validate: the current time */
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (blank(line))
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        const json_t *value = NULL;
        srl_kind_t kind;
        bool ok = obj != NULL;
        if (!ok)
            snprintf(errstr, sizeof(errstr), "invalid JSON at column %d: %s", jerr.column,
                     jerr.text);
        else if (!json_is_object(obj)) {
            snprintf(errstr, sizeof(errstr), "expected a JSON object");
            ok = false;
        }
        ok = ok && split_line(obj, have_kind, given, &kind, &value, errstr, sizeof(errstr)) &&
             srl_json_to_entity(value, kind, &e, errstr, sizeof(errstr)) &&
             srl_store_validate(&e, now_ms, errstr, sizeof(errstr));
        if (ok)
            cli_default_assessed_at(value, &e);
        json_decref(obj);
        if (!ok) {
            if (++errors <= MAX_ERRORS)
                cli_error(ctx, "%s: line %ld: %s", source, lineno, errstr);
            else if (errors == MAX_ERRORS + 1)
                cli_error(ctx, "%s: more than %d errors, stopping", source, MAX_ERRORS);
            srl_entity_clear(&e);
            if (errors > MAX_ERRORS)
                break;
            continue;
        }
        if (errors == 0) {
            rc = srl_store_import_add(imp, &e, lineno, errstr, sizeof(errstr));
            if (rc != SRL_STORE_OK) {
                cli_error(ctx, "%s: %s", source, errstr);
                srl_entity_clear(&e);
                code = cli_exit_code(rc);
                goto cleanup;
            }
        }
        srl_entity_clear(&e);
    }
    if (ferror(in)) {
        cli_error(ctx, "%s: read error: %s", source, strerror(errno));
        code = CLI_EXIT_USAGE;
        goto cleanup;
    }
    if (errors > 0) {
        cli_error(ctx, "%s: nothing imported (%ld line%s refused)", source, errors,
                  errors == 1 ? "" : "s");
        code = CLI_EXIT_INVALID;
        goto cleanup;
    }
    srl_store_import_stats_t stats;
    dup_report_t report = {ctx, source};
    rc = srl_store_import_finish(imp, on_duplicate, &report, &stats, errstr, sizeof(errstr));
    imp = NULL; /* finish frees it */
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s: %s; nothing imported", source, errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }
    fprintf(ctx->out, "imported from %s:", source);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        fprintf(ctx->out, "%s %" PRId64 " %s (%" PRId64 " changed)", k ? "," : "", stats.read[k],
                srl_kind_name((srl_kind_t)k), stats.changed[k]);
    if (stats.duplicates > 0)
        fprintf(ctx->out, "; %" PRId64 " duplicate line%s superseded", stats.duplicates,
                stats.duplicates == 1 ? "" : "s");
    fputc('\n', ctx->out);
cleanup:
    srl_store_import_abort(imp);
    srl_store_close(st);
    free(line);
    if (in && in != stdin)
        fclose(in);
    return code;
}

/* ------------------------------------------------------------------ */
/* export                                                               */

int cli_cmd_export(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[1024];
    int code = CLI_EXIT_OK;
    bool want[SRL_KIND_COUNT] = {false};
    int nkinds = cli_opt_count(args, "kind");
    if (nkinds > CLI_MAX_REPEAT) {
        cli_error(ctx, "--kind: at most %d", CLI_MAX_REPEAT);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < nkinds; i++) {
        srl_kind_t k;
        if (!cli_kind_parse(cli_opt_at(args, "kind", i), &k)) {
            cli_error(ctx, "--kind: unknown kind \"%s\" (type, assessment, policy)",
                      cli_opt_at(args, "kind", i));
            return CLI_EXIT_USAGE;
        }
        want[k] = true;
    }
    for (int k = 0; k < SRL_KIND_COUNT && nkinds == 0; k++)
        want[k] = true;

    const char *path = cli_opt(args, "output");
    FILE *out = path && strcmp(path, "-") != 0 ? fopen(path, "w") : ctx->out;
    if (!out) {
        cli_error(ctx, "%s: %s", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    /* Before any output on the stream (setvbuf's rule); static so it
     * outlives this function when out is stdout. */
    static char outbuf[OUT_BUF_SIZE];
    setvbuf(out, outbuf, _IOFBF, sizeof(outbuf));
    int64_t counts[SRL_KIND_COUNT] = {0};
    srl_store_t *st = cli_connect(ctx, true, &code);
    if (!st)
        goto cleanup;
    /* One snapshot for all kinds: the export is a consistent picture. */
    PGresult *res = PQexec(srl_store_conn(st), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    srl_store_rc_t rc = PQresultStatus(res) == PGRES_COMMAND_OK
                            ? SRL_STORE_OK
                            : srl_store_classify(srl_store_conn(st), res, "export: BEGIN", errstr,
                                                 sizeof(errstr));
    PQclear(res);
    for (int k = 0; k < SRL_KIND_COUNT && rc == SRL_STORE_OK; k++) {
        if (!want[k])
            continue;
        srl_store_filter_t f = {.any_order = true};
        srl_store_cursor_t *cur = srl_store_cursor_new(st, (srl_kind_t)k, &f, &rc, errstr,
                                                       sizeof(errstr));
        if (!cur)
            break;
        const srl_entity_t *e;
        while ((rc = srl_store_cursor_next_view(cur, &e, errstr, sizeof(errstr))) == SRL_STORE_OK) {
            if (!srl_store_jsonl_write(out, e, errstr, sizeof(errstr))) {
                rc = SRL_STORE_FATAL;
                break;
            }
            counts[k]++;
        }
        srl_store_cursor_free(cur);
        if (rc == SRL_STORE_DONE)
            rc = SRL_STORE_OK;
    }
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }
    PQclear(PQexec(srl_store_conn(st), "COMMIT"));
    if (fflush(out) != 0 || ferror(out)) {
        cli_error(ctx, "%s: write error: %s", path ? path : "<stdout>", strerror(errno));
        code = CLI_EXIT_USAGE;
        goto cleanup;
    }
    if (path)
        fprintf(ctx->err, "exported to %s: %" PRId64 " %s, %" PRId64 " %s, %" PRId64 " %s\n", path,
                counts[0], srl_kind_name(SRL_KIND_ASSESSMENT_TYPE), counts[1],
                srl_kind_name(SRL_KIND_ASSESSMENT), counts[2], srl_kind_name(SRL_KIND_POLICY));
cleanup:
    srl_store_close(st);
    if (out != ctx->out)
        fclose(out);
    else
        fflush(out);
    return code;
}
