/*
 * cmd_store.c - `sysrepl init` and `sysrepl status`: the store itself.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "sysrepl/clock.h"
#include "sysrepl/json.h"

/* An outbox older than this on a hub means no producer is draining it. */
#define STALE_OUTBOX_MS (5 * 60 * 1000)
#define STALE_CAUGHT_UP_MS (60 * 1000) /* a running spoke stamps caught_up_at every 5 s */

/* A hub captures from its WAL as soon as it is made (docs/producer.md,
 * "Capture"), so writes before the producer's first start cost writers
 * nothing either; where that cannot be (wal_level, privileges,
 * producer.capture = outbox) the outbox triggers stay and the producer
 * says so when it starts. */
static void init_capture(cli_ctx_t *ctx, srl_store_t *st)
{
    char errstr[512], slot[64];
    bool available = false, created = false, lost = false;
    PGconn *conn = srl_store_conn(st);
    if (srl_config_enum(ctx->cfg, SRL_KEY_PRODUCER_CAPTURE) == SRL_CAPTURE_OUTBOX) {
        fprintf(ctx->out, "capture: outbox triggers (producer.capture = outbox)\n");
        return;
    }
    if (srl_store_wal_available(conn, &available, errstr, sizeof(errstr)) != SRL_STORE_OK ||
        !available) {
        fprintf(ctx->out, "capture: outbox triggers (the server's wal_level is not logical;"
                          " see docs/producer.md, Capture)\n");
        return;
    }
    if (srl_store_wal_engage(conn, slot, sizeof(slot), &created, &lost, errstr, sizeof(errstr)) !=
        SRL_STORE_OK) {
        fprintf(ctx->out, "capture: outbox triggers (WAL capture not possible: %s)\n", errstr);
        return;
    }
    fprintf(ctx->out, "capture: WAL, replication slot %s%s\n", slot, created ? " (created)" : "");
}

int cli_cmd_init(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code, before = 0, applied = 0;
    srl_store_t *st = cli_connect(ctx, false, &code);
    if (!st)
        return code;
    srl_store_settings_t cur;
    srl_store_rc_t rc = srl_store_schema_version(st, &before, errstr, sizeof(errstr));
    if (rc == SRL_STORE_OK)
        rc = srl_store_migrate(st, &applied, errstr, sizeof(errstr));
    if (rc == SRL_STORE_OK)
        rc = srl_store_get_settings(st, &cur, errstr, sizeof(errstr));
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }

    /* Instance id and role: the option, a key set in the config, what the
     * store has, then a default (the host name; the config's role). */
    char host[128] = "sysrepl";
    const char *id = cli_opt(args, "instance-id");
    if (!id && srl_config_is_set(ctx->cfg, SRL_KEY_INSTANCE_ID))
        id = srl_config_str(ctx->cfg, SRL_KEY_INSTANCE_ID);
    if (!id && cur.instance_id[0])
        id = cur.instance_id;
    if (!id) {
        if (gethostname(host, sizeof(host)) != 0 || !host[0])
            snprintf(host, sizeof(host), "sysrepl");
        host[sizeof(host) - 1] = '\0';
        id = host;
    }
    const char *role = cli_opt(args, "role");
    if (!role && srl_config_is_set(ctx->cfg, SRL_KEY_ROLE))
        role = srl_config_str(ctx->cfg, SRL_KEY_ROLE);
    if (!role && cur.role[0])
        role = cur.role;
    if (!role)
        role = srl_config_str(ctx->cfg, SRL_KEY_ROLE);
    if (strcmp(id, cur.instance_id) != 0 || strcmp(role, cur.role) != 0) {
        rc = srl_store_set_settings(st, id, role, errstr, sizeof(errstr));
        if (rc != SRL_STORE_OK) {
            cli_error(ctx, "%s", errstr);
            code = rc == SRL_STORE_INVALID ? CLI_EXIT_USAGE : cli_exit_code(rc);
            goto cleanup;
        }
    }
    if (applied > 0)
        fprintf(ctx->out, "store %s: schema version %d -> %d (%d migration%s applied)\n",
                srl_store_where(st), before, srl_store_expected_version(), applied,
                applied == 1 ? "" : "s");
    else
        fprintf(ctx->out, "store %s: schema version %d, nothing to migrate\n", srl_store_where(st),
                before);
    fprintf(ctx->out, "instance \"%s\", role %s\n", id, role);
    if (strcmp(role, "hub") == 0) {
        init_capture(ctx, st);
    } else {
        bool dropped = false;
        rc = srl_store_wal_disengage(srl_store_conn(st), &dropped, errstr, sizeof(errstr));
        if (rc != SRL_STORE_OK) {
            cli_error(ctx, "%s", errstr);
            code = cli_exit_code(rc);
            goto cleanup;
        }
        if (dropped)
            fprintf(ctx->out, "capture: outbox triggers; replication slot dropped\n");
    }
    code = CLI_EXIT_OK;
cleanup:
    srl_store_close(st);
    return code;
}

/* ------------------------------------------------------------------ */
/* status                                                               */

typedef struct warnings {
    char text[8][320];
    int count;
} warnings_t;

static void warn_add(warnings_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn_add(warnings_t *w, const char *fmt, ...)
{
    if (w->count >= (int)(sizeof(w->text) / sizeof(w->text[0])))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text[w->count++], sizeof(w->text[0]), fmt, ap);
    va_end(ap);
}

static void collect_warnings(cli_ctx_t *ctx, const srl_store_status_t *s, warnings_t *w)
{
    bool spoke = strcmp(s->settings.role, "spoke") == 0;
    if (!s->settings.instance_id[0])
        warn_add(w, "the store has no instance id and role (run sysrepl init)");
    if (srl_config_is_set(ctx->cfg, SRL_KEY_ROLE) &&
        strcmp(srl_config_str(ctx->cfg, SRL_KEY_ROLE), s->settings.role) != 0)
        warn_add(w, "the config says role %s but the store says %s (sysrepl init --role ...)",
                 srl_config_str(ctx->cfg, SRL_KEY_ROLE), s->settings.role);
    if (spoke && s->outbox_depth > 0)
        warn_add(w,
                 "%" PRId64 " local edit%s on this pull instance (role spoke) will be "
                 "overwritten by the next sync",
                 s->outbox_depth, s->outbox_depth == 1 ? "" : "s");
    if (strcmp(s->capture_wal_status, "lost") == 0)
        warn_add(w,
                 "replication slot %s has lost WAL it needed: the producer publishes the"
                 " full state at its next start",
                 s->capture_slot);
    if (!spoke && s->outbox_oldest_age_ms > STALE_OUTBOX_MS)
        warn_add(w, "the oldest outbox change is %" PRId64 " s old: is sysrepl-producer running?",
                 s->outbox_oldest_age_ms / 1000);
    if (!spoke && s->producer_last_error[0])
        warn_add(w, "producer's last error: %s", s->producer_last_error);
    if (s->dead_letters > 0)
        warn_add(w, "%" PRId64 " dead letter%s; newest: %s", s->dead_letters,
                 s->dead_letters == 1 ? "" : "s", s->newest_dead_letter_reason);
    if (strcmp(s->last_log_level, "error") == 0)
        warn_add(w, "the last replication event was an error: %s", s->last_log_message);
    /* A spoke is caught up only on fresh evidence from the broker or the
     * bridge (consumer_offsets.caught_up_at, stamped every few seconds
     * while all is well): older evidence means the consumer is stopped,
     * behind, or cannot reach its source. */
    int64_t since = srl_clock_wall_ms() - s->consumer_oldest_caught_up_ms;
    if (spoke && s->consumer_partitions > 0 && s->consumer_oldest_caught_up_ms > 0 &&
        since > STALE_CAUGHT_UP_MS)
        warn_add(w,
                 "not caught up for %" PRId64 " s: is sysrepl-consumer running, and can it "
                 "reach the broker or bridge?",
                 since / 1000);
    if (spoke && strcmp(s->last_log_level, "warn") == 0 &&
        strcmp(s->last_log_component, "consumer") == 0 &&
        s->last_log_at_ms > s->consumer_oldest_caught_up_ms)
        warn_add(w, "the last replication event was a warning: %s", s->last_log_message);
}

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0 || !srl_json_format_time(ms, buf, size))
        snprintf(buf, size, "never");
}

static int print_status_json(cli_ctx_t *ctx, const srl_store_t *st, const srl_store_status_t *s,
                             const warnings_t *w)
{
    char t1[40], t2[40], t3[40], t4[40];
    fmt_time(s->producer_delivered_at_ms, t1, sizeof(t1));
    fmt_time(s->last_log_at_ms, t2, sizeof(t2));
    fmt_time(s->newest_dead_letter_at_ms, t3, sizeof(t3));
    fmt_time(s->consumer_oldest_caught_up_ms, t4, sizeof(t4));
    json_t *warn = json_array();
    for (int i = 0; warn && i < w->count; i++)
        json_array_append_new(warn, json_string(w->text[i]));
    json_t *o = json_pack(
        "{s:s, s:i, s:i, s:s, s:s,"
        " s:{s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I},"
        " s:{s:I, s:s, s:f, s:s},"
        " s:{s:s, s:s, s:s, s:s},"
        " s:{s:I, s:s, s:I, s:f},"
        " s:{s:I, s:s, s:s},"
        " s:o}",
        "store", srl_store_where(st), "schema_version", s->schema_version,
        "expected_schema_version", srl_store_expected_version(), "instance_id",
        s->settings.instance_id, "role", s->settings.role, "counts",
        srl_kind_name(SRL_KIND_ASSESSMENT_TYPE), (json_int_t)s->counts[SRL_KIND_ASSESSMENT_TYPE],
        srl_kind_name(SRL_KIND_ASSESSMENT), (json_int_t)s->counts[SRL_KIND_ASSESSMENT],
        srl_kind_name(SRL_KIND_POLICY), (json_int_t)s->counts[SRL_KIND_POLICY], "outbox", "depth",
        (json_int_t)s->outbox_depth, "oldest_age_ms", (json_int_t)s->outbox_oldest_age_ms,
        "last_version", (json_int_t)s->last_version, "producer", "last_delivered_version",
        (json_int_t)s->producer_last_delivered_version, "delivered_at", t1, "rate",
        s->producer_rate, "last_error", s->producer_last_error, "last_replication", "at", t2,
        "level", s->last_log_level, "component", s->last_log_component, "message",
        s->last_log_message, "consumer", "partitions", (json_int_t)s->consumer_partitions,
        "caught_up_at", t4, "lag_records", (json_int_t)s->consumer_lag_records, "lag_seconds",
        s->consumer_lag_seconds, "dead_letters", "count", (json_int_t)s->dead_letters, "newest_at",
        t3, "newest_reason", s->newest_dead_letter_reason, "warnings", warn ? warn : json_array());
    json_t *cap = s->capture_slot[0]
                      ? json_pack("{s:s, s:s, s:b, s:s, s:I}", "method", "wal", "slot",
                                  s->capture_slot, "active", s->capture_slot_active, "wal_status",
                                  s->capture_wal_status, "lag_bytes",
                                  (json_int_t)s->capture_lag_bytes)
                      : json_pack("{s:s}", "method", "outbox");
    if (o && cap)
        json_object_set_new(o, "capture", cap);
    else
        json_decref(cap);
    if (!o) {
        cli_error(ctx, "out of memory");
        return CLI_EXIT_USAGE;
    }
    json_dumpf(o, ctx->out, JSON_INDENT(2));
    fputc('\n', ctx->out);
    json_decref(o);
    return CLI_EXIT_OK;
}

static void print_status_text(cli_ctx_t *ctx, const srl_store_t *st, const srl_store_status_t *s,
                              const warnings_t *w)
{
    FILE *out = ctx->out;
    char t[40];
    fprintf(out, "store:            %s (schema version %d)\n", srl_store_where(st),
            s->schema_version);
    fprintf(out, "instance:         %s (role %s)\n",
            s->settings.instance_id[0] ? s->settings.instance_id : "(none)",
            s->settings.role[0] ? s->settings.role : "(none)");
    fprintf(out, "content:          %" PRId64 " %s, %" PRId64 " %s, %" PRId64 " %s\n",
            s->counts[SRL_KIND_ASSESSMENT_TYPE], srl_kind_name(SRL_KIND_ASSESSMENT_TYPE),
            s->counts[SRL_KIND_ASSESSMENT], srl_kind_name(SRL_KIND_ASSESSMENT),
            s->counts[SRL_KIND_POLICY], srl_kind_name(SRL_KIND_POLICY));
    if (s->outbox_depth > 0)
        fprintf(out,
                "outbox:           %" PRId64
                " change%s waiting, oldest %.1f s; last version %" PRId64 "\n",
                s->outbox_depth, s->outbox_depth == 1 ? "" : "s",
                (double)s->outbox_oldest_age_ms / 1000.0, s->last_version);
    else
        fprintf(out, "outbox:           empty; last version %" PRId64 "\n", s->last_version);
    if (s->capture_slot[0])
        fprintf(out,
                "capture:          WAL, slot %s (%s, %s), %" PRId64 " bytes not yet confirmed\n",
                s->capture_slot, s->capture_slot_active ? "active" : "inactive",
                s->capture_wal_status[0] ? s->capture_wal_status : "?", s->capture_lag_bytes);
    else
        fprintf(out, "capture:          outbox triggers\n");
    if (strcmp(s->settings.role, "spoke") != 0) {
        fmt_time(s->producer_delivered_at_ms, t, sizeof(t));
        fprintf(out,
                "producer:         delivered up to version %" PRId64
                ", last at %s, %.1f records/s\n",
                s->producer_last_delivered_version, t, s->producer_rate);
    } else {
        fmt_time(s->consumer_oldest_caught_up_ms, t, sizeof(t));
        fprintf(out,
                "consumer:         %" PRId64 " partition%s, lag %" PRId64
                " records / %.1f s, all caught up at %s\n",
                s->consumer_partitions, s->consumer_partitions == 1 ? "" : "s",
                s->consumer_lag_records, s->consumer_lag_seconds, t);
    }
    if (s->last_log_at_ms > 0) {
        fmt_time(s->last_log_at_ms, t, sizeof(t));
        fprintf(out, "last replication: %s %s %s: %s\n", t, s->last_log_component,
                s->last_log_level, s->last_log_message);
    } else {
        fprintf(out, "last replication: never\n");
    }
    if (s->dead_letters > 0) {
        fmt_time(s->newest_dead_letter_at_ms, t, sizeof(t));
        fprintf(out, "dead letters:     %" PRId64 ", newest at %s: %s\n", s->dead_letters, t,
                s->newest_dead_letter_reason);
    } else {
        fprintf(out, "dead letters:     0\n");
    }
    for (int i = 0; i < w->count; i++)
        fprintf(out, "warning: %s\n", w->text[i]);
}

int cli_cmd_status(cli_ctx_t *ctx, const cli_cmd_t *cmd, cli_args_t *args)
{
    (void)cmd;
    char errstr[512];
    int code;
    srl_store_t *st = cli_connect(ctx, false, &code);
    if (!st)
        return code;
    srl_store_status_t s;
    warnings_t w = {.count = 0};
    srl_store_rc_t rc = srl_store_get_status(st, &s, errstr, sizeof(errstr));
    if (rc != SRL_STORE_OK) {
        cli_error(ctx, "%s", errstr);
        code = cli_exit_code(rc);
        goto cleanup;
    }
    collect_warnings(ctx, &s, &w);
    if (cli_opt(args, "json"))
        code = print_status_json(ctx, st, &s, &w);
    else {
        print_status_text(ctx, st, &s, &w);
        code = CLI_EXIT_OK;
    }
cleanup:
    srl_store_close(st);
    return code;
}
