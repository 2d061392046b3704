/*
 * main.c - sysrepl-bridge: the Replication API over HTTP(S), next to the
 * broker, for spokes and push instances that cannot reach Kafka.
 *
 * Start-up refuses, with a message naming the key, a config that cannot
 * work: no TLS and no explicit bridge.plain_http, an unreadable keys file,
 * a bad kafka.* property. A broker that is not reachable yet is waited for
 * (logged), because the broker may start after the bridge.
 *
 * Signals: SIGINT/SIGTERM stop (waiting requests get their answer first),
 * SIGHUP reloads the config (srl_config_reload) and bridge.keys_file,
 * SIGPIPE is ignored. Exit codes: 0 stopped, 1 a config or usage error or
 * a start-up failure (the units do not restart it), 4 a fatal error while
 * running (restarted). The main thread serves the producer's delivery
 * reports (rd_kafka_poll) and writes the periodic stats line.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "readers.h"
#include "routes.h"
#include "tail.h"
#include "sysrepl/cmdline.h"
#include "sysrepl/clock.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

static srl_bridge_t *the_bridge;

static void on_signal(int sig)
{
    if (!the_bridge)
        return;
    if (sig == SIGHUP)
        the_bridge->reload = 1;
    else
        the_bridge->stop = 1;
}

/* SIGHUP: read bridge.keys_file again. A file with an error changes
 * nothing (the reason is logged); requests already checked keep their
 * key, so the replaced table is retired, not freed. */
static void reload_keys(srl_bridge_t *b)
{
    char err[512];
    const char *path = srl_config_str(b->cfg, SRL_KEY_BRIDGE_KEYS_FILE);
    srl_bridge_keys_t *keys = srl_bridge_keys_load(path, err, sizeof(err));
    if (!keys) {
        srl_log(SRL_LOG_ERROR, "bridge", "keys file not reloaded; the keys in use stay",
                "reason=%s", srl_log_q(err));
        return;
    }
    srl_bridge_keys_t *old = atomic_exchange(&b->keys, keys);
    srl_bridge_keys_retire(&b->retired_keys, old);
    srl_log(SRL_LOG_INFO, "bridge", "keys reloaded", "file=%s keys=%zu", srl_log_q(path),
            srl_bridge_keys_count(keys));
}

/* SIGHUP: the common policy (srl_config_reload), then the reloadable keys
 * the HTTP threads read (atomics in srl_bridge_t), then the keys file. */
static void reload_config(srl_bridge_t *b, int64_t *stats_every)
{
    char err[1024];
    if (srl_config_reload(b->cfg, "bridge", NULL, err, sizeof(err))) {
        atomic_store(&b->max_body_bytes,
                     (size_t)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_BODY_BYTES));
        atomic_store(&b->max_batch_records,
                     (size_t)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_BATCH_RECORDS));
        atomic_store(&b->request_timeout_ms,
                     srl_config_int(b->cfg, SRL_KEY_BRIDGE_REQUEST_TIMEOUT_MS));
        atomic_store(&b->long_poll_max_ms, srl_config_int(b->cfg, SRL_KEY_BRIDGE_LONG_POLL_MAX_MS));
        *stats_every = srl_config_int(b->cfg, SRL_KEY_STATS_INTERVAL_MS);
    }
    reload_keys(b); /* its own file: reloaded even when the config is broken */
}

/* The gauges /metrics and the stats line show (srl_metrics_set_gauges). */
static void read_gauges(void *arg, srl_metrics_gauges_t *g)
{
    srl_bridge_t *b = arg;
    g->connections = atomic_load(&b->connections);
    if (b->tail)
        srl_bridge_tail_stats(b->tail, &g->window_records, &g->window_bytes, &g->long_polls);
    g->reader_queue = b->readers ? srl_bridge_readers_queued(b->readers) : 0;
}

static const srl_cmdline_opt_t bridge_opts[] = {
    {"hash-key", 0, "KEY|-",
     "print a line for bridge.keys_file for KEY ('-': read it from stdin), and exit"},
    {"name", 0, "NAME", "--hash-key: the key's name in logs (default: client)"},
    {"perms", 0, "PERMS", "--hash-key: pull, push, metrics, comma-separated (default: pull)"},
    {"kinds", 0, "K1,K2", "--hash-key: the kinds the key may pull or push (default: all)"},
    {NULL, 0, NULL, NULL}};
enum { OPT_HASH_KEY, OPT_NAME, OPT_PERMS, OPT_KINDS, OPT_COUNT };

static const srl_cmdline_t bridge_cmdline = {
    .program = "sysrepl-bridge",
    .prog_mask = SRL_PROG_BRIDGE,
    .synopsis = "[-c FILE] [-X key=value]...\n"
                "       sysrepl-bridge --hash-key KEY|- [--name NAME] [--perms PERMS] "
                "[--kinds K1,K2]",
    .about = "Serves the Replication API (" SRL_BRIDGE_API_PREFIX ") over HTTP(S) next to "
             "Kafka.\n--hash-key prints a line for bridge.keys_file; the bridge reads the "
             "line back\nexactly as printed (perms: pull, push, metrics).",
    .opts = bridge_opts,
    .epilog =
        "Exit codes: 0 stopped cleanly, 1 config or usage error, 4 a fatal error while running.",
};

/* --hash-key: print "<name> <sha256> <perms> [kinds]" for the keys file,
 * after reading it back with the keys file's own parser, so a line the
 * bridge would refuse is never printed. */
static int hash_key_main(const char **opt)
{
    const char *key = opt[OPT_HASH_KEY];
    const char *name = opt[OPT_NAME] ? opt[OPT_NAME] : "client";
    const char *perms = opt[OPT_PERMS] ? opt[OPT_PERMS] : "pull";
    const char *kinds = opt[OPT_KINDS];
    char line[1024], out[1024], why[256];
    if (strcmp(key, "-") == 0) {
        if (!fgets(line, sizeof(line), stdin)) {
            fprintf(stderr, "sysrepl-bridge: no key on stdin\n");
            return 1;
        }
        line[strcspn(line, "\r\n")] = '\0';
        key = line;
    }
    if (!*key) {
        fprintf(stderr, "sysrepl-bridge: --hash-key needs a non-empty key\n");
        return 1;
    }
    /* Each is one field of the line: a blank or '#' would shift or cut
     * the fields and make a different line from what was asked. */
    for (int i = OPT_NAME; i < OPT_COUNT; i++) {
        const char *v = i == OPT_NAME ? name : i == OPT_PERMS ? perms : kinds;
        if (v && (!*v || v[strcspn(v, " \t\r\n#")] != '\0')) {
            fprintf(stderr, "sysrepl-bridge: --%s \"%s\" must be one word, without '#'\n",
                    bridge_opts[i].name, v);
            return 1;
        }
    }
    char hex[65];
    srl_bridge_sha256_hex(key, strlen(key), hex);
    int n = snprintf(out, sizeof(out), "%s %s %s%s%s", name, hex, perms, kinds ? " " : "",
                     kinds ? kinds : "");
    if (n < 0 || (size_t)n >= sizeof(out)) {
        fprintf(stderr, "sysrepl-bridge: --name, --perms or --kinds too long\n");
        return 1;
    }
    char check[1024];
    memcpy(check, out, (size_t)n + 1);
    srl_bridge_key_t k;
    if (srl_bridge_key_parse_line(check, &k, why, sizeof(why)) != 1) {
        fprintf(stderr, "sysrepl-bridge: --hash-key: %s\n", why);
        return 1;
    }
    printf("%s\n", out);
    return fflush(stdout) == 0 ? 0 : 1;
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* Connection trouble is reported once by the error callback or by
     * the record loops; librdkafka's own lines are detail. */
    srl_log(level <= 2 ? SRL_LOG_ERROR : SRL_LOG_DEBUG, "bridge", "librdkafka",
            "client=producer facility=%s detail=%s", srl_log_q(fac), srl_log_q(buf));
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    srl_bridge_t *b = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        srl_log(SRL_LOG_ERROR, "bridge", "fatal Kafka producer error", "reason=%s",
                srl_log_q(fatal));
        atomic_store(&b->fatal, true);
        return;
    }
    srl_metrics_kafka_error();
    srl_log(srl_kafka_err_is_retriable((rd_kafka_resp_err_t)err) ? SRL_LOG_WARN : SRL_LOG_ERROR,
            "bridge", "Kafka error", "error=%s reason=%s",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), srl_log_q(reason));
}

static rd_kafka_t *make_producer(srl_bridge_t *b, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char eb[512], timeout[32];
    /* A push answers within the request timeout: give librdkafka most of
     * it for its retries. */
    int64_t mt = b->request_timeout_ms - 1000;
    snprintf(timeout, sizeof(timeout), "%" PRId64, mt < 1000 ? 1000 : mt);
    const char *const defaults[][2] = {{"linger.ms", "5"},
                                       {"compression.type", "lz4"},
                                       {"queue.buffering.max.messages", "1000000"},
                                       {"client.id", "sysrepl-bridge"},
                                       {NULL, NULL}};
    const char *const forced[][2] = {{"enable.idempotence", "true"},
                                     {"acks", "all"},
                                     {"partitioner", "murmur2_random"},
                                     {"message.timeout.ms", timeout},
                                     {NULL, NULL}};
    if (!srl_kafka_conf_layer(conf, b->cfg, defaults, forced, errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, srl__push_delivery_report);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_opaque(conf, b);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    if (!rk) {
        snprintf(errstr, errstr_size, "creating the Kafka producer: %s", eb);
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* Wait for the broker, then create missing topics and check the others.
 * false: a fatal problem (errstr), or stopped. */
static bool prepare_topics(srl_bridge_t *b, char *errstr, size_t errstr_size)
{
    srl_topic_settings_t s = {
        .partitions = (int)srl_config_int(b->cfg, SRL_KEY_TOPIC_PARTITIONS),
        .replication_factor = (int)srl_config_int(b->cfg, SRL_KEY_TOPIC_REPLICATION_FACTOR),
        .min_insync_replicas = (int)srl_config_int(b->cfg, SRL_KEY_TOPIC_MIN_INSYNC_REPLICAS),
        .segment_ms = srl_config_int(b->cfg, SRL_KEY_TOPIC_SEGMENT_MS),
        .delete_retention_ms = srl_config_int(b->cfg, SRL_KEY_TOPIC_DELETE_RETENTION_MS),
    };
    const char *names[SRL_KIND_COUNT + 1];
    int parts[SRL_KIND_COUNT + 1] = {0};
    size_t n = 0;
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (b->kinds & (1u << k))
            names[n++] = b->topics[k];
    parts[n] = 1; /* the schema topic: one partition keeps it in order */
    names[n++] = b->schemas_topic;

    int backoff = 500;
    while (!b->stop) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(b->rk, 0, NULL, &md, 5000);
        if (md)
            rd_kafka_metadata_destroy(md);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (srl_kafka_ensure_topics(b->rk, &s, names, parts, n, 15000, errstr, errstr_size)) {
                /* the content topics: all but the schema topic, last */
                srl_kafka_warn_single_replica(b->rk, "bridge", names, n - 1, 15000);
                return true;
            }
            /* A topic with a wrong cleanup.policy or a refused ACL stays
             * wrong: stop. Anything else (a new topic not in metadata
             * yet, a timeout) passes with time. */
            if (strstr(errstr, "cleanup.policy") || strstr(errstr, SRL_KAFKA_DENIED_MARK) ||
                strstr(errstr, "uthoriz") || strstr(errstr, "topic.min_insync_replicas"))
                return false;
        } else {
            snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(e));
        }
        srl_log(SRL_LOG_WARN, "bridge", "broker not reachable yet; retrying",
                "retry_ms=%d reason=%s", backoff, srl_log_q(errstr));
        for (int waited = 0; waited < backoff && !b->stop; waited += 100)
            sleep_ms(100);
        if (backoff < 10000)
            backoff *= 2;
    }
    snprintf(errstr, errstr_size, "stopped before the broker was reachable");
    return false;
}

int main(int argc, char **argv)
{
    srl_bridge_t bridge;
    srl_bridge_t *b = &bridge;
    char err[1024];
    int rc = 1;
    const char *opt[OPT_COUNT];

    /* Few malloc arenas: the reader and HTTP threads free what other
     * threads allocated, and one arena per thread would keep the bridge's
     * RSS high after every rebuild. */
    mallopt(M_ARENA_MAX, 2);
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->reg_lock, NULL);
    b->cfg = srl_config_new(SRL_PROG_BRIDGE);
    if (!b->cfg) {
        fprintf(stderr, "sysrepl-bridge: out of memory\n");
        return 1;
    }
    int parsed = srl_cmdline_parse(&bridge_cmdline, b->cfg, &argc, argv, opt);
    if (parsed != SRL_CMDLINE_RUN) {
        rc = parsed;
        goto cleanup;
    }
    if (opt[OPT_HASH_KEY]) {
        rc = hash_key_main(opt);
        goto cleanup;
    }
    for (int i = OPT_NAME; i < OPT_COUNT; i++) {
        if (opt[i]) {
            fprintf(stderr, "sysrepl-bridge: --%s goes with --hash-key (see --help)\n",
                    bridge_opts[i].name);
            goto cleanup;
        }
    }
    srl_config_apply_log(b->cfg);
    if (!srl_config_require(b->cfg, SRL_KEY_INSTANCE_ID, err, sizeof(err)) ||
        !srl_config_require(b->cfg, SRL_KEY_BRIDGE_KEYS_FILE, err, sizeof(err))) {
        srl_log(SRL_LOG_ERROR, "bridge", "bad configuration", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    b->prefix = srl_config_str(b->cfg, SRL_KEY_TOPIC_PREFIX);
    unsigned rep = srl_config_mask(b->cfg, SRL_KEY_REPLICATE);
    if (rep & SRL_REPLICATE_ASSESSMENTS)
        b->kinds |= 1u << SRL_KIND_ASSESSMENT_TYPE | 1u << SRL_KIND_ASSESSMENT;
    if (rep & SRL_REPLICATE_POLICIES)
        b->kinds |= 1u << SRL_KIND_POLICY;
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (!srl_topic_name(b->prefix, (srl_kind_t)k, b->topics[k], sizeof(b->topics[k]))) {
            srl_log(SRL_LOG_ERROR, "bridge", "bad configuration",
                    "reason=\"topic.prefix is too long\"");
            goto cleanup;
        }
    srl_topic_name_schemas(b->prefix, b->schemas_topic, sizeof(b->schemas_topic));
    memcpy(b->topics[SRL_BRIDGE_SCHEMAS], b->schemas_topic, sizeof(b->schemas_topic));
    b->max_body_bytes = (size_t)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_BODY_BYTES);
    b->max_batch_records = (size_t)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_BATCH_RECORDS);
    b->max_connections = (unsigned)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_CONNECTIONS);
    b->confluent = srl_config_enum(b->cfg, SRL_KEY_VALUE_FORMAT) == SRL_VALUE_FORMAT_CONFLUENT;
    b->request_timeout_ms = srl_config_int(b->cfg, SRL_KEY_BRIDGE_REQUEST_TIMEOUT_MS);
    b->long_poll_max_ms = srl_config_int(b->cfg, SRL_KEY_BRIDGE_LONG_POLL_MAX_MS);

    if (!srl_bridge_http_check(b, err, sizeof(err))) {
        srl_log(SRL_LOG_ERROR, "bridge", "bad configuration", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    atomic_store(&b->keys, srl_bridge_keys_load(srl_config_str(b->cfg, SRL_KEY_BRIDGE_KEYS_FILE),
                                                err, sizeof(err)));
    if (!atomic_load(&b->keys)) {
        srl_log(SRL_LOG_ERROR, "bridge", "bad configuration", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    b->reg = srl_registry_new(err, sizeof(err));
    if (!b->reg) {
        srl_log(SRL_LOG_ERROR, "bridge", "cannot load the compiled-in schemas", "reason=%s",
                srl_log_q(err));
        goto cleanup;
    }
    /* A broker that refuses us (password, certificate, host name) stops
     * the bridge here, with one line naming the cause; one that is away
     * is waited for below (prepare_topics). */
    if (srl_kafka_check_access(b->cfg, 10000, err, sizeof(err)) == SRL_KAFKA_ACCESS_DENIED) {
        srl_log(SRL_LOG_ERROR, "bridge", "Kafka refused the bridge", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    b->rk = make_producer(b, err, sizeof(err));
    if (!b->rk) {
        srl_log(SRL_LOG_ERROR, "bridge", "bad configuration", "reason=%s", srl_log_q(err));
        goto cleanup;
    }

    the_bridge = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The server starts before the broker is known to be there: TLS and
     * listen problems are config errors and stop us at once, and /health
     * answers (degraded) while the broker is away. */
    b->tail = srl_bridge_tail_start(b, (size_t)srl_config_int(b->cfg, SRL_KEY_BRIDGE_WINDOW_BYTES),
                                    err, sizeof(err));
    if (!b->tail) {
        srl_log(SRL_LOG_ERROR, "bridge", "cannot start tailing", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    b->readers = srl_bridge_readers_start(b, (int)srl_config_int(b->cfg, SRL_KEY_BRIDGE_READERS),
                                          err, sizeof(err));
    if (!b->readers) {
        srl_log(SRL_LOG_ERROR, "bridge", "cannot start the readers", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    srl_metrics_set_gauges(read_gauges, b);
    if (!srl_bridge_http_start(b, srl_routes_on_headers, err, sizeof(err))) {
        srl_log(SRL_LOG_ERROR, "bridge", "cannot serve HTTP", "reason=%s", srl_log_q(err));
        goto cleanup;
    }
    if (!prepare_topics(b, err, sizeof(err))) {
        if (b->stop)
            rc = 0; /* stopped while waiting for the broker */
        else
            srl_log(SRL_LOG_ERROR, "bridge", "cannot prepare the topics", "reason=%s",
                    srl_log_q(err));
        goto cleanup;
    }
    srl_log(SRL_LOG_INFO, "bridge", "started",
            "instance=%s prefix=%s keys=%zu max_connections=%u long_poll_max_ms=%" PRId64,
            srl_log_q(srl_config_str(b->cfg, SRL_KEY_INSTANCE_ID)), srl_log_q(b->prefix),
            srl_bridge_keys_count(atomic_load(&b->keys)), b->max_connections, b->long_poll_max_ms);

    int64_t stats_every = srl_config_int(b->cfg, SRL_KEY_STATS_INTERVAL_MS);
    int64_t next_stats = srl_clock_mono_ms() + stats_every;
    int64_t next_publish = 0;
    while (!b->stop && !atomic_load(&b->fatal)) {
        rd_kafka_poll(b->rk, 100);
        if (b->reload) {
            b->reload = 0;
            int64_t was = stats_every;
            reload_config(b, &stats_every);
            if (stats_every != was)
                next_stats = srl_clock_mono_ms() + stats_every;
        }
        /* Pushes wait for our writer schemas to be on <prefix>.schemas. */
        if (!b->schemas_published && srl_clock_mono_ms() >= next_publish) {
            if (srl__bridge_publish_schemas(b, err, sizeof(err)))
                srl_log(SRL_LOG_INFO, "bridge", "writer schemas published", "topic=%s",
                        srl_log_q(b->schemas_topic));
            else
                srl_log(SRL_LOG_WARN, "bridge", "writer schemas not published yet; retrying",
                        "reason=%s", srl_log_q(err));
            next_publish = srl_clock_mono_ms() + 5000;
        }
        if (stats_every > 0 && srl_clock_mono_ms() >= next_stats) {
            srl_metrics_log_stats();
            next_stats = srl_clock_mono_ms() + stats_every;
        }
    }
    rc = atomic_load(&b->fatal) ? 4 : 0; /* 4: restarted by the unit; 1 is for config */
    srl_log(SRL_LOG_INFO, "bridge", "stopping", "reason=%s", rc ? "fatal-error" : "signal");

cleanup:
    /* Answer every waiting request before the server stops: new requests
     * (503), long polls (empty answer), queued reads (503), pushes (their
     * acks, or 503 after message.timeout.ms). */
    atomic_store(&b->stopping, true);
    if (b->tail)
        srl_bridge_tail_wake_all(b->tail);
    srl_bridge_readers_stop(b->readers);
    if (b->rk)
        rd_kafka_flush(b->rk, (int)b->request_timeout_ms);
    if (b->daemon) {
        if (b->rk)
            rd_kafka_poll(b->rk, 0);
        sleep_ms(200); /* let resumed requests send their answers */
    }
    srl_bridge_http_stop(b);
    srl_bridge_readers_free(b->readers);
    srl_bridge_tail_stop(b->tail);
    if (b->rk)
        rd_kafka_destroy(b->rk);
    srl_registry_free(b->reg);
    srl_bridge_keys_free(atomic_load(&b->keys));
    srl_bridge_keys_free_list(b->retired_keys);
    srl_config_free(b->cfg);
    pthread_mutex_destroy(&b->reg_lock);
    return rc;
}
