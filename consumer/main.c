/*
 * main.c - sysrepl-consumer: a spoke's replication daemon. Reads the topics
 * of the replicated kinds and applies them to the spoke's store.
 *
 *   sysrepl-consumer [-c FILE] [-X key=value]... [--replay] [--until-caught-up]
 *
 * Start: connect to the store and find the topics' partitions (connect.c),
 * rebuild what needs it (sync.c). Then loop: fetch a batch from the
 * store's offsets; if it would move a topic whose last evidence of being
 * caught up is older than the topic's delete.retention.ms, rebuild that
 * topic instead (horizon.c); else apply it with its offsets, dead letters
 * and log lines in one transaction (batch.c), tell the source how far we
 * are (advisory), and probe the high watermarks when due (horizon.c).
 *
 * Signals: SIGTERM and SIGINT set a flag; the loop finishes the batch in
 * hand, and exits 0 (a rebuild in progress is rolled back). SIGHUP reloads
 * the config (srl_config_reload: reloadable keys applied, others logged
 * as needing a restart). kill -9 anywhere is safe: offsets are committed with the rows
 * they produced, and applying is version-guarded.
 *
 * Failures: the broker or bridge away -> the loop waits, says so (warning,
 * once a minute) and claims no progress; the store away -> reconnect with
 * backoff, re-read the offsets, re-check the horizon; a record that cannot
 * be decoded or stored -> dead_letters, go on; a bad config -> exit 1, a
 * store at the wrong schema version -> exit 3, other fatal errors -> exit
 * 4, each with the reason.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sysrepl/codec.h"
#include "sysrepl/cmdline.h"
#include "sysrepl/config.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"
#include "sysrepl/logq.h"
#include "sysrepl/store.h"

#include "consumer.h"
#include "source_http.h"

/* Exit codes, as sysrepl-producer's: */
#define EXIT_OK 0    /* stopped cleanly (SIGTERM/SIGINT, --until-caught-up) */
#define EXIT_USAGE 1 /* bad arguments or config (the message names the key) */
#define EXIT_STORE 3 /* store unusable: bad DSN, authentication, schema version */
#define EXIT_FAIL 4  /* fatal: the topics cannot be read, a rebuild failed, ... */

#define HEARTBEAT_MS 5000 /* an idle spoke commits its offsets and lag this often */

/* After the store failed: reconnect, re-read the offsets (the store is the
 * authority), re-check the horizon. False on fatal or stop. */
static bool recover_store(consumer_t *c)
{
    for (;;) {
        if (!srl__consumer_store_connect(c))
            return false;
        int r = srl__consumer_sync(c, 0);
        if (r == 0)
            return true;
        if (r < 0)
            return false;
        srl__consumer_nap(SRL_CONSUMER_BACKOFF_MAX_MS);
    }
}

/* The loop's answer to a failed store call: wait, reconnect, go on (true),
 * or stop (false: fatal or a stop signal). */
static bool store_failed(consumer_t *c, srl_store_rc_t rc, const char *err, int64_t *backoff)
{
    if (rc != SRL_STORE_UNREACHABLE && rc != SRL_STORE_RETRY) {
        srl_log(SRL_LOG_ERROR, "consumer", "store refused the batch", "reason=%s", srl_log_q(err));
        return false;
    }
    srl_log(SRL_LOG_WARN, "consumer", "store failed, batch not applied", "reason=%s",
            srl_log_q(err));
    srl__consumer_nap(*backoff);
    *backoff = *backoff * 2 > SRL_CONSUMER_BACKOFF_MAX_MS ? SRL_CONSUMER_BACKOFF_MAX_MS
                                                          : *backoff * 2;
    return recover_store(c);
}

static bool all_caught_up(const consumer_t *c)
{
    for (size_t i = 0; i < c->npos; i++)
        if (!srl__horizon_caught_up(c, i))
            return false;
    return true;
}

/* The batch in hand would move topics past the tombstone horizon: rebuild
 * them instead. 0: rebuilt (positions re-read), 1: not now, -1: stop. */
static int rebuild_crossed(consumer_t *c, unsigned crossed)
{
    c->src->ops->release(c->src, &c->batch);
    int r = srl__consumer_sync(c, crossed);
    if (r > 0) {
        srl__consumer_nap(SRL_CONSUMER_BACKOFF_MAX_MS);
        if (PQstatus(srl_store_conn(c->st)) != CONNECTION_OK && !recover_store(c))
            return -1;
    }
    return r;
}

/* Connect, find the partitions, rebuild what needs it. -1 when ready to
 * replicate, else the exit status. */
static int start(consumer_t *c)
{
    if (!srl__consumer_store_connect(c))
        return srl__consumer_stop ? EXIT_OK : EXIT_STORE;
    if (!srl__consumer_find_partitions(c))
        return srl__consumer_stop ? EXIT_OK : EXIT_FAIL;
    for (;;) {
        int r = srl__consumer_sync(c, 0);
        if (r == 0)
            return -1;
        if (r < 0 || srl__consumer_stop)
            return srl__consumer_stop ? EXIT_OK : EXIT_FAIL;
        srl__consumer_nap(SRL_CONSUMER_BACKOFF_MAX_MS);
        if (!srl__consumer_store_connect(c))
            return srl__consumer_stop ? EXIT_OK : EXIT_STORE;
    }
}

/* What the main loop carries from one turn to the next. */
typedef struct loop {
    srl_offset_update_t *offs; /* one per position */
    srl_source_pos_t *work;    /* positions while a batch is applied */
    size_t batch_size;
    int poll_ms;
    int64_t last_commit, backoff;
    char err[1024];
} loop_t;

enum { TURN_AGAIN, TURN_DONE, TURN_FAIL };

static void reload_if_asked(consumer_t *c, loop_t *l)
{
    if (!srl__consumer_reload)
        return;
    srl__consumer_reload = 0;
    if (srl_config_reload(c->cfg, "consumer", NULL, l->err, sizeof(l->err))) {
        l->batch_size = (size_t)srl_config_int(c->cfg, SRL_KEY_CONSUMER_BATCH_SIZE);
        l->poll_ms = (int)srl_config_int(c->cfg, SRL_KEY_CONSUMER_POLL_TIMEOUT_MS);
    }
}

/* Apply the batch in hand (or, with nothing new, write the evidence, the
 * log lines and a heartbeat of offsets when due). *cached_caught_up: the
 * source's cached view says every position is at its end. */
static int apply_batch(consumer_t *c, loop_t *l, bool moves, bool fetched, bool *cached_caught_up)
{
    memcpy(l->work, c->pos, c->npos * sizeof(*l->work));
    bool commit = moves || srl__horizon_unwritten(c) || srl_logq_pending(c->logq) ||
                  (fetched && srl_clock_mono_ms() - l->last_commit >= HEARTBEAT_MS);
    if (!commit) {
        srl__batch_offsets(c, l->work, &c->batch, l->offs, cached_caught_up);
        c->src->ops->release(c->src, &c->batch);
        return TURN_AGAIN;
    }
    srl_store_rc_t rc = srl__batch_apply(c, &c->batch, 0, c->batch.count, l->work, l->offs,
                                         cached_caught_up, l->err, sizeof(l->err));
    c->src->ops->release(c->src, &c->batch);
    if (rc != SRL_STORE_OK)
        return store_failed(c, rc, l->err, &l->backoff) ? TURN_AGAIN : TURN_FAIL;
    l->backoff = SRL_CONSUMER_BACKOFF_MIN_MS;
    memcpy(c->pos, l->work, c->npos * sizeof(*l->work));
    c->src->ops->committed(c->src, c->pos, c->npos);
    l->last_commit = srl_clock_mono_ms();
    return TURN_AGAIN;
}

/* One turn of the main loop: fetch, check the horizon, apply, report,
 * probe. */
static int turn(consumer_t *c, loop_t *l)
{
    reload_if_asked(c, l);
    int64_t t0 = srl_clock_mono_ms();
    srl_source_rc_t frc = c->src->ops->fetch(c->src, c->pos, c->npos, l->batch_size, l->poll_ms,
                                             &c->batch, l->err, sizeof(l->err));
    c->fetch_ms += srl_clock_mono_ms() - t0;
    if (frc == SRL_SOURCE_FATAL) {
        srl_log(SRL_LOG_ERROR, "consumer", "cannot read the topics", "reason=%s",
                srl_log_q(l->err));
        return TURN_FAIL;
    }
    if (frc == SRL_SOURCE_RETRY) {
        srl__horizon_source_failed(c, l->err);
        c->batch.count = 0; /* nothing came: only the log lines to write */
    }
    bool moves = frc == SRL_SOURCE_OK && srl__batch_moves(c, &c->batch);
    if (moves) {
        srl__horizon_source_back(c);
        unsigned crossed = srl__horizon_crossed(c, srl__batch_topics(c, &c->batch));
        int r = crossed ? rebuild_crossed(c, crossed) : 1;
        if (r <= 0)
            return r < 0 ? TURN_DONE : TURN_AGAIN; /* rebuilt: positions re-read */
    }
    bool cached_caught_up = false;
    int r = apply_batch(c, l, moves, frc == SRL_SOURCE_OK, &cached_caught_up);
    if (r != TURN_AGAIN)
        return r;
    srl__consumer_stats(c, false);
    srl__consumer_purge_log(c);
    if (c->until_caught_up && all_caught_up(c)) {
        srl_log(SRL_LOG_INFO, "consumer", "caught up, exiting (--until-caught-up)", NULL);
        return TURN_DONE;
    }
    if (frc == SRL_SOURCE_RETRY)
        srl__consumer_nap(l->poll_ms);
    else
        srl__horizon_probe_if_due(c, cached_caught_up);
    return TURN_AGAIN;
}

static int run(consumer_t *c)
{
    int status = start(c);
    if (status >= 0)
        return status;
    loop_t l = {
        .offs = calloc(c->npos, sizeof(*l.offs)),
        .work = calloc(c->npos, sizeof(*l.work)),
        .batch_size = (size_t)srl_config_int(c->cfg, SRL_KEY_CONSUMER_BATCH_SIZE),
        .poll_ms = (int)srl_config_int(c->cfg, SRL_KEY_CONSUMER_POLL_TIMEOUT_MS),
        .last_commit = srl_clock_mono_ms(),
        .backoff = SRL_CONSUMER_BACKOFF_MIN_MS,
    };
    status = EXIT_FAIL;
    if (l.offs && l.work) {
        c->window_start_ms = c->last_stats_ms = l.last_commit;
        srl_log(SRL_LOG_INFO, "consumer", "replicating", "topics=%zu partitions=%zu instance=%s",
                c->ntopics, c->npos, srl_log_q(c->instance_id));
        int r = TURN_AGAIN;
        while (!srl__consumer_stop && r == TURN_AGAIN)
            r = turn(c, &l);
        if (r != TURN_FAIL) {
            srl__consumer_stats(c, true);
            status = EXIT_OK;
        }
    }
    free(l.offs);
    free(l.work);
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
    const srl_cmdline_t cmdline = {
        .program = "sysrepl-consumer",
        .prog_mask = SRL_PROG_CONSUMER,
        .synopsis = "[-c FILE] [-X key=value]... [--replay] [--until-caught-up]",
        .about = "Reads the replicated kinds' topics and applies them to this spoke's store.",
        .opts = opts,
        .epilog = "Exit codes: 0 stopped cleanly (or caught up with --until-caught-up), 1 config "
                  "or usage error,\n3 store unusable (DSN, authentication, schema version), 4 "
                  "other fatal errors.",
    };
    const char *opt[2];
    int rc = srl_cmdline_parse(&cmdline, cfg, &argc, argv, opt);
    if (rc != SRL_CMDLINE_RUN) {
        srl_config_free(cfg);
        return rc == 0 ? EXIT_OK : EXIT_USAGE;
    }
    c.replay = opt[0] != NULL;
    c.until_caught_up = opt[1] != NULL;
    if (!srl_config_require(cfg, SRL_KEY_INSTANCE_ID, err, sizeof(err)) ||
        !srl_config_require(cfg, SRL_KEY_STORE_DSN, err, sizeof(err))) {
        fprintf(stderr, "sysrepl-consumer: %s\n", err);
        srl_config_free(cfg);
        return EXIT_USAGE;
    }
    srl_config_apply_log(cfg);

    srl__consumer_signals_install();

    c.cfg = cfg;
    srl_store_set_application_name("sysrepl-consumer", srl_config_str(cfg, SRL_KEY_INSTANCE_ID));
    c.dsn = srl_config_str(cfg, SRL_KEY_STORE_DSN);
    snprintf(c.instance_id, sizeof(c.instance_id), "%s", srl_config_str(cfg, SRL_KEY_INSTANCE_ID));
    const char *prefix = srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX);
    unsigned mask = srl_config_mask(cfg, SRL_KEY_REPLICATE);
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
        c.topics[c.ntopics].retention_ms = -1;
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
    if (srl_config_enum(cfg, SRL_KEY_TRANSPORT) == SRL_TRANSPORT_HTTP) {
        c.src = srl_source_http_new(cfg, err, sizeof(err));
        c.source_name = "the bridge";
    } else {
        c.src = srl_source_kafka_new(cfg, c.instance_id, err, sizeof(err));
        c.source_name = "the broker";
    }
    if (!c.src) {
        fprintf(stderr, "sysrepl-consumer: %s\n", err);
        if (srl_config_enum(cfg, SRL_KEY_TRANSPORT) == SRL_TRANSPORT_HTTP) {
            status = EXIT_USAGE;
        }
        goto cleanup;
    }
    c.loader = srl_schemas_loader_new(c.src, schemas_topic);
    if (c.loader && !srl_schemas_loader_use_registry(c.loader, cfg, err, sizeof(err))) {
        fprintf(stderr, "sysrepl-consumer: %s\n", err);
        status = EXIT_USAGE;
        goto cleanup;
    }
    c.apply = srl_apply_new(c.instance_id);
    if (!c.loader || !c.apply ||
        !srl_apply_set_sessions(c.apply, c.dsn,
                                (size_t)srl_config_int(cfg, SRL_KEY_CONSUMER_APPLY_SESSIONS),
                                (size_t)srl_config_int(cfg, SRL_KEY_CONSUMER_APPLY_SPLIT_MIN))) {
        fprintf(stderr, "sysrepl-consumer: out of memory\n");
        goto cleanup;
    }
    srl_apply_set_synchronous_commit(c.apply,
                                     srl_config_bool(cfg, SRL_KEY_CONSUMER_SYNCHRONOUS_COMMIT));
    c.logq = srl_logq_new("consumer", SRL_LOG_DEBUG);
    if (!c.logq) {
        fprintf(stderr, "sysrepl-consumer: out of memory\n");
        goto cleanup;
    }
    srl_log_set_sink(srl_logq_sink, c.logq);
    srl_log(SRL_LOG_INFO, "consumer", "starting", "instance=%s prefix=%s replicate=%s%s%s",
            srl_log_q(c.instance_id), srl_log_q(prefix),
            (mask & SRL_REPLICATE_ASSESSMENTS) ? "assessments" : "",
            (mask & SRL_REPLICATE_ASSESSMENTS) && (mask & SRL_REPLICATE_POLICIES) ? "," : "",
            (mask & SRL_REPLICATE_POLICIES) ? "policies" : "");
    status = run(&c);
    /* A last flush of the queued lines into replication_log. */
    if (c.st && srl_logq_pending(c.logq))
        srl_logq_flush(c.logq, srl_store_conn(c.st), err, sizeof(err));
    srl_log(SRL_LOG_INFO, "consumer", "stopped", "status=%d", status);
cleanup:
    srl_log_set_sink(NULL, NULL);
    srl_logq_free(c.logq);
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
    free(c.pos_topic);
    free(c.pos_last_ts);
    free(c.ev);
    srl_store_close(c.st);
    srl_registry_free(c.reg);
    srl_config_free(cfg);
    return status;
}
