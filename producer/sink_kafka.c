/*
 * sink_kafka.c - the Kafka sink (transport = kafka; see sink.h).
 *
 * Delivery: an idempotent producer (enable.idempotence, acks=all), the
 * Java-compatible murmur2_random partitioner (same key, same partition as
 * any Java client), so records of one key stay in one partition in the
 * order they were published, across librdkafka's retries. message.timeout.ms
 * defaults to 0 (never give up): a broker away for minutes only delays
 * delivery; the drain loop publishes nothing new while its batches are in
 * flight, so the queue stays bounded. These settings are applied after the
 * kafka.* passthrough, so a config cannot weaken them; everything else
 * (linger, compression, batch sizes) is a default the passthrough may
 * change.
 *
 * Delivery reports are served on the caller's thread by poll(); the main
 * queue's wake-up descriptor (wait_fd) lets the loop sleep on Kafka and the
 * store at once.
 *
 * Reads (the start checks and the snapshot) use a second, consumer handle
 * with manual assignment; it commits nothing.
 *
 * value.format = confluent: the drain hands us single-object values; each
 * is re-framed here, as it is produced (00 + schema id + the same body).
 * The id of each writer schema is fixed by publish_schema before the
 * first record: registered under <topic>-value with schema.registry.url,
 * else derived from the fingerprint (srl_schema_id_derive), which every
 * consumer and bridge derives alike from <prefix>.schemas.
 */
#include "sink.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysrepl/codec.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"
#include "sysrepl/schema_registry.h"

#define MAX_SCHEMA_IDS 16

/* The reader's group: it commits nothing, but librdkafka looks up the
 * group's coordinator, so the hub's principal needs Read on it. */
#define READER_GROUP "sysrepl-producer-reader"

typedef struct kafka_sink {
    srl_sink_t base;
    const srl_config_t *cfg;
    rd_kafka_t *rk;     /* producer */
    rd_kafka_t *reader; /* consumer for reads; made on first use */
    rd_kafka_topic_t *rkt[SRL_KIND_COUNT];
    rd_kafka_topic_t *schemas_rkt;
    char topics[SRL_KIND_COUNT][256];
    char schemas_topic[256];
    rd_kafka_queue_t *mainq;
    int wake_fd[2];
    size_t in_flight;

    /* value.format = confluent */
    bool confluent;
    srl_registry_t *reg; /* tells a writer schema's kind */
    srl_sr_client_t *sr; /* schema.registry.url; NULL: derived ids */
    struct {
        uint64_t fingerprint;
        int32_t id;
    } ids[MAX_SCHEMA_IDS]; /* the id of each published writer schema */
    size_t nids;
    uint8_t *scratch; /* a re-framed value (librdkafka copies it) */
    size_t scratch_cap;
} kafka_sink_t;

/* The value to produce: r's own bytes, or re-framed into ks->scratch. NULL
 * with errstr when a record cannot be framed (no id for its schema). */
static const void *framed_value(kafka_sink_t *ks, const srl_record_t *r, size_t *len, char *errstr,
                                size_t errstr_size)
{
    *len = r->value_len;
    if (!ks->confluent || !r->value)
        return r->value;
    srl_value_ref_t ref;
    if (!srl_codec_peek(r->value, r->value_len, &ref, errstr, errstr_size))
        return NULL;
    int32_t id = ref.id;
    if (ref.format == SRL_VALUE_FORMAT_SINGLE_OBJECT) {
        id = 0;
        for (size_t i = 0; i < ks->nids; i++)
            if (ks->ids[i].fingerprint == ref.fingerprint)
                id = ks->ids[i].id;
        if (!id) {
            snprintf(errstr, errstr_size,
                     "no schema id for writer schema %016" PRIx64 " (not published at start)",
                     ref.fingerprint);
            return NULL;
        }
    }
    if (r->value_len > ks->scratch_cap) {
        size_t cap = r->value_len < 4096 ? 4096 : r->value_len * 2;
        uint8_t *p = realloc(ks->scratch, cap);
        if (!p) {
            snprintf(errstr, errstr_size, "out of memory");
            return NULL;
        }
        ks->scratch = p;
        ks->scratch_cap = cap;
    }
    if (!srl_codec_to_confluent(r->value, r->value_len, id, ks->scratch, len, errstr, errstr_size))
        return NULL;
    return ks->scratch;
}

/* Delivery report: the message's opaque is its batch. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink_t *ks = opaque;
    srl_sink_batch_t *b = m->_private;
    (void)rk;
    ks->in_flight--;
    if (!b)
        return;
    b->pending--;
    if (m->err) {
        if (b->failed++ == 0)
            snprintf(b->error, sizeof(b->error), "topic %s partition %" PRId32 ": %s",
                     rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
        if (!srl_kafka_err_is_retriable(m->err))
            b->failed_fatal = true;
    }
}

/* librdkafka's own log lines. Connection failures ("FAIL") are also
 * reported through on_error, once per state change: logged there only. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (strcmp(fac, "FAIL") == 0)
        return;
    srl_log(level <= 4 ? SRL_LOG_WARN : SRL_LOG_DEBUG, "kafka", fac, "detail=%s", srl_log_q(buf));
}

/* The reader is only needed at start (checks, snapshot): drop it after
 * each use so it does not keep connections to the group coordinator. */
static void close_reader(kafka_sink_t *ks)
{
    if (!ks->reader)
        return;
    rd_kafka_consumer_close(ks->reader);
    rd_kafka_destroy(ks->reader);
    ks->reader = NULL;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    char fatal[256];
    rd_kafka_resp_err_t fatal_err;
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        (fatal_err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal))) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* A refusal (no Write ACL: the idempotent producer's id is denied)
         * is reported by the caller that meets it, once: the start check
         * exits naming the ACL, a running producer logs and retries. */
        srl_log(srl_kafka_err_is_denied(fatal_err) ? SRL_LOG_WARN : SRL_LOG_ERROR, "producer",
                "fatal Kafka producer error", "reason=%s", srl_log_q(fatal));
        return;
    }
    srl_log(srl_kafka_err_is_retriable(err) ? SRL_LOG_WARN : SRL_LOG_ERROR, "producer",
            "Kafka error", "error=%s reason=%s", rd_kafka_err2name(err), srl_log_q(reason));
}

/* A conf with the kafka.* passthrough and our callbacks; NULL on error. */
static rd_kafka_conf_t *base_conf(kafka_sink_t *ks, const char *const defaults[][2],
                                  const char *const forced[][2], char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!srl_kafka_conf_layer(conf, ks->cfg, defaults, forced, errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, ks);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static bool kafka_publish(srl_sink_t *sink, srl_sink_batch_t *b, char *errstr, size_t errstr_size)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    char vbuf[24];
    b->pending = b->count;
    b->failed = 0;
    b->failed_fatal = false;
    b->error[0] = '\0';
    for (size_t i = 0; i < b->count; i++) {
        const srl_record_t *r = &b->records[i];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        int vlen = snprintf(vbuf, sizeof(vbuf), "%" PRId64, r->version);
        rd_kafka_header_add(hdrs, SRL_HDR_VERSION, -1, vbuf, vlen);
        if (r->origin)
            rd_kafka_header_add(hdrs, SRL_HDR_ORIGIN, -1, r->origin, -1);
        rd_kafka_resp_err_t err;
        char why[256];
        size_t value_len;
        const void *value = framed_value(ks, r, &value_len, why, sizeof(why));
        if (r->value && !value) {
            /* Cannot be framed: this and the rest of the batch fail, for
             * good (a restart publishes the schemas again). */
            rd_kafka_headers_destroy(hdrs);
            size_t rest = b->count - i;
            b->pending -= rest;
            b->failed += rest;
            b->failed_fatal = true;
            snprintf(b->error, sizeof(b->error), "producing to %.100s: %.140s", ks->topics[r->kind],
                     why);
            if (i == 0) {
                snprintf(errstr, errstr_size, "%s", b->error);
                return false;
            }
            return true;
        }
        for (;;) {
            err = rd_kafka_producev(ks->rk, RD_KAFKA_V_RKT(ks->rkt[r->kind]),
                                    RD_KAFKA_V_KEY(r->key, r->key_len),
                                    RD_KAFKA_V_VALUE((void *)value, value_len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(b), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(ks->rk, 10); /* make room: serve delivery reports */
        }
        if (err) {
            rd_kafka_headers_destroy(hdrs);
            /* The records before i are in flight and get their reports;
             * i and the rest failed here. */
            size_t rest = b->count - i;
            b->pending -= rest;
            b->failed += rest;
            if (!srl_kafka_err_is_retriable(err))
                b->failed_fatal = true;
            snprintf(b->error, sizeof(b->error), "producing to %s: %s", ks->topics[r->kind],
                     rd_kafka_err2str(err));
            if (i == 0) {
                snprintf(errstr, errstr_size, "%s", b->error);
                return false;
            }
            return true;
        }
        ks->in_flight++;
    }
    return true;
}

static void kafka_poll(srl_sink_t *sink, int timeout_ms)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    char drain[64];
    while (read(ks->wake_fd[0], drain, sizeof(drain)) > 0)
        ;
    rd_kafka_poll(ks->rk, timeout_ms);
}

static int kafka_wait_fd(srl_sink_t *sink)
{
    return ((kafka_sink_t *)sink)->wake_fd[0];
}

static size_t kafka_in_flight(srl_sink_t *sink)
{
    return ((kafka_sink_t *)sink)->in_flight;
}

static void kafka_close(srl_sink_t *sink)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    if (!ks)
        return;
    if (ks->rk) {
        /* Undelivered records stay in the outbox; drop them here so
         * destroy does not wait for a broker that may be away. */
        rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(ks->rk, 0);
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (ks->rkt[k])
            rd_kafka_topic_destroy(ks->rkt[k]);
    if (ks->schemas_rkt)
        rd_kafka_topic_destroy(ks->schemas_rkt);
    if (ks->mainq)
        rd_kafka_queue_destroy(ks->mainq);
    if (ks->rk)
        rd_kafka_destroy(ks->rk);
    close_reader(ks);
    if (ks->wake_fd[0] >= 0)
        close(ks->wake_fd[0]);
    if (ks->wake_fd[1] >= 0)
        close(ks->wake_fd[1]);
    srl_registry_free(ks->reg);
    srl_sr_client_free(ks->sr);
    free(ks->scratch);
    free(ks);
}

/* The schema id of a writer schema (value.format = confluent): registered
 * under <topic>-value, or derived. */
static bool schema_id(kafka_sink_t *ks, uint64_t fp, const char *json, bool *refused, char *errstr,
                      size_t errstr_size)
{
    srl_kind_t kind;
    int32_t id = srl_schema_id_derive(fp);
    char subject[300];
    for (size_t i = 0; i < ks->nids; i++)
        if (ks->ids[i].fingerprint == fp)
            return true;
    if (ks->nids == MAX_SCHEMA_IDS) {
        snprintf(errstr, errstr_size, "more than %d writer schemas", MAX_SCHEMA_IDS);
        return false;
    }
    if (!srl_registry_add(ks->reg, json, NULL, errstr, errstr_size) ||
        !srl_registry_kind(ks->reg, fp, &kind)) {
        *refused = true;
        return false;
    }
    if (ks->sr) {
        const char *prefix = srl_config_str(ks->cfg, SRL_KEY_TOPIC_PREFIX);
        if (!srl_sr_subject(prefix, kind, subject, sizeof(subject))) {
            snprintf(errstr, errstr_size, "topic.prefix \"%s\" is too long", prefix);
            *refused = true;
            return false;
        }
        srl_sr_rc_t rc = srl_sr_register(ks->sr, subject, json, &id, errstr, errstr_size);
        if (rc != SRL_SR_OK) {
            *refused = rc != SRL_SR_RETRY;
            return false;
        }
        srl_log(SRL_LOG_INFO, "producer", "writer schema registered",
                "registry=%s subject=%s fingerprint=%016" PRIx64 " id=%" PRId32,
                srl_log_q(srl_sr_client_url(ks->sr)), srl_log_q(subject), fp, id);
    }
    ks->ids[ks->nids].fingerprint = fp;
    ks->ids[ks->nids].id = id;
    ks->nids++;
    return true;
}

static bool kafka_publish_schema(srl_sink_t *sink, uint64_t fp, const char *json, int timeout_ms,
                                 bool *refused, char *errstr, size_t errstr_size)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    char key[17];
    srl_sink_batch_t b = {0};
    *refused = false;
    snprintf(key, sizeof(key), "%016" PRIx64, fp);
    b.pending = 1;
    rd_kafka_resp_err_t err = rd_kafka_producev(ks->rk, RD_KAFKA_V_RKT(ks->schemas_rkt),
                                                RD_KAFKA_V_KEY(key, 16),
                                                RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                RD_KAFKA_V_OPAQUE(&b), RD_KAFKA_V_END);
    if (err) {
        snprintf(errstr, errstr_size, "producing schema %s to %s: %s", key, ks->schemas_topic,
                 rd_kafka_err2str(err));
        return false;
    }
    ks->in_flight++;
    int64_t waited = 0;
    while (b.pending && waited < timeout_ms) {
        rd_kafka_poll(ks->rk, 100);
        waited += 100;
    }
    if (b.pending) {
        /* The report must not reach a dead stack frame: purge it. */
        rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (b.pending)
            rd_kafka_poll(ks->rk, 100);
        snprintf(errstr, errstr_size, "schema %s not delivered to %s within %d ms", key,
                 ks->schemas_topic, timeout_ms);
        return false;
    }
    if (b.failed) {
        snprintf(errstr, errstr_size, "schema %s: %s", key, b.error);
        return false;
    }
    /* The schema is on <prefix>.schemas before its id is used. */
    return !ks->confluent || schema_id(ks, fp, json, refused, errstr, errstr_size);
}

static bool ensure_reader(kafka_sink_t *ks, char *errstr, size_t errstr_size)
{
    static const char *const forced[][2] = {{"group.id", READER_GROUP},
                                            {"enable.auto.commit", "false"},
                                            {"enable.auto.offset.store", "false"},
                                            {"enable.partition.eof", "true"},
                                            {"auto.offset.reset", "earliest"},
                                            {NULL, NULL}};
    char eb[256];
    if (ks->reader)
        return true;
    rd_kafka_conf_t *conf = base_conf(ks, NULL, forced, errstr, errstr_size);
    if (!conf)
        return false;
    ks->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    if (!ks->reader) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "creating a Kafka consumer: %s", eb);
        return false;
    }
    rd_kafka_poll_set_consumer(ks->reader);
    return true;
}

/* Low and high watermarks of every partition of a topic. The arrays
 * (*lows, *highs) are malloc'd; the caller frees them. Returns the
 * partition count or -1. */
static int topic_watermarks(kafka_sink_t *ks, const char *topic, int64_t **lows, int64_t **highs,
                            char *errstr, size_t errstr_size)
{
    int n = srl_kafka_partition_count(ks->rk, topic, 10000, errstr, errstr_size);
    if (n < 0)
        return -1;
    *lows = calloc((size_t)n + 1, sizeof(int64_t));
    *highs = calloc((size_t)n + 1, sizeof(int64_t));
    if (!*lows || !*highs) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (int p = 0; p < n; p++) {
        rd_kafka_resp_err_t err;
        /* Just after creation a partition may have no leader yet: wait
         * for it (up to ~30 s), as for any transient broker error. */
        for (int attempt = 0;; attempt++) {
            err = rd_kafka_query_watermark_offsets(ks->rk, topic, p, &(*lows)[p], &(*highs)[p],
                                                   10000);
            if (!err || !srl_kafka_err_is_retriable(err) || attempt >= 100)
                break;
            rd_kafka_poll(ks->rk, 300);
        }
        if (err) {
            snprintf(errstr, errstr_size, "watermarks of topic %s partition %d: %s", topic, p,
                     rd_kafka_err2str(err));
            return -1;
        }
    }
    return n;
}

static bool kafka_topic_empty(srl_sink_t *sink, srl_kind_t kind, bool *empty, char *errstr,
                              size_t errstr_size)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    int64_t *lows = NULL, *highs = NULL;
    int n = topic_watermarks(ks, ks->topics[kind], &lows, &highs, errstr, errstr_size);
    *empty = true;
    for (int p = 0; p < n; p++)
        if (highs[p] > 0)
            *empty = false;
    free(lows);
    free(highs);
    return n >= 0;
}

/* Read partitions of a topic from start[p] to highs[p] (exclusive), calling
 * on_msg for each message. Skips partitions with start >= high. */
typedef void (*msg_fn)(void *arg, const rd_kafka_message_t *m);

static bool read_range(kafka_sink_t *ks, const char *topic, int n, const int64_t *start,
                       const int64_t *highs, msg_fn on_msg, void *arg, char *errstr,
                       size_t errstr_size)
{
    bool ok = false;
    int remaining = 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n ? n : 1);
    for (int p = 0; p < n; p++) {
        if (start[p] < highs[p]) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = start[p];
            remaining++;
        }
    }
    if (!remaining) {
        ok = true;
        goto cleanup;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(ks->reader, parts);
    if (err) {
        snprintf(errstr, errstr_size, "assigning %s: %s", topic, rd_kafka_err2str(err));
        goto cleanup;
    }
    bool *done = calloc((size_t)n, sizeof(bool));
    int idle_ms = 0;
    while (remaining > 0 && done) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->reader, 500);
        if (!m) {
            idle_ms += 500;
            if (idle_ms >= 60000) {
                snprintf(errstr, errstr_size, "reading topic %s: no progress for 60 s", topic);
                break;
            }
            continue;
        }
        idle_ms = 0;
        int p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p >= 0 && p < n && !done[p]) {
                done[p] = true;
                remaining--;
            }
        } else if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
                snprintf(errstr, errstr_size,
                         SRL_KAFKA_DENIED_MARK " to Read group " READER_GROUP " (%s) while "
                                               "reading topic %s: this principal needs the Read "
                                               "ACL on that group (docs/operations.md)",
                         rd_kafka_err2name(m->err), topic);
                rd_kafka_message_destroy(m);
                break;
            }
            if (srl_kafka_err_is_denied(m->err)) {
                snprintf(errstr, errstr_size,
                         SRL_KAFKA_DENIED_MARK " to Read topic %s (%s): this principal needs the "
                                               "Read ACL on it (docs/operations.md)",
                         topic, rd_kafka_err2name(m->err));
                rd_kafka_message_destroy(m);
                break;
            }
            if (!srl_kafka_err_is_retriable(m->err)) {
                snprintf(errstr, errstr_size, "reading topic %s partition %d: %s", topic, p,
                         rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                break;
            }
        } else if (p >= 0 && p < n && !done[p]) {
            if (m->offset < highs[p])
                on_msg(arg, m);
            if (m->offset >= highs[p] - 1) {
                done[p] = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    ok = remaining == 0;
    free(done);
    rd_kafka_assign(ks->reader, NULL);
cleanup:
    rd_kafka_topic_partition_list_destroy(parts);
    return ok;
}

typedef struct origin_check {
    const char *instance_id;
    char foreign[128];
} origin_check_t;

static void check_origin_msg(void *arg, const rd_kafka_message_t *m)
{
    origin_check_t *oc = arg;
    char origin[128];
    if (srl_kafka_header_str(m, SRL_HDR_ORIGIN, origin, sizeof(origin)) &&
        strcmp(origin, oc->instance_id) != 0 && !oc->foreign[0])
        snprintf(oc->foreign, sizeof(oc->foreign), "%s", origin);
}

static bool kafka_check_origin(srl_sink_t *sink, srl_kind_t kind, const char *instance_id,
                               bool *refused, char *errstr, size_t errstr_size)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    int64_t *lows = NULL, *highs = NULL, *start = NULL;
    origin_check_t oc = {instance_id, ""};
    bool ok = false;
    *refused = false;
    const char *topic = ks->topics[kind];
    int n = topic_watermarks(ks, topic, &lows, &highs, errstr, errstr_size);
    if (n < 0 || !ensure_reader(ks, errstr, errstr_size))
        goto cleanup;
    start = calloc((size_t)n + 1, sizeof(int64_t));
    if (!start)
        goto cleanup;
    for (int p = 0; p < n; p++)
        start[p] = highs[p] > lows[p] ? highs[p] - 1 : highs[p];
    if (!read_range(ks, topic, n, start, highs, check_origin_msg, &oc, errstr, errstr_size))
        goto cleanup;
    if (oc.foreign[0]) {
        *refused = true;
        snprintf(errstr, errstr_size,
                 "topic %s has records from origin \"%s\"; this hub is \"%s\": two hubs must not "
                 "write the same topics (use another topic.prefix)",
                 topic, oc.foreign, instance_id);
        goto cleanup;
    }
    ok = true;
cleanup:
    close_reader(ks);
    free(lows);
    free(highs);
    free(start);
    return ok;
}

typedef struct key_scan {
    srl_sink_key_fn fn;
    void *arg;
} key_scan_t;

static void scan_msg(void *arg, const rd_kafka_message_t *m)
{
    key_scan_t *sc = arg;
    if (m->key)
        sc->fn(sc->arg, m->key, m->key_len, m->payload == NULL);
}

static bool kafka_scan_keys(srl_sink_t *sink, srl_kind_t kind, srl_sink_key_fn fn, void *arg,
                            char *errstr, size_t errstr_size)
{
    kafka_sink_t *ks = (kafka_sink_t *)sink;
    int64_t *lows = NULL, *highs = NULL;
    key_scan_t sc = {fn, arg};
    bool ok = false;
    int n = topic_watermarks(ks, ks->topics[kind], &lows, &highs, errstr, errstr_size);
    if (n >= 0 && ensure_reader(ks, errstr, errstr_size))
        ok = read_range(ks, ks->topics[kind], n, lows, highs, scan_msg, &sc, errstr, errstr_size);
    close_reader(ks);
    free(lows);
    free(highs);
    return ok;
}

static const srl_sink_ops_t kafka_ops = {
    .name = "kafka",
    .publish = kafka_publish,
    .poll = kafka_poll,
    .wait_fd = kafka_wait_fd,
    .in_flight = kafka_in_flight,
    .close = kafka_close,
    .publish_schema = kafka_publish_schema,
    .topic_empty = kafka_topic_empty,
    .check_origin = kafka_check_origin,
    .scan_keys = kafka_scan_keys,
};

srl_sink_t *srl_sink_kafka_new(const srl_config_t *cfg, int timeout_ms, bool *retriable,
                               char *errstr, size_t errstr_size)
{
    char linger[32], eb[256];
    const char *prefix = srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX);
    kafka_sink_t *ks = calloc(1, sizeof(*ks));
    *retriable = false;
    if (!ks) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ks->base.ops = &kafka_ops;
    ks->cfg = cfg;
    ks->wake_fd[0] = ks->wake_fd[1] = -1;
    ks->confluent = srl_config_enum(cfg, SRL_KEY_VALUE_FORMAT) == SRL_VALUE_FORMAT_CONFLUENT;
    if (ks->confluent && (!(ks->reg = srl_registry_new(errstr, errstr_size)) ||
                          !srl_sr_client_new(cfg, &ks->sr, errstr, errstr_size)))
        goto fail;
    snprintf(linger, sizeof(linger), "%lld", srl_config_int(cfg, SRL_KEY_PRODUCER_LINGER_MS));
    const char *const defaults[][2] = {{"linger.ms", linger},
                                       {"batch.num.messages", "10000"},
                                       {"batch.size", "4000000"},
                                       {"compression.type", "lz4"},
                                       {"message.timeout.ms", "0"},
                                       {"queue.buffering.max.messages", "1000000"},
                                       {NULL, NULL}};
    static const char *const forced[][2] = {{"enable.idempotence", "true"},
                                            {"acks", "all"},
                                            {"partitioner", "murmur2_random"},
                                            {NULL, NULL}};
    rd_kafka_conf_t *conf = base_conf(ks, defaults, forced, errstr, errstr_size);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    if (!ks->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "creating the Kafka producer: %s", eb);
        goto fail;
    }
    if (pipe2(ks->wake_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(errstr, errstr_size, "pipe: out of descriptors");
        goto fail;
    }
    ks->mainq = rd_kafka_queue_get_main(ks->rk);
    rd_kafka_queue_io_event_enable(ks->mainq, ks->wake_fd[1], "1", 1);

    const char *names[SRL_KIND_COUNT + 1];
    int parts[SRL_KIND_COUNT + 1] = {0};
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!srl_topic_name(prefix, (srl_kind_t)k, ks->topics[k], sizeof(ks->topics[k]))) {
            snprintf(errstr, errstr_size, "topic.prefix \"%s\" is too long", prefix);
            goto fail;
        }
        names[k] = ks->topics[k];
    }
    srl_topic_name_schemas(prefix, ks->schemas_topic, sizeof(ks->schemas_topic));
    names[SRL_KIND_COUNT] = ks->schemas_topic;
    parts[SRL_KIND_COUNT] = 1; /* schemas: few records, one partition keeps them in order */
    srl_topic_settings_t ts = {
        .partitions = (int)srl_config_int(cfg, SRL_KEY_TOPIC_PARTITIONS),
        .replication_factor = (int)srl_config_int(cfg, SRL_KEY_TOPIC_REPLICATION_FACTOR),
        .min_insync_replicas = (int)srl_config_int(cfg, SRL_KEY_TOPIC_MIN_INSYNC_REPLICAS),
        .segment_ms = srl_config_int(cfg, SRL_KEY_TOPIC_SEGMENT_MS),
        .delete_retention_ms = srl_config_int(cfg, SRL_KEY_TOPIC_DELETE_RETENTION_MS),
    };
    if (!srl_kafka_ensure_topics(ks->rk, &ts, names, parts, SRL_KIND_COUNT + 1, timeout_ms, errstr,
                                 errstr_size)) {
        /* A refused topic is final; a broker that did not answer is not. */
        *retriable = !strstr(errstr, "cleanup.policy=") && !strstr(errstr, "creating topic") &&
                     !strstr(errstr, "topic.min_insync_replicas");
        goto fail;
    }
    srl_kafka_warn_single_replica(ks->rk, "producer", names, SRL_KIND_COUNT, timeout_ms);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        ks->rkt[k] = rd_kafka_topic_new(ks->rk, ks->topics[k], NULL);
    ks->schemas_rkt = rd_kafka_topic_new(ks->rk, ks->schemas_topic, NULL);
    return &ks->base;
fail:
    kafka_close(&ks->base);
    return NULL;
}
