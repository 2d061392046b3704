/*
 * tail.c - the bridge's view of the head of every replicated partition.
 *
 * One librdkafka consumer (no group membership: rd_kafka_assign) tails
 * every partition of the replicated topics from the high watermark it finds
 * at start, and the schema topic from its beginning (every writer schema
 * goes into the registry). Each content partition keeps a window of its
 * most recent records in memory, at most bridge.window_bytes per partition:
 * a spoke that is caught up is served from memory without touching the
 * broker, however many spokes there are. Reads below the window (a rebuild,
 * a spoke that was away) go to the reader pool (readers.c).
 *
 * Long polls: a pull at or past the window's end registers the request as
 * a waiter of its partition and suspends its connection; the tail thread
 * resumes every waiter whose offset it just passed, and the timer thread
 * resumes the ones whose wait_ms ran out. A waiter costs its request
 * struct and a list link - no thread, no timer object.
 *
 * Invariant of a partition window, under the tail lock: every record of
 * the partition with win_start <= offset < end is in ring[], in order.
 * Suspend and resume of a waiter both happen under the tail lock, so a
 * resume can never overtake its suspend.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "pull_encode.h"
#include "tail.h"
#include "sysrepl/clock.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

typedef struct trec {
    int64_t offset, version, timestamp_ms;
    uint32_t key_len, origin_len; /* origin_len 0: none */
    int32_t value_len;            /* -1: tombstone */
    uint8_t data[];               /* key, origin + NUL, value */
} trec_t;

typedef struct tpart {
    trec_t **ring;
    size_t cap, head, count, bytes;
    int64_t win_start, end, high;
    bool ready;
    srl_req_t *waiters;
} tpart_t;

struct srl_bridge_tail {
    srl_bridge_t *b;
    rd_kafka_t *rk;
    pthread_t thread, timer;
    bool thread_started, timer_started;
    pthread_mutex_t lock;
    pthread_cond_t timer_cond;
    tpart_t *parts[SRL_KIND_COUNT];
    int nparts[SRL_KIND_COUNT];
    size_t window_bytes;
    size_t nwaiters;
    size_t total_records, total_bytes;
    int64_t timer_next_ms;
    bool ready;
    atomic_bool stop;
};

static size_t trec_size(const trec_t *r)
{
    return sizeof(*r) + r->key_len + r->origin_len + 1 + (r->value_len > 0 ? r->value_len : 0);
}

static void trec_view(const trec_t *t, srl_kind_t kind, int32_t partition, srl_record_t *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->partition = partition;
    r->offset = t->offset;
    r->version = t->version;
    r->timestamp_ms = t->timestamp_ms;
    r->key = (const char *)t->data;
    r->key_len = t->key_len;
    r->origin = t->origin_len ? (const char *)t->data + t->key_len : NULL;
    if (t->value_len >= 0) {
        r->value = t->data + t->key_len + t->origin_len + 1;
        r->value_len = (size_t)t->value_len;
    }
}

static trec_t *ring_at(const tpart_t *p, size_t i)
{
    return p->ring[(p->head + i) % p->cap];
}

static void part_clear(srl_bridge_tail_t *t, tpart_t *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(ring_at(p, i));
    t->total_records -= p->count;
    t->total_bytes -= p->bytes;
    p->count = p->head = p->bytes = 0;
}

static void part_evict(srl_bridge_tail_t *t, tpart_t *p)
{
    while (p->count > 1 && p->bytes > t->window_bytes) {
        trec_t *r = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        size_t sz = trec_size(r);
        p->bytes -= sz;
        t->total_bytes -= sz;
        t->total_records--;
        p->win_start = r->offset + 1;
        free(r);
    }
}

static bool part_append(srl_bridge_tail_t *t, tpart_t *p, trec_t *r)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        trec_t **ring = malloc(cap * sizeof(*ring));
        if (!ring)
            return false;
        for (size_t i = 0; i < p->count; i++)
            ring[i] = ring_at(p, i);
        free(p->ring);
        p->ring = ring;
        p->cap = cap;
        p->head = 0;
    }
    p->ring[(p->head + p->count) % p->cap] = r;
    p->count++;
    size_t sz = trec_size(r);
    p->bytes += sz;
    t->total_bytes += sz;
    t->total_records++;
    part_evict(t, p);
    return true;
}

/* Index of the first record with offset >= off (count when none). */
static size_t part_find(const tpart_t *p, int64_t off)
{
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_at(p, mid)->offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void waiter_unlink(srl_bridge_tail_t *t, tpart_t *p, srl_req_t *w)
{
    if (w->wprev)
        w->wprev->wnext = w->wnext;
    else
        p->waiters = w->wnext;
    if (w->wnext)
        w->wnext->wprev = w->wprev;
    w->wprev = w->wnext = NULL;
    t->nwaiters--;
}

/* Resume every waiter of p that now has something to read. */
static void part_wake(srl_bridge_tail_t *t, tpart_t *p)
{
    srl_req_t *w = p->waiters;
    while (w) {
        srl_req_t *next = w->wnext;
        if (w->offset < p->end) {
            waiter_unlink(t, p, w);
            srl__resume(w);
        }
        w = next;
    }
}

static tpart_t *find_part(srl_bridge_tail_t *t, srl_kind_t kind, int32_t partition)
{
    if ((unsigned)kind >= SRL_KIND_COUNT || partition < 0 || partition >= t->nparts[kind])
        return NULL;
    return &t->parts[kind][partition];
}

srl_tail_rc_t srl_bridge_tail_pull(srl_bridge_tail_t *t, srl_req_t *req, bool may_wait,
                                   int64_t *high_out)
{
    srl_tail_rc_t rc;
    pthread_mutex_lock(&t->lock);
    tpart_t *p = find_part(t, req->kind, req->partition);
    if (!p || !p->ready) {
        rc = SRL_TAIL_NOT_READY;
        goto done;
    }
    *high_out = p->high;
    if (p->high >= 0 && req->offset > p->high) {
        rc = SRL_TAIL_BEYOND;
        goto done;
    }
    if (req->offset < p->win_start) {
        rc = SRL_TAIL_BELOW;
        goto done;
    }
    if (req->offset >= p->end && may_wait && req->wait_ms > 0 && !atomic_load(&t->stop)) {
        req->deadline_ms = srl_clock_mono_ms() + req->wait_ms;
        req->wprev = NULL;
        req->wnext = p->waiters;
        if (p->waiters)
            p->waiters->wprev = req;
        p->waiters = req;
        t->nwaiters++;
        srl__suspend(req, SRL_WAIT_DATA);
        if (req->deadline_ms < t->timer_next_ms)
            pthread_cond_signal(&t->timer_cond);
        rc = SRL_TAIL_WAITING;
        goto done;
    }
    /* Serve from the window: what is there from offset on (maybe none). */
    size_t first = part_find(p, req->offset);
    size_t n = p->count - first;
    if (n > req->max)
        n = req->max;
    srl_record_t stackrecs[64];
    srl_record_t *recs = n <= 64 ? stackrecs : malloc(n * sizeof(*recs));
    if (!recs) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        rc = SRL_TAIL_SERVED;
        goto done;
    }
    size_t bytes = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        trec_view(ring_at(p, first + i), req->kind, req->partition, &recs[i]);
        bytes += recs[i].key_len + recs[i].value_len + SRL_FRAMING_RECORD_MIN;
        /* keep a response within the body limit a client must accept */
        if (i > 0 && bytes > req->b->max_body_bytes)
            break;
    }
    n = i;
    int64_t next = first + n < p->count    ? ring_at(p, first + n)->offset
                   : req->offset >= p->end ? req->offset
                                           : p->end;
    srl__pull_encode(req, recs, n, next, p->high);
    if (recs != stackrecs)
        free(recs);
    rc = SRL_TAIL_SERVED;
done:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* ---- the tail thread ---- */

static void handle_schema(srl_bridge_tail_t *t, rd_kafka_message_t *m)
{
    if (!m->payload || !m->len)
        return;
    char *json = strndup(m->payload, m->len);
    char err[512];
    uint64_t fp = 0;
    if (!json)
        return;
    pthread_mutex_lock(&t->b->reg_lock);
    bool ok = srl_registry_add(t->b->reg, json, &fp, err, sizeof(err));
    pthread_mutex_unlock(&t->b->reg_lock);
    if (!ok)
        srl_log(SRL_LOG_WARN, "bridge", "schema on the schema topic not loaded",
                "topic=%s offset=%" PRId64 " reason=%s", srl_log_q(t->b->schemas_topic),
                (int64_t)m->offset, srl_log_q(err));
    else
        srl_log(SRL_LOG_DEBUG, "bridge", "schema loaded", "fingerprint=%016" PRIx64, fp);
    free(json);
}

static void handle_record(srl_bridge_tail_t *t, srl_kind_t kind, rd_kafka_message_t *m)
{
    char origin[SRL_FRAMING_ORIGIN_MAX + 1];
    if (!srl_kafka_header_str(m, SRL_HDR_ORIGIN, origin, sizeof(origin)))
        origin[0] = '\0';
    size_t olen = strlen(origin);
    size_t klen = m->key_len > SRL_FRAMING_KEY_MAX ? 0 : m->key_len;
    size_t vlen = m->payload ? m->len : 0;
    trec_t *r = malloc(sizeof(*r) + klen + olen + 1 + vlen);
    if (!r) {
        srl_log(SRL_LOG_ERROR, "bridge", "out of memory caching a record", NULL);
        return;
    }
    r->offset = m->offset;
    r->version = srl_kafka_header_version(m);
    rd_kafka_timestamp_type_t tstype;
    r->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    if (r->timestamp_ms < 0)
        r->timestamp_ms = 0;
    r->key_len = (uint32_t)klen;
    r->origin_len = (uint32_t)olen;
    r->value_len = m->payload ? (int32_t)m->len : -1;
    if (klen)
        memcpy(r->data, m->key, klen);
    memcpy(r->data + klen, origin, olen + 1);
    if (vlen)
        memcpy(r->data + klen + olen + 1, m->payload, vlen);

    pthread_mutex_lock(&t->lock);
    tpart_t *p = find_part(t, kind, m->partition);
    if (!p) {
        pthread_mutex_unlock(&t->lock);
        free(r);
        return;
    }
    if (m->offset < p->end) {
        /* The log went back (topic recreated): start the window over. */
        srl_log(SRL_LOG_WARN, "bridge", "partition offset went back; window reset",
                "topic=%s partition=%d offset=%" PRId64 " expected=%" PRId64,
                srl_log_q(t->b->topics[kind]), (int)m->partition, (int64_t)m->offset, p->end);
        part_clear(t, p);
        p->win_start = m->offset;
        p->high = m->offset;
    }
    if (!part_append(t, p, r)) {
        /* Out of memory: the window restarts after this record. */
        part_clear(t, p);
        p->win_start = m->offset + 1;
        free(r);
    }
    p->end = m->offset + 1;
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(t->rk, t->b->topics[kind], m->partition, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi > p->high)
        p->high = hi;
    if (p->end > p->high)
        p->high = p->end;
    part_wake(t, p);
    pthread_mutex_unlock(&t->lock);
}

static void handle_eof(srl_bridge_tail_t *t, srl_kind_t kind, rd_kafka_message_t *m)
{
    pthread_mutex_lock(&t->lock);
    tpart_t *p = find_part(t, kind, m->partition);
    if (p && m->offset > p->end) {
        /* Offsets up to the end hold nothing we can read (compacted or
         * control records): the window covers them. */
        p->end = m->offset;
        if (p->end > p->high)
            p->high = p->end;
        part_wake(t, p);
    }
    pthread_mutex_unlock(&t->lock);
}

/* Find partitions and high watermarks, then assign. false: retry later. */
static bool tail_init(srl_bridge_tail_t *t)
{
    srl_bridge_t *b = t->b;
    char err[512];
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(16);
    bool ok = false;
    int counts[SRL_KIND_COUNT] = {0};

    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!(b->kinds & (1u << k)))
            continue;
        counts[k] = srl_kafka_partition_count(t->rk, b->topics[k], 5000, err, sizeof(err));
        if (counts[k] <= 0) {
            srl_log(SRL_LOG_WARN, "bridge", "cannot tail topic yet; retrying", "topic=%s reason=%s",
                    srl_log_q(b->topics[k]), srl_log_q(err));
            goto cleanup;
        }
    }
    int nschemas = srl_kafka_partition_count(t->rk, b->schemas_topic, 5000, err, sizeof(err));
    if (nschemas <= 0) {
        srl_log(SRL_LOG_WARN, "bridge", "cannot read the schema topic yet; retrying",
                "topic=%s reason=%s", srl_log_q(b->schemas_topic), srl_log_q(err));
        goto cleanup;
    }
    int64_t *highs[SRL_KIND_COUNT] = {0};
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!counts[k])
            continue;
        highs[k] = calloc((size_t)counts[k], sizeof(int64_t));
        for (int p = 0; highs[k] && p < counts[k]; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(t->rk, b->topics[k], p, &lo,
                                                                     &hi, 5000);
            if (e) {
                srl_log(SRL_LOG_WARN, "bridge", "cannot read watermarks yet; retrying",
                        "topic=%s partition=%d reason=%s", srl_log_q(b->topics[k]), p,
                        srl_log_q(rd_kafka_err2str(e)));
                for (int j = 0; j <= k; j++)
                    free(highs[j]);
                goto cleanup;
            }
            highs[k][p] = hi;
            rd_kafka_topic_partition_list_add(tpl, b->topics[k], p)->offset = hi;
        }
    }
    for (int p = 0; p < nschemas; p++)
        rd_kafka_topic_partition_list_add(tpl, b->schemas_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;

    pthread_mutex_lock(&t->lock);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!counts[k])
            continue;
        t->parts[k] = calloc((size_t)counts[k], sizeof(tpart_t));
        if (!t->parts[k]) {
            pthread_mutex_unlock(&t->lock);
            goto cleanup;
        }
        t->nparts[k] = counts[k];
        for (int p = 0; p < counts[k]; p++) {
            tpart_t *tp = &t->parts[k][p];
            tp->win_start = tp->end = tp->high = highs[k][p];
            tp->ready = true;
        }
        free(highs[k]);
    }
    pthread_mutex_unlock(&t->lock);

    rd_kafka_resp_err_t e = rd_kafka_assign(t->rk, tpl);
    if (e) {
        srl_log(SRL_LOG_ERROR, "bridge", "cannot assign partitions to the tail consumer",
                "reason=%s", srl_log_q(rd_kafka_err2str(e)));
        atomic_store(&b->fatal, true);
        goto cleanup;
    }
    pthread_mutex_lock(&t->lock);
    t->ready = true;
    pthread_mutex_unlock(&t->lock);
    srl_log(SRL_LOG_INFO, "bridge", "tailing topics", "partitions=%d window_bytes=%zu",
            tpl->cnt - nschemas, t->window_bytes);
    ok = true;
cleanup:
    rd_kafka_topic_partition_list_destroy(tpl);
    return ok;
}

/* The kind of a topic of ours; -1 when not ours. */
static int topic_kind(const srl_bridge_t *b, const char *topic)
{
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if ((b->kinds & (1u << k)) && strcmp(b->topics[k], topic) == 0)
            return k;
    return -1;
}

static void *tail_main(void *arg)
{
    srl_bridge_tail_t *t = arg;
    int backoff_ms = 250;
    while (!atomic_load(&t->stop)) {
        if (tail_init(t))
            break;
        for (int waited = 0; waited < backoff_ms && !atomic_load(&t->stop); waited += 50)
            nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
        if (backoff_ms < 5000)
            backoff_ms *= 2;
    }
    int64_t last_error_log = 0;
    while (!atomic_load(&t->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rk, 200);
        if (!m)
            continue;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        int kind = topic_kind(t->b, topic);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (kind >= 0)
                handle_eof(t, (srl_kind_t)kind, m);
        } else if (m->err) {
            int64_t now = srl_clock_mono_ms();
            if (now - last_error_log > 5000) {
                srl_log(srl_kafka_err_is_retriable(m->err) ? SRL_LOG_WARN : SRL_LOG_ERROR, "bridge",
                        "tail consumer error", "topic=%s partition=%d reason=%s", srl_log_q(topic),
                        (int)m->partition, srl_log_q(rd_kafka_message_errstr(m)));
                last_error_log = now;
            }
            srl_metrics_kafka_error();
        } else if (kind >= 0) {
            handle_record(t, (srl_kind_t)kind, m);
        } else if (strcmp(topic, t->b->schemas_topic) == 0) {
            handle_schema(t, m);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* Resumes waiters whose wait ran out; sleeps until the next deadline. */
static void *timer_main(void *arg)
{
    srl_bridge_tail_t *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!atomic_load(&t->stop)) {
        int64_t now = srl_clock_mono_ms();
        int64_t next = now + 1000;
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            for (int p = 0; p < t->nparts[k]; p++) {
                tpart_t *tp = &t->parts[k][p];
                for (srl_req_t *w = tp->waiters, *wn; w; w = wn) {
                    wn = w->wnext;
                    if (w->deadline_ms <= now) {
                        waiter_unlink(t, tp, w);
                        srl__resume(w);
                    } else if (w->deadline_ms < next) {
                        next = w->deadline_ms;
                    }
                }
            }
        }
        t->timer_next_ms = next;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = next - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->timer_cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* Connection trouble is reported once by the error callback or by
     * the record loops; librdkafka's own lines are detail. */
    srl_log(level <= 2 ? SRL_LOG_ERROR : SRL_LOG_DEBUG, "bridge", "librdkafka",
            "client=tail facility=%s detail=%s", srl_log_q(fac), srl_log_q(buf));
}

srl_bridge_tail_t *srl_bridge_tail_start(srl_bridge_t *b, size_t window_bytes, char *errstr,
                                         size_t errstr_size)
{
    srl_bridge_tail_t *t = calloc(1, sizeof(*t));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char eb[512], group[300];
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    t->b = b;
    t->window_bytes = window_bytes;
    t->timer_next_ms = INT64_MAX;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->timer_cond, &ca);
    pthread_condattr_destroy(&ca);

    /* group.id only because rd_kafka_assign needs one: the tail never
     * joins the group nor commits. */
    snprintf(group, sizeof(group), "sysrepl-bridge.%s.tail",
             srl_config_str(b->cfg, SRL_KEY_INSTANCE_ID));
    const char *const defaults[][2] = {{"queued.max.messages.kbytes", "4096"},
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
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    if (!t->rk) {
        snprintf(errstr, errstr_size, "creating the tail consumer: %s", eb);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(t->rk);
    if (pthread_create(&t->thread, NULL, tail_main, t) != 0) {
        snprintf(errstr, errstr_size, "cannot start the tail thread");
        goto fail;
    }
    t->thread_started = true;
    if (pthread_create(&t->timer, NULL, timer_main, t) != 0) {
        snprintf(errstr, errstr_size, "cannot start the long-poll timer thread");
        goto fail;
    }
    t->timer_started = true;
    return t;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    srl_bridge_tail_stop(t);
    return NULL;
}

void srl_bridge_tail_wake_all(srl_bridge_tail_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->stop, true);
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        for (int p = 0; p < t->nparts[k]; p++) {
            tpart_t *tp = &t->parts[k][p];
            while (tp->waiters) {
                srl_req_t *w = tp->waiters;
                waiter_unlink(t, tp, w);
                srl__resume(w);
            }
        }
    pthread_cond_broadcast(&t->timer_cond);
    pthread_mutex_unlock(&t->lock);
}

void srl_bridge_tail_stop(srl_bridge_tail_t *t)
{
    if (!t)
        return;
    srl_bridge_tail_wake_all(t);
    if (t->thread_started)
        pthread_join(t->thread, NULL);
    if (t->timer_started)
        pthread_join(t->timer, NULL);
    if (t->rk) {
        rd_kafka_consumer_close(t->rk);
        rd_kafka_destroy(t->rk);
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        for (int p = 0; p < t->nparts[k]; p++) {
            part_clear(t, &t->parts[k][p]);
            free(t->parts[k][p].ring);
        }
        free(t->parts[k]);
    }
    pthread_cond_destroy(&t->timer_cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int srl_bridge_tail_partitions(srl_bridge_tail_t *t, srl_kind_t kind)
{
    pthread_mutex_lock(&t->lock);
    int n = (unsigned)kind < SRL_KIND_COUNT ? t->nparts[kind] : 0;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int64_t srl_bridge_tail_high(srl_bridge_tail_t *t, srl_kind_t kind, int32_t partition)
{
    pthread_mutex_lock(&t->lock);
    tpart_t *p = find_part(t, kind, partition);
    int64_t h = p && p->ready ? p->high : -1;
    pthread_mutex_unlock(&t->lock);
    return h;
}

bool srl_bridge_tail_ready(srl_bridge_tail_t *t)
{
    pthread_mutex_lock(&t->lock);
    bool r = t->ready;
    pthread_mutex_unlock(&t->lock);
    return r;
}

void srl_bridge_tail_stats(srl_bridge_tail_t *t, size_t *records, size_t *bytes, size_t *waiters)
{
    pthread_mutex_lock(&t->lock);
    *records = t->total_records;
    *bytes = t->total_bytes;
    *waiters = t->nwaiters;
    pthread_mutex_unlock(&t->lock);
}
