/*
 * readers.c - a small pool of threads, each with its own librdkafka
 * consumer, for the work a request handler must not block on: reads below
 * the tail's window (a spoke rebuilding from offset 0, or one that was
 * away), and broker queries (watermarks, topic configs, metadata).
 *
 * A reader remembers where its consumer stands (topic, partition, next
 * offset). A rebuild pulls batch after batch from where the last one
 * ended, so a job that continues a reader's position goes to that reader
 * and reads on from librdkafka's prefetched queue without a new assign; any
 * other job reassigns. Jobs beyond the pool's size wait in a FIFO queue;
 * the requests behind them stay suspended, costing no thread.
 *
 * Suspending a request (at submit) and resuming it (at completion) both
 * happen under the pool lock, so the resume cannot overtake the suspend.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "pull_encode.h"
#include "readers.h"
#include "tail.h"
#include "sysrepl/clock.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

/* How long one read may take before it returns what it has. */
#define READ_BUDGET_MS 5000

typedef struct job {
    srl_req_t *req;
    srl_job_fn fn; /* NULL: a partition read */
    struct job *next;
} job_t;

typedef struct reader {
    struct srl_bridge_readers *pool;
    int id;
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    pthread_cond_t cond;
    job_t *job;
    bool idle;
    /* where the consumer stands; kind -1: nowhere */
    int kind;
    int32_t partition;
    int64_t pos;
    bool at_eof;
    int64_t last_used_ms;
} reader_t;

struct srl_bridge_readers {
    srl_bridge_t *b;
    pthread_mutex_t lock;
    reader_t *readers;
    int count;
    job_t *head, *tail;
    size_t queued;
    bool stop;
};

static bool job_continues(const reader_t *r, const job_t *j)
{
    return !j->fn && r->kind == (int)j->req->kind && r->partition == j->req->partition &&
           r->pos == j->req->offset && !r->at_eof;
}

/* Pick the next queued job for r: one that continues its position first,
 * else the oldest. Pool lock held. */
static job_t *take_job(struct srl_bridge_readers *p, reader_t *r)
{
    job_t *prev = NULL, *j = p->head, *pick = NULL, *pick_prev = NULL;
    for (; j; prev = j, j = j->next)
        if (job_continues(r, j)) {
            pick = j;
            pick_prev = prev;
            break;
        }
    if (!pick) {
        pick = p->head;
        pick_prev = NULL;
    }
    if (!pick)
        return NULL;
    if (pick_prev)
        pick_prev->next = pick->next;
    else
        p->head = pick->next;
    if (p->tail == pick)
        p->tail = pick_prev;
    pick->next = NULL;
    p->queued--;
    return pick;
}

static void submit(struct srl_bridge_readers *p, srl_req_t *req, srl_job_fn fn)
{
    job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        pthread_mutex_lock(&p->lock);
        srl__suspend(req, SRL_WAIT_JOB);
        srl__resume(req);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    j->req = req;
    j->fn = fn;
    pthread_mutex_lock(&p->lock);
    srl__suspend(req, SRL_WAIT_JOB);
    if (p->stop) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "the bridge is shutting down");
        srl__resume(req);
        pthread_mutex_unlock(&p->lock);
        free(j);
        return;
    }
    /* An idle reader already standing where the job starts, else one on
     * the same partition, else the idle reader used least recently, else
     * the queue. */
    reader_t *best = NULL, *same = NULL;
    for (int i = 0; i < p->count; i++) {
        reader_t *r = &p->readers[i];
        if (!r->idle || r->job)
            continue;
        if (job_continues(r, j)) {
            best = same = r;
            break;
        }
        /* on the same partition a seek is cheaper than a new assignment */
        if (!fn && r->kind == (int)req->kind && r->partition == req->partition)
            same = r;
        if (!best || r->last_used_ms < best->last_used_ms)
            best = r;
    }
    if (same)
        best = same;
    if (best) {
        best->job = j;
        best->idle = false;
        pthread_cond_signal(&best->cond);
    } else {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
    }
    pthread_mutex_unlock(&p->lock);
}

void srl_bridge_readers_pull(srl_bridge_readers_t *p, srl_req_t *req)
{
    submit(p, req, NULL);
}

void srl_bridge_readers_call(srl_bridge_readers_t *p, srl_req_t *req, srl_job_fn fn)
{
    submit(p, req, fn);
}

size_t srl_bridge_readers_queued(srl_bridge_readers_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Read req's partition from req->offset: up to req->max records, stopping
 * at the end of the partition or after READ_BUDGET_MS. */
static void read_partition(reader_t *r, srl_req_t *req)
{
    srl_bridge_t *b = r->pool->b;
    const char *topic = b->topics[req->kind];
    rd_kafka_message_t **msgs = NULL;
    srl_record_t *recs = NULL;
    size_t n = 0, bytes = 0;
    int64_t next = req->offset;
    bool eof = false;
    char origin_buf[SRL_FRAMING_ORIGIN_MAX + 1];
    char *origins = NULL;

    msgs = calloc(req->max, sizeof(*msgs));
    recs = calloc(req->max, sizeof(*recs));
    origins = malloc(req->max * sizeof(origin_buf));
    if (!msgs || !recs || !origins) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory for %zu records",
                         req->max);
        goto cleanup;
    }
    if (!job_continues(r, &(job_t){.req = req})) {
        rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tpl, topic, req->partition)->offset = req->offset;
        rd_kafka_resp_err_t e;
        if (r->kind == (int)req->kind && r->partition == req->partition) {
            /* Same partition, another offset: a seek keeps the fetcher. */
            rd_kafka_error_t *se = rd_kafka_seek_partitions(r->rk, tpl, 5000);
            e = se ? rd_kafka_error_code(se) : tpl->elems[0].err;
            if (se)
                rd_kafka_error_destroy(se);
        } else {
            e = rd_kafka_assign(r->rk, tpl);
        }
        rd_kafka_topic_partition_list_destroy(tpl);
        if (e) {
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read %s partition %d: %s",
                             topic, (int)req->partition, rd_kafka_err2str(e));
            r->kind = -1;
            goto cleanup;
        }
        r->kind = (int)req->kind;
        r->partition = req->partition;
        r->at_eof = false;
    }
    int64_t deadline = srl_clock_mono_ms() + READ_BUDGET_MS;
    while (n < req->max) {
        int64_t left = deadline - srl_clock_mono_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, (int)(left > 200 ? 200 : left));
        if (!m)
            continue;
        if (!m->rkt || strcmp(rd_kafka_topic_name(m->rkt), topic) != 0 ||
            m->partition != req->partition) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= req->offset) {
                eof = true;
                if (m->offset > next)
                    next = m->offset;
            }
            rd_kafka_message_destroy(m);
            if (eof)
                break;
            continue;
        }
        if (m->err) {
            srl_log(SRL_LOG_WARN, "bridge", "reader consumer error",
                    "topic=%s partition=%d reason=%s", srl_log_q(topic), (int)req->partition,
                    srl_log_q(rd_kafka_message_errstr(m)));
            srl_metrics_kafka_error();
            bool fatal = !srl_kafka_err_is_retriable(m->err) &&
                         m->err != RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE;
            rd_kafka_message_destroy(m);
            if (fatal) {
                srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "reading %s partition %d failed", topic, (int)req->partition);
                r->kind = -1;
                goto cleanup;
            }
            continue;
        }
        if (m->offset < req->offset) { /* left over from before a reassign */
            rd_kafka_message_destroy(m);
            continue;
        }
        srl_record_t *rec = &recs[n];
        char *origin = origins + n * sizeof(origin_buf);
        if (!srl_kafka_header_str(m, SRL_HDR_ORIGIN, origin, sizeof(origin_buf)))
            origin[0] = '\0';
        rd_kafka_timestamp_type_t tstype;
        rec->kind = req->kind;
        rec->partition = req->partition;
        rec->offset = m->offset;
        rec->key = m->key;
        rec->key_len = m->key_len > SRL_FRAMING_KEY_MAX ? 0 : m->key_len;
        rec->value = m->payload;
        rec->value_len = m->payload ? m->len : 0;
        rec->version = srl_kafka_header_version(m);
        rec->origin = origin[0] ? origin : NULL;
        rec->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
        if (rec->timestamp_ms < 0)
            rec->timestamp_ms = 0;
        msgs[n++] = m;
        next = m->offset + 1;
        bytes += rec->key_len + rec->value_len + SRL_FRAMING_RECORD_MIN;
        if (bytes > b->max_body_bytes / 2)
            break;
    }
    r->pos = next;
    r->at_eof = eof;
    int64_t lo = -1, hi = -1;
    rd_kafka_get_watermark_offsets(r->rk, topic, req->partition, &lo, &hi);
    int64_t high = srl_bridge_tail_high(b->tail, req->kind, req->partition);
    if (hi > high)
        high = hi;
    if (next > high)
        high = next;
    srl__pull_encode(req, recs, n, next, high);
cleanup:
    for (size_t i = 0; msgs && i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    free(msgs);
    free(recs);
    free(origins);
    /* A rebuild reached the end of a partition: its prefetched fetch
     * buffers are freed now, but glibc keeps the pages; give them back so
     * the bridge's RSS after a rebuild returns to its idle level. */
    if (eof && n > 0)
        malloc_trim(0);
}

/* A new consumer's first fetch waits about a second for its broker
 * connection and fetcher to come up: pay that once, before the first
 * rebuild asks, by reading the end of one partition. Pool lock not held. */
static bool reader_warm_up(reader_t *r)
{
    srl_bridge_t *b = r->pool->b;
    if (!b->tail || !srl_bridge_tail_ready(b->tail))
        return false;
    int k = 0;
    while (k < SRL_KIND_COUNT && !(b->kinds & (1u << k)))
        k++;
    if (k == SRL_KIND_COUNT)
        return true;
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tpl, b->topics[k], 0)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    int64_t deadline = srl_clock_mono_ms() + 5000;
    while (!e && srl_clock_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 200);
        if (!m)
            continue;
        bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        rd_kafka_message_destroy(m);
        if (eof)
            break;
    }
    /* where it stands is unknown to job_continues (at the end): reassign later */
    r->kind = k;
    r->partition = 0;
    r->pos = -1;
    return true;
}

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    struct srl_bridge_readers *p = r->pool;
    bool warm = false;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        if (!r->job)
            r->job = take_job(p, r);
        if (!r->job) {
            r->idle = true;
            if (!warm) {
                /* not idle while warming: a job must not wait for it */
                r->idle = false;
                pthread_mutex_unlock(&p->lock);
                warm = reader_warm_up(r);
                pthread_mutex_lock(&p->lock);
                r->idle = true;
                if (r->job || p->head || p->stop)
                    continue;
                if (!warm) {
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_sec += 1;
                    pthread_cond_timedwait(&r->cond, &p->lock, &ts);
                    continue;
                }
            }
            pthread_cond_wait(&r->cond, &p->lock);
            continue;
        }
        job_t *j = r->job;
        r->job = NULL;
        r->idle = false;
        pthread_mutex_unlock(&p->lock);
        if (j->fn) {
            /* Broker queries go through the producer's connections: a
             * reader's connection may be busy with a fetch waiting up to
             * fetch.wait.max.ms, and each query would queue behind it. */
            j->fn(p->b, p->b->rk, j->req);
        } else {
            read_partition(r, j->req);
        }
        pthread_mutex_lock(&p->lock);
        r->last_used_ms = srl_clock_mono_ms();
        srl__resume(j->req);
        free(j);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* Connection trouble is reported once by the error callback or by
     * the record loops; librdkafka's own lines are detail. */
    srl_log(level <= 2 ? SRL_LOG_ERROR : SRL_LOG_DEBUG, "bridge", "librdkafka",
            "client=reader facility=%s detail=%s", srl_log_q(fac), srl_log_q(buf));
}

static rd_kafka_t *reader_consumer(srl_bridge_t *b, int id, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char eb[512], group[300];
    snprintf(group, sizeof(group), "sysrepl-bridge.%s.reader%d",
             srl_config_str(b->cfg, SRL_KEY_INSTANCE_ID), id);
    /* A reader serves one partition at a time: 8 MB of prefetch lets a
     * rebuild stream (bench_bridge: ~5x the consumer's own capped Kafka
     * source) while bounding memory at readers x 8 MB; librdkafka's default
     * (64 MB each) would not. Any kafka.* setting overrides these. */
    const char *const defaults[][2] = {{"queued.max.messages.kbytes", "8192"},
                                       {"fetch.max.bytes", "4194304"},
                                       {"fetch.wait.max.ms", "100"},
                                       {NULL, NULL}};
    const char *const forced[][2] = {{"group.id", group},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"enable.partition.eof", "true"},
                                     {"auto.offset.reset", "earliest"},
                                     {NULL, NULL}};
    if (!srl_kafka_conf_layer(conf, b->cfg, defaults, forced, errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    if (!rk) {
        snprintf(errstr, errstr_size, "creating a reader consumer: %s", eb);
        goto fail;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

srl_bridge_readers_t *srl_bridge_readers_start(srl_bridge_t *b, int count, char *errstr,
                                               size_t errstr_size)
{
    struct srl_bridge_readers *p = calloc(1, sizeof(*p));
    if (!p || !(p->readers = calloc((size_t)count, sizeof(reader_t)))) {
        free(p);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->b = b;
    pthread_mutex_init(&p->lock, NULL);
    for (int i = 0; i < count; i++) {
        reader_t *r = &p->readers[i];
        r->pool = p;
        r->id = i;
        r->kind = -1;
        pthread_cond_init(&r->cond, NULL);
        p->count = i + 1;
        r->rk = reader_consumer(b, i, errstr, errstr_size);
        if (!r->rk)
            goto fail;
        if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
            snprintf(errstr, errstr_size, "cannot start reader thread %d", i);
            goto fail;
        }
        r->started = true;
    }
    return p;
fail:
    srl_bridge_readers_free(p);
    return NULL;
}

void srl_bridge_readers_stop(srl_bridge_readers_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    for (int i = 0; i < p->count; i++)
        pthread_cond_signal(&p->readers[i].cond);
    /* Queued jobs will not run: answer them now. */
    for (job_t *j = p->head, *jn; j; j = jn) {
        jn = j->next;
        srl__ready_error(j->req, MHD_HTTP_SERVICE_UNAVAILABLE, "the bridge is shutting down");
        srl__resume(j->req);
        free(j);
    }
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->count; i++) {
        reader_t *r = &p->readers[i];
        if (r->started)
            pthread_join(r->thread, NULL);
        r->started = false;
        pthread_mutex_lock(&p->lock);
        if (r->job) { /* given but never started */
            srl__ready_error(r->job->req, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the bridge is shutting down");
            srl__resume(r->job->req);
            free(r->job);
            r->job = NULL;
        }
        pthread_mutex_unlock(&p->lock);
    }
}

void srl_bridge_readers_free(srl_bridge_readers_t *p)
{
    if (!p)
        return;
    srl_bridge_readers_stop(p);
    for (int i = 0; i < p->count; i++) {
        reader_t *r = &p->readers[i];
        if (r->rk) {
            rd_kafka_consumer_close(r->rk);
            rd_kafka_destroy(r->rk);
        }
        pthread_cond_destroy(&r->cond);
    }
    free(p->readers);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
