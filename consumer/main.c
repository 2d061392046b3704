/*
 * main.c - sysrepl-consumer: a spoke's replication daemon. Reads the topics
 * of the replicated kinds and applies them to the spoke's store.
 *
 *   sysrepl-consumer [-c FILE] [-X key=value]... [--replay] [--until-caught-up]
 *
 * Start: connect to the store (waiting while it is away), check its schema,
 * find the partitions of the topics (waiting while the hub has not created
 * them). Rebuild (rebuild.c) when the store has no offsets for a topic
 * (first sync), on --replay, or when the spoke last caught up longer ago
 * than the topic keeps tombstones. Then loop: fetch a batch from the
 * store's offsets, decode it (decode.c, loading new writer schemas with
 * schemas_load.c), apply it with its offsets and dead letters in one
 * transaction (apply.c), then tell Kafka the offsets (advisory).
 *
 * Signals: SIGTERM and SIGINT set a flag; the loop finishes the batch in
 * hand, and exits 0 (a rebuild in progress is rolled back). SIGHUP is
 * ignored. kill -9 anywhere is safe: offsets are committed with the rows
 * they produced, and applying is version-guarded.
 *
 * Failures: the broker away -> librdkafka reconnects, the loop waits; the
 * store away -> reconnect with backoff, re-read the offsets, re-seek; a
 * record that cannot be decoded or stored -> dead_letters, go on; a bad
 * config -> exit 1, a store at the wrong schema version -> exit 3, other
 * fatal errors -> exit 4, each with the reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"
#include "sysrepl/store.h"

#include "apply.h"
#include "deadletter.h"
#include "decode.h"
#include "rebuild.h"
#include "schemas_load.h"
#include "source.h"
#include "source_http.h"

/* Exit codes, as sysrepl-producer's: */
#define EXIT_OK 0    /* stopped cleanly (SIGTERM/SIGINT, --until-caught-up) */
#define EXIT_USAGE 1 /* bad arguments or config (the message names the key) */
#define EXIT_STORE 3 /* store unusable: bad DSN, authentication, schema version */
#define EXIT_FAIL 4  /* fatal: the topics cannot be read, a rebuild failed, ... */

#define META_TIMEOUT_MS 10000
#define REBUILD_BATCH_MAX 5000 /* records per read during a rebuild */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HEARTBEAT_MS 5000 /* how often an idle, caught-up spoke stamps caught_up_at */

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep up to ms, waking early on a stop signal. */
static void nap(int64_t ms)
{
    int64_t end = mono_ms() + ms;
    while (!stop_flag && mono_ms() < end)
        usleep(20000);
}

/* ---- replication_log: important lines, through the log sink ---- */

/* The sink runs under the log mutex, possibly on a librdkafka thread: it
 * only queues; the main loop writes the queue into replication_log with
 * the next transaction (or on its own when idle). */
#define LOGQ_MAX 256
typedef struct logq_line {
    srl_log_level_t lvl;
    char text[512];
} logq_line_t;

static pthread_mutex_t logq_mutex = PTHREAD_MUTEX_INITIALIZER;
static logq_line_t logq[LOGQ_MAX];
static size_t logq_len;
static size_t logq_dropped;

static void log_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                     const char *kv)
{
    (void)ctx;
    /* The consumer's own events, not the periodic stats line nor
     * librdkafka's chatter (which stays in the process log). */
    if (strcmp(component, "consumer") != 0 || strcmp(msg, "stats") == 0)
        return;
    pthread_mutex_lock(&logq_mutex);
    if (logq_len < LOGQ_MAX) {
        logq[logq_len].lvl = lvl;
        snprintf(logq[logq_len].text, sizeof(logq[logq_len].text), "%s%s%s", msg,
                 kv && kv[0] ? " " : "", kv ? kv : "");
        logq_len++;
    } else {
        logq_dropped++;
    }
    pthread_mutex_unlock(&logq_mutex);
}

/* Take the queued lines as INSERT statements into sql (appended). The
 * queue is emptied; on a failed commit the lines are lost from the table
 * but not from the process log. */
static bool logq_take_sql(PGconn *conn, srl_buf_t *sql)
{
    logq_line_t lines[LOGQ_MAX];
    size_t n;
    pthread_mutex_lock(&logq_mutex);
    n = logq_len;
    memcpy(lines, logq, n * sizeof(*lines));
    logq_len = 0;
    pthread_mutex_unlock(&logq_mutex);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        char *lit = PQescapeLiteral(conn, lines[i].text, strlen(lines[i].text));
        if (!lit)
            continue;
        char head[128];
        int m = snprintf(head, sizeof(head),
                         "INSERT INTO replication_log (level, component, message) VALUES ('%s',"
                         " 'consumer', ",
                         srl_log_level_name(lines[i].lvl));
        ok = srl_buf_add(sql, head, (size_t)m) && srl_buf_add(sql, lit, strlen(lit)) &&
             srl_buf_add(sql, ");", 2);
        PQfreemem(lit);
    }
    return ok;
}

static bool logq_pending(void)
{
    pthread_mutex_lock(&logq_mutex);
    bool any = logq_len > 0;
    pthread_mutex_unlock(&logq_mutex);
    return any;
}

/* ---- the consumer ---- */

typedef struct topic_state {
    srl_kind_t kind;
    char name[256];
    int partitions;
} topic_state_t;

typedef struct consumer {
    const srl_config_t *cfg;
    bool replay;
    bool until_caught_up;
    char instance_id[128];
    char local_origin[128];
    const char *dsn;
    srl_store_t *st;
    bool lag_columns;
    srl_registry_t *reg;
    srl_source_t *src;
    srl_schemas_loader_t *loader;
    srl_apply_t *apply;
    topic_state_t topics[SRL_KIND_COUNT];
    size_t ntopics;
    /* one position per partition of every topic */
    srl_source_pos_t *pos;
    int64_t *pos_last_ts; /* timestamp of the newest record applied (ms) */
    size_t npos;
    srl_deadletters_t dl;
    srl_source_batch_t batch;
    srl_buf_t extra;
    /* stats since start and since the last stats line */
    int64_t total_records, total_upserted, total_deleted, total_stale, total_dead;
    int64_t total_split; /* batches applied on more than one session */
    int64_t window_records, window_start_ms, last_stats_ms, last_heartbeat_ms;
    int64_t lag_records;
    double lag_seconds;
    /* where the loop's time goes since start: waiting for records
     * (fetch), decoding and formatting them (decode), the apply
     * transaction (store) */
    int64_t fetch_ms, decode_ms, store_ms;
} consumer_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sysrepl-consumer [-c FILE] [-X key=value]... [--replay] [--until-caught-up]\n"
            "\n"
            "Reads the replicated kinds' topics and applies them to this spoke's store.\n"
            "  --replay            rebuild the spoke from offset 0 of every topic, then go on\n"
            "  --until-caught-up   exit 0 once every partition is caught up (tests, scripts)\n"
            "  -c FILE             config file; -X key=value overrides one key\n"
            "  --help, --version\n\n");
    srl_config_print_help(out, SRL_PROG_CONSUMER);
}

/* Connect (or reconnect) to the store, waiting with backoff while it is
 * away. False on a fatal problem (bad DSN, wrong schema) or a stop. */
static bool store_connect(consumer_t *c)
{
    char err[512];
    int64_t backoff = BACKOFF_MIN_MS;
    bool warned = false;
    srl_store_close(c->st);
    c->st = NULL;
    if (c->apply)
        srl_apply_drop_sessions(c->apply);
    while (!stop_flag) {
        srl_store_rc_t rc;
        c->st = srl_store_connect(c->dsn, &rc, err, sizeof(err));
        if (c->st) {
            rc = srl_store_check_version(c->st, err, sizeof(err));
            if (rc == SRL_STORE_OK)
                rc = srl_apply_prepare(srl_store_conn(c->st), err, sizeof(err));
            if (rc == SRL_STORE_OK)
                break;
            srl_store_close(c->st);
            c->st = NULL;
        }
        if (rc != SRL_STORE_UNREACHABLE && rc != SRL_STORE_RETRY) {
            srl_log(SRL_LOG_ERROR, "consumer", "store unusable", "reason=%s", srl_log_q(err));
            return false;
        }
        if (!warned)
            srl_log(SRL_LOG_WARN, "consumer", "store unreachable, waiting", "reason=%s",
                    srl_log_q(err));
        warned = true;
        nap(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (!c->st)
        return false;
    if (warned)
        srl_log(SRL_LOG_INFO, "consumer", "store reachable again", "where=%s",
                srl_log_q(srl_store_where(c->st)));

    PGconn *conn = srl_store_conn(c->st);
    PGresult *res = PQexec(conn, "SELECT count(*) FROM information_schema.columns WHERE"
                                 " table_name = 'consumer_offsets' AND column_name IN"
                                 " ('high_watermark', 'lag_seconds')"
                                 " AND table_schema = current_schema()");
    c->lag_columns = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                     strcmp(PQgetvalue(res, 0, 0), "2") == 0;
    PQclear(res);
    srl_store_settings_t s;
    if (srl_store_get_settings(c->st, &s, err, sizeof(err)) == SRL_STORE_OK && s.instance_id[0])
        snprintf(c->local_origin, sizeof(c->local_origin), "%s", s.instance_id);
    else
        snprintf(c->local_origin, sizeof(c->local_origin), "%s", c->instance_id);
    return true;
}

/* Wait for every topic's partition count. False on stop or fatal. */
static bool find_partitions(consumer_t *c)
{
    char err[512];
    int64_t last_warn = 0;
    for (size_t t = 0; t < c->ntopics; t++) {
        while (!stop_flag) {
            int n = 0;
            srl_source_rc_t rc = c->src->ops->partitions(c->src, c->topics[t].name, &n,
                                                         META_TIMEOUT_MS, err, sizeof(err));
            if (rc == SRL_SOURCE_OK) {
                c->topics[t].partitions = n;
                break;
            }
            if (rc == SRL_SOURCE_FATAL) {
                srl_log(SRL_LOG_ERROR, "consumer", "cannot read topic", "topic=%s reason=%s",
                        srl_log_q(c->topics[t].name), srl_log_q(err));
                return false;
            }
            if (mono_ms() - last_warn > 30000) {
                srl_log(SRL_LOG_WARN, "consumer", "waiting for topic", "topic=%s reason=%s",
                        srl_log_q(c->topics[t].name), srl_log_q(err));
                last_warn = mono_ms();
            }
            nap(1000);
        }
    }
    if (stop_flag)
        return false;
    size_t total = 0;
    for (size_t t = 0; t < c->ntopics; t++)
        total += (size_t)c->topics[t].partitions;
    free(c->pos);
    free(c->pos_last_ts);
    c->pos = calloc(total, sizeof(*c->pos));
    c->pos_last_ts = calloc(total, sizeof(*c->pos_last_ts));
    if (!c->pos || !c->pos_last_ts)
        return false;
    c->npos = 0;
    for (size_t t = 0; t < c->ntopics; t++)
        for (int p = 0; p < c->topics[t].partitions; p++)
            c->pos[c->npos++] = (srl_source_pos_t){c->topics[t].name, c->topics[t].kind, p, 0};
    return true;
}

/* Offsets from the store into the positions. has_rows[t]: the store has
 * offsets for topic t; caught_up_ms[t]: min caught_up_at (0 when never). */
static srl_store_rc_t read_offsets(consumer_t *c, bool *has_rows, int64_t *caught_up_ms,
                                   char *err, size_t errsize)
{
    PGconn *conn = srl_store_conn(c->st);
    PGresult *res = PQexec(conn, "SELECT topic, partition, next_offset,"
                                 " (extract(epoch FROM caught_up_at) * 1000)::bigint"
                                 " FROM consumer_offsets");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        srl_store_rc_t rc = srl_store_classify(conn, res, "reading consumer_offsets", err, errsize);
        PQclear(res);
        return rc;
    }
    for (size_t t = 0; t < c->ntopics; t++) {
        has_rows[t] = false;
        caught_up_ms[t] = INT64_MAX;
    }
    for (size_t i = 0; i < c->npos; i++)
        c->pos[i].offset = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *topic = PQgetvalue(res, r, 0);
        int part = (int)strtol(PQgetvalue(res, r, 1), NULL, 10); /* server-formatted */
        int64_t next = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        for (size_t t = 0; t < c->ntopics; t++) {
            if (strcmp(c->topics[t].name, topic) != 0)
                continue;
            has_rows[t] = true;
            int64_t cu = PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);
            if (!PQgetisnull(res, r, 3) && cu < caught_up_ms[t])
                caught_up_ms[t] = cu;
        }
        for (size_t i = 0; i < c->npos; i++)
            if (c->pos[i].partition == part && strcmp(c->pos[i].topic, topic) == 0)
                c->pos[i].offset = next;
    }
    PQclear(res);
    for (size_t t = 0; t < c->ntopics; t++)
        if (caught_up_ms[t] == INT64_MAX)
            caught_up_ms[t] = 0;
    return SRL_STORE_OK;
}

static void format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms >= 86400000LL && ms % 86400000LL == 0)
        snprintf(buf, size, "%" PRId64 "d", ms / (int64_t)86400000);
    else if (ms >= 86400000LL)
        snprintf(buf, size, "%.1fd", ms / 86400000.0);
    else if (ms >= 3600000LL)
        snprintf(buf, size, "%.1fh", ms / 3600000.0);
    else if (ms >= 60000LL)
        snprintf(buf, size, "%.1fm", ms / 60000.0);
    else if (ms >= 1000LL)
        snprintf(buf, size, "%.1fs", ms / 1000.0);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
}

/* Read the offsets and rebuild the topics that need it: no offsets (first
 * sync), --replay (once), or beyond the tombstone horizon. Returns 0 on
 * success, 1 to retry (something is away), -1 fatal or stopped. */
static int sync_start(consumer_t *c)
{
    char err[1024];
    bool has_rows[SRL_KIND_COUNT];
    int64_t caught_up[SRL_KIND_COUNT];
    srl_rebuild_topic_t todo[SRL_KIND_COUNT];
    size_t ntodo = 0;

    srl_store_rc_t src = read_offsets(c, has_rows, caught_up, err, sizeof(err));
    if (src != SRL_STORE_OK)
        return src == SRL_STORE_UNREACHABLE || src == SRL_STORE_RETRY ? 1 : -1;
    for (size_t t = 0; t < c->ntopics; t++) {
        const topic_state_t *ts = &c->topics[t];
        bool need = false;
        if (c->replay) {
            need = true;
            srl_log(SRL_LOG_INFO, "consumer", "rebuilding: replay requested", "topic=%s",
                    srl_log_q(ts->name));
        } else if (!has_rows[t]) {
            need = true;
            srl_log(SRL_LOG_INFO, "consumer", "rebuilding: first sync", "topic=%s",
                    srl_log_q(ts->name));
        } else if (caught_up[t] > 0) {
            int64_t retention = 0;
            srl_source_rc_t rc = c->src->ops->tombstone_retention_ms(
                c->src, ts->name, &retention, META_TIMEOUT_MS, err, sizeof(err));
            /* The broker answered metadata moments ago (find_partitions),
             * so a failure here is a permission or broker-side matter:
             * say so loudly, but do not stop replicating over it. */
            if (rc != SRL_SOURCE_OK)
                srl_log(SRL_LOG_WARN, "consumer",
                        "tombstone horizon not checked: cannot read delete.retention.ms",
                        "topic=%s reason=%s", srl_log_q(ts->name), srl_log_q(err));
            int64_t away = now_ms() - caught_up[t];
            if (rc == SRL_SOURCE_OK && retention >= 0 && away > retention) {
                char a[32], r[32], msg[256];
                format_duration(away, a, sizeof(a));
                format_duration(retention, r, sizeof(r));
                snprintf(msg, sizeof(msg),
                         "rebuilding: last caught up %s ago, beyond delete.retention.ms=%s of "
                         "topic %s",
                         a, r, ts->name);
                srl_log(SRL_LOG_WARN, "consumer", msg, "topic=%s", srl_log_q(ts->name));
                need = true;
            }
        }
        if (need)
            todo[ntodo++] = (srl_rebuild_topic_t){ts->kind, ts->name, ts->partitions};
    }
    if (ntodo > 0) {
        srl_rebuild_stats_t rs;
        int64_t t0 = mono_ms();
        /* A rebuild streams its rows through COPY: bigger reads buy it
         * nothing, and its memory stays bounded by REBUILD_BATCH_MAX. */
        size_t rebuild_batch = (size_t)srl_config_get_int(c->cfg, "consumer.batch_size");
        if (rebuild_batch > REBUILD_BATCH_MAX)
            rebuild_batch = REBUILD_BATCH_MAX;
        srl_rebuild_rc_t rc = srl_rebuild(c->src, srl_store_conn(c->st), c->reg, c->loader, todo,
                                          ntodo, c->local_origin, c->lag_columns, rebuild_batch,
                                          &stop_flag, &rs, err, sizeof(err));
        switch (rc) {
        case SRL_REBUILD_OK:
            break;
        case SRL_REBUILD_STOPPED:
            srl_log(SRL_LOG_INFO, "consumer", "rebuild stopped, nothing changed", NULL);
            return -1;
        case SRL_REBUILD_SOURCE_RETRY:
        case SRL_REBUILD_STORE_RETRY:
            srl_log(SRL_LOG_WARN, "consumer", "rebuild interrupted, will retry", "reason=%s",
                    srl_log_q(err));
            return 1;
        default:
            srl_log(SRL_LOG_ERROR, "consumer", "rebuild failed", "reason=%s", srl_log_q(err));
            return -1;
        }
        int64_t ms = mono_ms() - t0;
        srl_log(SRL_LOG_INFO, "consumer", "rebuild finished",
                "topics=%zu records=%" PRId64 " rows=%" PRId64 " tombstones=%" PRId64
                " repeated_keys=%" PRId64 " dead_letters=%" PRId64 " ms=%" PRId64
                " records_per_s=%.0f fetch_wait_ms=%" PRId64 " store_wait_ms=%" PRId64,
                ntodo, rs.records, rs.rows, rs.tombstones, rs.diverted, rs.dead_letters, ms,
                ms > 0 ? rs.records * 1000.0 / ms : 0.0, rs.fetch_ms, rs.store_ms);
        c->total_dead += rs.dead_letters;
        c->replay = false;
        src = read_offsets(c, has_rows, caught_up, err, sizeof(err));
        if (src != SRL_STORE_OK)
            return src == SRL_STORE_UNREACHABLE || src == SRL_STORE_RETRY ? 1 : -1;
    }
    return 0;
}

/* Decode records[lo, hi) into the apply set and dead letters, and advance
 * work[] (positions) past them. */
static void stage_range(consumer_t *c, const srl_record_t *records, size_t lo, size_t hi,
                        srl_source_pos_t *work, const char *force_dead_reason)
{
    char key[1024], reason[1024], err[512];
    for (size_t i = lo; i < hi; i++) {
        const srl_record_t *r = &records[i];
        size_t pi = 0;
        for (; pi < c->npos; pi++)
            if (work[pi].kind == r->kind && work[pi].partition == r->partition)
                break;
        const char *topic = pi < c->npos ? work[pi].topic : "?";
        if (force_dead_reason) {
            srl_deadletter_add(&c->dl, topic, r, force_dead_reason);
        } else {
            srl_entity_t e;
            srl_decoded_t d = srl_decode_record(c->reg, c->loader, r, &e, key, sizeof(key),
                                                reason, sizeof(reason));
            if (d == SRL_DECODED_DEAD) {
                srl_deadletter_add(&c->dl, topic, r, reason);
            } else if (d == SRL_DECODED_TOMBSTONE) {
                if (!srl_apply_add_tombstone(c->apply, r->kind, key, r->version, r->origin,
                                             r->timestamp_ms))
                    srl_deadletter_add(&c->dl, topic, r, "out of memory staging the tombstone");
            } else {
                if (!srl_apply_add_upsert(c->apply, &e, key, err, sizeof(err)))
                    srl_deadletter_add(&c->dl, topic, r, err);
                srl_entity_clear(&e);
            }
        }
        if (pi < c->npos && r->offset >= work[pi].offset) {
            work[pi].offset = r->offset + 1;
            if (r->timestamp_ms > c->pos_last_ts[pi])
                c->pos_last_ts[pi] = r->timestamp_ms;
        }
    }
}

/* Build the offset updates from work[] and the batch's watermarks. */
static size_t offset_updates(consumer_t *c, const srl_source_pos_t *work,
                             const srl_source_batch_t *b, srl_offset_update_t *out,
                             bool *all_caught_up)
{
    int64_t now = now_ms();
    *all_caught_up = true;
    c->lag_records = 0;
    c->lag_seconds = 0;
    for (size_t i = 0; i < c->npos; i++) {
        int64_t high = i < b->npos ? b->high[i] : -1;
        bool caught = (i < b->npos && b->eof[i] && work[i].offset >= c->pos[i].offset) ||
                      (high >= 0 && work[i].offset >= high);
        double lag_s = -1;
        if (caught)
            lag_s = 0;
        else if (c->pos_last_ts[i] > 0)
            lag_s = (now - c->pos_last_ts[i]) / 1000.0;
        if (!caught)
            *all_caught_up = false;
        if (high >= 0 && high > work[i].offset)
            c->lag_records += high - work[i].offset;
        if (lag_s > c->lag_seconds)
            c->lag_seconds = lag_s;
        out[i] = (srl_offset_update_t){work[i].topic, work[i].partition, work[i].offset,
                                       caught, high, lag_s};
    }
    return c->npos;
}

/* Commit what is staged. On INVALID (a row the store refuses: a check
 * constraint, bad UTF-8), the caller bisects. */
static srl_store_rc_t commit_staged(consumer_t *c, const srl_offset_update_t *offs, size_t noffs,
                                    char *err, size_t errsize)
{
    srl_apply_stats_t s = {0};
    PGconn *conn = srl_store_conn(c->st);
    c->extra.len = 0;
    if (!logq_take_sql(conn, &c->extra) || !srl_buf_add(&c->extra, "", 1)) {
        snprintf(err, errsize, "out of memory");
        return SRL_STORE_FATAL;
    }
    int64_t t0 = mono_ms();
    srl_store_rc_t rc = srl_apply_commit(c->apply, conn, offs, noffs, c->lag_columns, &c->dl,
                                         c->extra.data, &s, err, errsize);
    c->store_ms += mono_ms() - t0;
    if (rc == SRL_STORE_OK) {
        c->total_records += s.records + (int64_t)c->dl.count;
        c->window_records += s.records + (int64_t)c->dl.count;
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            c->total_upserted += s.upserted[k];
            c->total_deleted += s.deleted[k];
        }
        c->total_stale += s.stale;
        c->total_split += s.sessions > 1;
        c->total_dead += (int64_t)c->dl.count;
    }
    srl_apply_reset(c->apply);
    srl_deadletter_reset(&c->dl);
    return rc;
}

/* Apply records[lo, hi) of the batch, starting from positions work[]
 * (advanced on success). Bisects on rows the store refuses, down to the
 * one record, which is dead-lettered with the store's reason. */
static srl_store_rc_t apply_range(consumer_t *c, const srl_record_t *records, size_t lo,
                                  size_t hi, srl_source_pos_t *work, const srl_source_batch_t *b,
                                  srl_offset_update_t *offs, bool *caught_up, char *err,
                                  size_t errsize)
{
    srl_source_pos_t *trial = malloc(c->npos * sizeof(*trial));
    if (!trial) {
        snprintf(err, errsize, "out of memory");
        return SRL_STORE_FATAL;
    }
    memcpy(trial, work, c->npos * sizeof(*trial));
    int64_t t0 = mono_ms();
    stage_range(c, records, lo, hi, trial, NULL);
    c->decode_ms += mono_ms() - t0;
    size_t n = offset_updates(c, trial, b, offs, caught_up);
    srl_store_rc_t rc = commit_staged(c, offs, n, err, errsize);
    if (rc == SRL_STORE_INVALID) {
        if (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            rc = apply_range(c, records, lo, mid, work, b, offs, caught_up, err, errsize);
            if (rc == SRL_STORE_OK)
                rc = apply_range(c, records, mid, hi, work, b, offs, caught_up, err, errsize);
            free(trial);
            return rc;
        }
        /* One record the store refuses: dead-letter it with the reason. */
        char reason[600];
        snprintf(reason, sizeof(reason), "refused by the store: %s", err);
        memcpy(trial, work, c->npos * sizeof(*trial));
        stage_range(c, records, lo, hi, trial, reason);
        n = offset_updates(c, trial, b, offs, caught_up);
        rc = commit_staged(c, offs, n, err, errsize);
    }
    if (rc == SRL_STORE_OK)
        memcpy(work, trial, c->npos * sizeof(*trial));
    free(trial);
    return rc;
}

static void stats_line(consumer_t *c, bool force)
{
    int64_t interval = srl_config_get_int(c->cfg, "stats.interval_ms");
    int64_t now = mono_ms();
    if (!force && (interval <= 0 || now - c->last_stats_ms < interval))
        return;
    if (force && c->window_records == 0 && now - c->last_stats_ms < 1000)
        return; /* the periodic line just said it all */
    double secs = (now - c->window_start_ms) / 1000.0;
    srl_log(SRL_LOG_INFO, "consumer", "stats",
            "records=%" PRId64 " upserted=%" PRId64 " deleted=%" PRId64 " stale=%" PRId64
            " dead_letters=%" PRId64 " rate=%.0f lag_records=%" PRId64 " lag_seconds=%.3f"
            " fetch_ms=%" PRId64 " decode_ms=%" PRId64 " store_ms=%" PRId64
            " split_batches=%" PRId64,
            c->total_records, c->total_upserted, c->total_deleted, c->total_stale, c->total_dead,
            secs > 0 ? c->window_records / secs : 0.0, c->lag_records, c->lag_seconds,
            c->fetch_ms, c->decode_ms, c->store_ms, c->total_split);
    c->last_stats_ms = now;
    c->window_start_ms = now;
    c->window_records = 0;
}

/* After the store came back: reconnect, re-read offsets (the store is the
 * authority), re-check the horizon. False on fatal or stop. */
static bool recover_store(consumer_t *c)
{
    for (;;) {
        if (!store_connect(c))
            return false;
        int r = sync_start(c);
        if (r == 0)
            return true;
        if (r < 0)
            return false;
        nap(BACKOFF_MAX_MS);
    }
}

static int run(consumer_t *c)
{
    char err[1024];
    srl_offset_update_t *offs = NULL;
    srl_source_pos_t *work = NULL;
    int status = EXIT_FAIL;
    int64_t backoff = BACKOFF_MIN_MS;

    if (!store_connect(c))
        return stop_flag ? EXIT_OK : EXIT_STORE;
    if (!find_partitions(c))
        return stop_flag ? EXIT_OK : EXIT_FAIL;
    for (;;) {
        int r = sync_start(c);
        if (r == 0)
            break;
        if (r < 0 || stop_flag)
            return stop_flag ? EXIT_OK : EXIT_FAIL;
        nap(BACKOFF_MAX_MS);
        if (!store_connect(c))
            return stop_flag ? EXIT_OK : EXIT_STORE;
    }
    offs = calloc(c->npos, sizeof(*offs));
    work = calloc(c->npos, sizeof(*work));
    if (!offs || !work)
        goto done;
    size_t batch_size = (size_t)srl_config_get_int(c->cfg, "consumer.batch_size");
    int poll_ms = (int)srl_config_get_int(c->cfg, "consumer.poll_timeout_ms");
    c->window_start_ms = c->last_stats_ms = c->last_heartbeat_ms = mono_ms();
    srl_log(SRL_LOG_INFO, "consumer", "replicating",
            "topics=%zu partitions=%zu instance=%s", c->ntopics, c->npos,
            srl_log_q(c->instance_id));

    while (!stop_flag) {
        int64_t t0 = mono_ms();
        srl_source_rc_t frc = c->src->ops->fetch(c->src, c->pos, c->npos, batch_size, poll_ms,
                                                 &c->batch, err, sizeof(err));
        int64_t t1 = mono_ms();
        c->fetch_ms += t1 - t0;
        if (frc == SRL_SOURCE_FATAL) {
            srl_log(SRL_LOG_ERROR, "consumer", "cannot read the topics", "reason=%s",
                    srl_log_q(err));
            goto done;
        }
        if (frc == SRL_SOURCE_RETRY) {
            srl_log(SRL_LOG_DEBUG, "consumer", "fetch failed, retrying", "reason=%s",
                    srl_log_q(err));
            nap(poll_ms);
            continue;
        }
        memcpy(work, c->pos, c->npos * sizeof(*work));
        bool caught_up = false;
        bool idle = c->batch.count == 0;
        /* An idle spoke still stamps caught_up_at now and then, so the
         * tombstone horizon measures time away, not time without news. */
        bool heartbeat = idle && (mono_ms() - c->last_heartbeat_ms >= HEARTBEAT_MS ||
                                  logq_pending());
        if (!idle || heartbeat) {
            srl_store_rc_t rc = apply_range(c, c->batch.records, 0, c->batch.count, work,
                                            &c->batch, offs, &caught_up, err, sizeof(err));
            c->src->ops->release(c->src, &c->batch);
            if (rc == SRL_STORE_UNREACHABLE || rc == SRL_STORE_RETRY) {
                srl_log(SRL_LOG_WARN, "consumer", "store failed, batch not applied",
                        "reason=%s", srl_log_q(err));
                nap(backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                if (!recover_store(c))
                    break;
                continue; /* positions re-read from the store */
            }
            if (rc != SRL_STORE_OK) {
                srl_log(SRL_LOG_ERROR, "consumer", "store refused the batch", "reason=%s",
                        srl_log_q(err));
                goto done;
            }
            backoff = BACKOFF_MIN_MS;
            memcpy(c->pos, work, c->npos * sizeof(*work));
            c->src->ops->committed(c->src, c->pos, c->npos);
            c->last_heartbeat_ms = mono_ms();
        } else {
            c->src->ops->release(c->src, &c->batch);
            offset_updates(c, work, &c->batch, offs, &caught_up);
        }
        stats_line(c, false);
        if (c->until_caught_up && caught_up) {
            srl_log(SRL_LOG_INFO, "consumer", "caught up, exiting (--until-caught-up)", NULL);
            break;
        }
    }
    stats_line(c, true);
    status = EXIT_OK;
done:
    free(offs);
    free(work);
    return status;
}

int main(int argc, char **argv)
{
    char err[1024];
    consumer_t c = {0};
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    int status = EXIT_FAIL;

    if (!cfg) {
        fprintf(stderr, "sysrepl-consumer: out of memory\n");
        return EXIT_FAIL;
    }
    static const srl_cmdline_opt_t opts[] = {
        {"replay", 0, NULL, "rebuild the spoke from offset 0 of every topic, then go on"},
        {"until-caught-up", 0, NULL, "exit 0 once every partition is caught up (tests, scripts)"},
        {NULL, 0, NULL, NULL}};
    const srl_cmdline_t cmdline = {.program = "sysrepl-consumer", .prog_mask = SRL_PROG_CONSUMER,
                                   .opts = opts, .usage = usage};
    const char *opt[2];
    int rc = srl_cmdline_parse(&cmdline, cfg, &argc, argv, opt);
    if (rc != SRL_CMDLINE_RUN) {
        srl_config_free(cfg);
        return rc == 0 ? EXIT_OK : EXIT_USAGE;
    }
    c.replay = opt[0] != NULL;
    c.until_caught_up = opt[1] != NULL;
    if (!srl_config_require(cfg, "instance.id", err, sizeof(err)) ||
        !srl_config_require(cfg, "store.dsn", err, sizeof(err))) {
        fprintf(stderr, "sysrepl-consumer: %s\n", err);
        srl_config_free(cfg);
        return EXIT_USAGE;
    }
    srl_log_set_level((srl_log_level_t)srl_config_get_enum(cfg, "log.level"));

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    c.cfg = cfg;
    c.dsn = srl_config_get_str(cfg, "store.dsn");
    snprintf(c.instance_id, sizeof(c.instance_id), "%s", srl_config_get_str(cfg, "instance.id"));
    const char *prefix = srl_config_get_str(cfg, "topic.prefix");
    unsigned mask = srl_config_get_list_mask(cfg, "replicate");
    /* Apply order: types before the assessments that name them. */
    static const srl_kind_t order[] = {SRL_KIND_ASSESSMENT_TYPE, SRL_KIND_ASSESSMENT,
                                       SRL_KIND_POLICY};
    for (size_t i = 0; i < 3; i++) {
        srl_kind_t k = order[i];
        bool want = k == SRL_KIND_POLICY ? (mask & SRL_REPLICATE_POLICIES)
                                         : (mask & SRL_REPLICATE_ASSESSMENTS);
        if (!want)
            continue;
        c.topics[c.ntopics].kind = k;
        if (!srl_topic_name(prefix, k, c.topics[c.ntopics].name, sizeof(c.topics[0].name))) {
            fprintf(stderr, "sysrepl-consumer: topic.prefix is too long\n");
            goto cleanup;
        }
        c.ntopics++;
    }
    char schemas_topic[256];
    if (!srl_topic_name_schemas(prefix, schemas_topic, sizeof(schemas_topic))) {
        fprintf(stderr, "sysrepl-consumer: topic.prefix is too long\n");
        goto cleanup;
    }
    c.reg = srl_registry_new(err, sizeof(err));
    if (!c.reg) {
        fprintf(stderr, "sysrepl-consumer: schema registry: %s\n", err);
        goto cleanup;
    }
    /* The transport seam: Kafka directly, or a sysrepl-bridge over HTTP(S)
     * for a spoke that cannot reach the broker. Everything after this
     * line is the same for both. */
    if (srl_config_get_enum(cfg, "transport") == SRL_TRANSPORT_HTTP)
        c.src = srl_source_http_open(cfg, err, sizeof(err));
    else
        c.src = srl_source_kafka_open(cfg, c.instance_id, err, sizeof(err));
    if (!c.src) {
        fprintf(stderr, "sysrepl-consumer: %s\n", err);
        if (srl_config_get_enum(cfg, "transport") == SRL_TRANSPORT_HTTP) {
            status = EXIT_USAGE;
        }
        goto cleanup;
    }
    c.loader = srl_schemas_loader_new(c.src, schemas_topic);
    c.apply = srl_apply_new(c.instance_id);
    if (!c.loader || !c.apply ||
        !srl_apply_set_sessions(c.apply, c.dsn,
                                (size_t)srl_config_get_int(cfg, "consumer.apply_sessions"),
                                (size_t)srl_config_get_int(cfg, "consumer.apply_split_min"))) {
        fprintf(stderr, "sysrepl-consumer: out of memory\n");
        goto cleanup;
    }
    srl_log_set_sink(log_sink, NULL);
    srl_log(SRL_LOG_INFO, "consumer", "starting",
            "instance=%s prefix=%s replicate=%s%s%s", srl_log_q(c.instance_id), srl_log_q(prefix),
            (mask & SRL_REPLICATE_ASSESSMENTS) ? "assessments" : "",
            (mask & SRL_REPLICATE_ASSESSMENTS) && (mask & SRL_REPLICATE_POLICIES) ? "," : "",
            (mask & SRL_REPLICATE_POLICIES) ? "policies" : "");
    status = run(&c);
    /* A last flush of the queued lines into replication_log. */
    if (c.st && logq_pending()) {
        srl_buf_t sql = {0};
        if (logq_take_sql(srl_store_conn(c.st), &sql) && srl_buf_add(&sql, "", 1)) {
            PGresult *res = PQexec(srl_store_conn(c.st), sql.data);
            PQclear(res);
        }
        srl_buf_free(&sql);
    }
    srl_log(SRL_LOG_INFO, "consumer", "stopped", "status=%d", status);
cleanup:
    srl_log_set_sink(NULL, NULL);
    if (c.src)
        c.src->ops->release(c.src, &c.batch);
    srl_source_batch_free(&c.batch);
    srl_schemas_loader_free(c.loader);
    if (c.src)
        c.src->ops->close(c.src);
    srl_apply_free(c.apply);
    srl_deadletter_free(&c.dl);
    srl_buf_free(&c.extra);
    free(c.pos);
    free(c.pos_last_ts);
    srl_store_close(c.st);
    srl_registry_free(c.reg);
    srl_config_free(cfg);
    return status;
}
