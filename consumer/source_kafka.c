/*
 * source_kafka.c - the Kafka transport of the consumer (see source.h).
 *
 * A librdkafka consumer that assigns partitions itself: the spoke's offsets
 * live in its store, so there is no group rebalancing to wait for and two
 * consumers of the same instance would each read everything (harmless:
 * applying is idempotent). group.id sysrepl.<instance id> is still set so
 * the advisory commits show each spoke's lag in standard Kafka tools.
 *
 * Memory: pre-fetching is capped (queued.max.messages.kbytes) so a rebuild
 * of a million records streams through a few MB instead of the 64 MB
 * librdkafka would buffer by default.
 */
#include "source.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sysrepl/clock.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

/* What the source has assigned, to tell whether a fetch moved a position. */
typedef struct assigned {
    char *topic;
    int32_t partition;
    int64_t next; /* the next offset we will hand out from this partition */
} assigned_t;

typedef struct kafka_source {
    srl_source_t base;
    rd_kafka_t *rk;
    assigned_t *assigned;
    size_t nassigned;
    int64_t last_kick_ms; /* see the end of ks_fetch */
    char group[300];      /* sysrepl.<instance id>, for messages */
    bool group_checked;   /* see check_group */
    struct {              /* the high-watermark probe (ks_highs) */
        pthread_mutex_t mu;
        pthread_cond_t cv; /* on CLOCK_MONOTONIC */
        pthread_t thread;
        bool running, done;
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int timeout_ms;
    } probe;
} kafka_source_t;

/* A batch's own memory (batch->priv): the messages its records point into,
 * destroyed on release, so two batches (the main loop's and the schema
 * loader's) can be alive at once. */
typedef struct kafka_batch {
    rd_kafka_message_t **msgs;
    size_t nmsgs, msgs_cap;
    /* origins (record.origin points in here) */
    char *arena;
    size_t arena_len, arena_cap;
} kafka_batch_t;

void srl_source_batch_free(srl_source_batch_t *batch)
{
    if (!batch)
        return;
    if (batch->priv && batch->priv_free)
        batch->priv_free(batch->priv);
    free(batch->records);
    free(batch->eof);
    free(batch->high);
    free(batch->next);
    memset(batch, 0, sizeof(*batch));
}

bool srl_source_batch_reserve(srl_source_batch_t *batch, size_t npos, size_t cap)
{
    if (cap > batch->capacity) {
        srl_record_t *r = realloc(batch->records, cap * sizeof(*r));
        if (!r)
            return false;
        batch->records = r;
        batch->capacity = cap;
    }
    if (npos > batch->npos || !batch->eof) {
        size_t n = npos ? npos : 1;
        bool *e = realloc(batch->eof, n * sizeof(*e));
        if (!e)
            return false;
        batch->eof = e;
        int64_t *h = realloc(batch->high, n * sizeof(*h));
        if (!h)
            return false;
        batch->high = h;
        int64_t *nx = realloc(batch->next, n * sizeof(*nx));
        if (!nx)
            return false;
        batch->next = nx;
    }
    batch->npos = npos;
    batch->count = 0;
    for (size_t i = 0; i < npos; i++) {
        batch->eof[i] = false;
        batch->high[i] = -1;
        batch->next[i] = -1;
    }
    return true;
}

static void kafka_batch_free(void *priv)
{
    kafka_batch_t *kb = priv;
    for (size_t i = 0; i < kb->nmsgs; i++)
        rd_kafka_message_destroy(kb->msgs[i]);
    free(kb->msgs);
    free(kb->arena);
    free(kb);
}

/* librdkafka's own log lines, in our format. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    srl_log_level_t lvl = level <= 3   ? SRL_LOG_ERROR
                          : level <= 5 ? SRL_LOG_WARN
                          : level <= 6 ? SRL_LOG_INFO
                                       : SRL_LOG_DEBUG;
    srl_log(lvl, "kafka", buf, "facility=%s", srl_log_q(fac));
}

/* Errors the client reports outside any request (broker down, ...). The
 * loops see the effect (no records, RETRY); this only says why, once. */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    srl_log(SRL_LOG_WARN, "consumer", "kafka error", "error=%s reason=%s",
            srl_log_q(rd_kafka_err2name((rd_kafka_resp_err_t)err)), srl_log_q(reason));
}

static srl_source_rc_t classify(rd_kafka_resp_err_t err)
{
    /* An unknown topic is waited for: the hub creates the topics when it
     * first starts, which may be after the spoke. */
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
        return SRL_SOURCE_RETRY;
    return srl_kafka_err_is_retriable(err) ? SRL_SOURCE_RETRY : SRL_SOURCE_FATAL;
}

/* Once, before the first fetch: may this principal use its group? The
 * offsets are ours (the store's), but the advisory commits go to the
 * group, and a refusal found only then would come late. librdkafka keeps
 * looking for the group's coordinator and reports the refusal as a
 * consumer error event, not as OffsetFetch's result: so ask, and read the
 * events (nothing is assigned yet: there are no records to lose). */
static srl_source_rc_t check_group(kafka_source_t *ks, const char *topic, int timeout_ms,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT, denied = 0;
    for (int waited = 0; waited < timeout_ms && !denied; waited += 1000) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, 0);
        err = rd_kafka_committed(ks->rk, list, 1000);
        if (!err)
            err = list->elems[0].err;
        rd_kafka_topic_partition_list_destroy(list);
        if (srl_kafka_err_is_denied(err))
            denied = err;
        rd_kafka_message_t *m;
        while (!denied && (m = rd_kafka_consumer_poll(ks->rk, 0)) != NULL) {
            if (srl_kafka_err_is_denied(m->err))
                denied = m->err;
            rd_kafka_message_destroy(m);
        }
        if (!err && !denied) {
            ks->group_checked = true;
            return SRL_SOURCE_OK;
        }
    }
    if (denied) {
        snprintf(errstr, errstr_size,
                 SRL_KAFKA_DENIED_MARK " to Describe group %s (%s): this principal needs the Read "
                                       "ACL on its own group (docs/operations.md)",
                 ks->group, rd_kafka_err2name(denied));
        return SRL_SOURCE_FATAL;
    }
    snprintf(errstr, errstr_size, "group %s: %s", ks->group, rd_kafka_err2str(err));
    return SRL_SOURCE_RETRY;
}

static srl_source_rc_t ks_partitions(srl_source_t *src, const char *topic, int *count,
                                     int timeout_ms, char *errstr, size_t errstr_size)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    int n = srl_kafka_partition_count(ks->rk, topic, timeout_ms, errstr, errstr_size);
    if (n < 0 && strstr(errstr, SRL_KAFKA_DENIED_MARK))
        return SRL_SOURCE_FATAL; /* a missing ACL: waiting cannot help */
    if (n > 0 && !ks->group_checked) {
        srl_source_rc_t rc = check_group(ks, topic, timeout_ms, errstr, errstr_size);
        if (rc != SRL_SOURCE_OK)
            return rc;
    }
    if (n <= 0) {
        if (n == 0)
            snprintf(errstr, errstr_size, "topic %s has no partitions", topic);
        /* The metadata call does not tell us the error code any more;
         * missing topics and a broker away both come here, and both are
         * worth waiting for. */
        return SRL_SOURCE_RETRY;
    }
    *count = n;
    return SRL_SOURCE_OK;
}

static srl_source_rc_t ks_watermarks(srl_source_t *src, const char *topic, int32_t partition,
                                     int64_t *low, int64_t *high, int timeout_ms, char *errstr,
                                     size_t errstr_size)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(ks->rk, topic, partition, low, high,
                                                               timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "watermarks of %s [%" PRId32 "]: %s", topic, partition,
                 rd_kafka_err2str(err));
        return classify(err);
    }
    return SRL_SOURCE_OK;
}

/* The probe's own thread: librdkafka 2.0's offset queries do not honour
 * their timeout while no broker is reachable (librdkafka #2588, fixed in
 * 2.3), and the main loop must go on (say the broker is away, heed
 * SIGTERM) whatever the broker does. */
static void *probe_main(void *arg)
{
    kafka_source_t *ks = arg;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(ks->rk, ks->probe.list,
                                                         ks->probe.timeout_ms);
    pthread_mutex_lock(&ks->probe.mu);
    ks->probe.err = err;
    ks->probe.done = true;
    pthread_cond_signal(&ks->probe.cv);
    pthread_mutex_unlock(&ks->probe.mu);
    return NULL;
}

/* Join a finished probe thread and drop its list. Under probe.mu. */
static void probe_reap(kafka_source_t *ks)
{
    pthread_join(ks->probe.thread, NULL);
    rd_kafka_topic_partition_list_destroy(ks->probe.list);
    ks->probe.list = NULL;
    ks->probe.running = false;
}

static srl_source_rc_t ks_highs(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                                int64_t *highs, int timeout_ms, char *errstr, size_t errstr_size)
{
    /* One ListOffsets per leader for every position at once (timestamp
     * RD_KAFKA_OFFSET_END: the latest offset, i.e. the high watermark),
     * on the probe thread, waited for at most timeout_ms. */
    kafka_source_t *ks = (kafka_source_t *)src;
    srl_source_rc_t rc = SRL_SOURCE_OK;
    pthread_mutex_lock(&ks->probe.mu);
    if (ks->probe.running && !ks->probe.done) {
        pthread_mutex_unlock(&ks->probe.mu);
        snprintf(errstr, errstr_size,
                 "the broker has not answered the previous probe of the "
                 "high watermarks yet");
        return SRL_SOURCE_RETRY;
    }
    if (ks->probe.running)
        probe_reap(ks); /* a late answer: stale by now */
    ks->probe.list = rd_kafka_topic_partition_list_new((int)npos);
    for (size_t i = 0; i < npos; i++)
        rd_kafka_topic_partition_list_add(ks->probe.list, pos[i].topic, pos[i].partition)->offset =
            RD_KAFKA_OFFSET_END;
    ks->probe.timeout_ms = timeout_ms;
    ks->probe.done = false;
    if (pthread_create(&ks->probe.thread, NULL, probe_main, ks) != 0) {
        rd_kafka_topic_partition_list_destroy(ks->probe.list);
        ks->probe.list = NULL;
        pthread_mutex_unlock(&ks->probe.mu);
        snprintf(errstr, errstr_size, "cannot start the probe thread");
        return SRL_SOURCE_RETRY;
    }
    ks->probe.running = true;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!ks->probe.done &&
           pthread_cond_timedwait(&ks->probe.cv, &ks->probe.mu, &deadline) != ETIMEDOUT)
        ;
    if (!ks->probe.done) {
        pthread_mutex_unlock(&ks->probe.mu);
        snprintf(errstr, errstr_size, "no answer from the broker within %d ms", timeout_ms);
        return SRL_SOURCE_RETRY;
    }
    rd_kafka_topic_partition_list_t *list = ks->probe.list;
    if (ks->probe.err) {
        snprintf(errstr, errstr_size, "high watermarks: %s", rd_kafka_err2str(ks->probe.err));
        rc = classify(ks->probe.err);
    }
    for (size_t i = 0; rc == SRL_SOURCE_OK && i < npos; i++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(list, pos[i].topic,
                                                                            pos[i].partition);
        if (!tp || tp->err || tp->offset < 0) {
            snprintf(errstr, errstr_size, "high watermark of %s [%" PRId32 "]: %s", pos[i].topic,
                     pos[i].partition, tp && tp->err ? rd_kafka_err2str(tp->err) : "no answer");
            rc = tp && tp->err ? classify(tp->err) : SRL_SOURCE_RETRY;
            break;
        }
        highs[i] = tp->offset;
    }
    probe_reap(ks);
    pthread_mutex_unlock(&ks->probe.mu);
    return rc;
}

static srl_source_rc_t ks_tombstone_retention_ms(srl_source_t *src, const char *topic, int64_t *ms,
                                                 int timeout_ms, char *errstr, size_t errstr_size)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    char value[64], *end;
    if (!srl_kafka_topic_config(ks->rk, topic, "delete.retention.ms", value, sizeof(value),
                                timeout_ms, errstr, errstr_size))
        return SRL_SOURCE_RETRY;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || *end || end == value) {
        snprintf(errstr, errstr_size, "topic %s: delete.retention.ms \"%s\" is not a number", topic,
                 value);
        return SRL_SOURCE_FATAL;
    }
    *ms = v;
    return SRL_SOURCE_OK;
}

static void free_assigned(kafka_source_t *ks)
{
    for (size_t i = 0; i < ks->nassigned; i++)
        free(ks->assigned[i].topic);
    free(ks->assigned);
    ks->assigned = NULL;
    ks->nassigned = 0;
}

/* Assign exactly pos[] (with their offsets) unless that is what we already
 * have. Re-assigning bumps librdkafka's fetch version, which discards any
 * pre-fetched message of the old positions. */
static srl_source_rc_t ensure_assignment(kafka_source_t *ks, const srl_source_pos_t *pos,
                                         size_t npos, char *errstr, size_t errstr_size)
{
    bool same = ks->nassigned == npos;
    for (size_t i = 0; same && i < npos; i++)
        same = ks->assigned[i].partition == pos[i].partition &&
               ks->assigned[i].next == pos[i].offset &&
               strcmp(ks->assigned[i].topic, pos[i].topic) == 0;
    if (same)
        return SRL_SOURCE_OK;

    free_assigned(ks);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)npos);
    ks->assigned = calloc(npos ? npos : 1, sizeof(*ks->assigned));
    if (!ks->assigned) {
        rd_kafka_topic_partition_list_destroy(list);
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_FATAL;
    }
    for (size_t i = 0; i < npos; i++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, pos[i].topic,
                                                                           pos[i].partition);
        tp->offset = pos[i].offset;
        ks->assigned[i].topic = strdup(pos[i].topic);
        ks->assigned[i].partition = pos[i].partition;
        ks->assigned[i].next = pos[i].offset;
        ks->nassigned = i + 1;
        if (!ks->assigned[i].topic) {
            rd_kafka_topic_partition_list_destroy(list);
            snprintf(errstr, errstr_size, "out of memory");
            return SRL_SOURCE_FATAL;
        }
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(ks->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        free_assigned(ks);
        snprintf(errstr, errstr_size, "assigning partitions: %s", rd_kafka_err2str(err));
        return classify(err);
    }
    return SRL_SOURCE_OK;
}

static ssize_t find_pos(const srl_source_pos_t *pos, size_t npos, const char *topic,
                        int32_t partition)
{
    for (size_t i = 0; i < npos; i++)
        if (pos[i].partition == partition && strcmp(pos[i].topic, topic) == 0)
            return (ssize_t)i;
    return -1;
}

/* Copy s (len bytes) NUL-terminated into the arena; returns its offset or
 * (size_t)-1 when out of memory. */
static size_t arena_put(kafka_batch_t *kb, const void *s, size_t len)
{
    if (kb->arena_len + len + 1 > kb->arena_cap) {
        size_t cap = kb->arena_cap ? kb->arena_cap * 2 : 4096;
        while (cap < kb->arena_len + len + 1)
            cap *= 2;
        char *a = realloc(kb->arena, cap);
        if (!a)
            return (size_t)-1;
        kb->arena = a;
        kb->arena_cap = cap;
    }
    size_t at = kb->arena_len;
    memcpy(kb->arena + at, s, len);
    kb->arena[at + len] = '\0';
    kb->arena_len += len + 1;
    return at;
}

static void ks_release(srl_source_t *src, srl_source_batch_t *batch)
{
    (void)src;
    if (!batch)
        return;
    kafka_batch_t *kb = batch->priv;
    if (kb) {
        for (size_t i = 0; i < kb->nmsgs; i++)
            rd_kafka_message_destroy(kb->msgs[i]);
        kb->nmsgs = 0;
        kb->arena_len = 0;
    }
    batch->count = 0;
}

/* Take one message into the batch, or drop it. Returns false on a fatal
 * consumer error (errstr set). */
static bool take_message(kafka_source_t *ks, kafka_batch_t *kb, rd_kafka_message_t *m,
                         const srl_source_pos_t *pos, size_t npos, srl_source_batch_t *batch,
                         size_t *origin_at, srl_source_rc_t *rc, char *errstr, size_t errstr_size)
{
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
    ssize_t i = topic ? find_pos(pos, npos, topic, m->partition) : -1;

    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (i >= 0)
                batch->eof[i] = true;
            /* The end as a fetch response saw it: every record below that
             * offset was handed out or compacted away, so the position
             * may pass a compacted gap no record would move it over. */
            if (i >= 0 && m->offset > ks->assigned[i].next) {
                ks->assigned[i].next = m->offset;
                batch->next[i] = m->offset;
            }
        } else if (classify(m->err) == SRL_SOURCE_FATAL) {
            if (m->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
                snprintf(errstr, errstr_size,
                         SRL_KAFKA_DENIED_MARK " to Read group %s (%s): this principal needs "
                                               "the Read ACL on its own group "
                                               "(docs/operations.md)",
                         ks->group, rd_kafka_err2name(m->err));
            else if (srl_kafka_err_is_denied(m->err))
                snprintf(errstr, errstr_size,
                         SRL_KAFKA_DENIED_MARK " to Read topic %s (%s): this principal needs the "
                                               "Read ACL on it (docs/operations.md)",
                         topic ? topic : "?", rd_kafka_err2name(m->err));
            else
                snprintf(errstr, errstr_size, "consuming %s [%" PRId32 "]: %s", topic ? topic : "?",
                         m->partition, rd_kafka_message_errstr(m));
            *rc = SRL_SOURCE_FATAL;
            rd_kafka_message_destroy(m);
            return false;
        } else {
            srl_log(SRL_LOG_DEBUG, "consumer", "kafka consume error",
                    "topic=%s partition=%d error=%s", srl_log_q(topic), (int)m->partition,
                    srl_log_q(rd_kafka_message_errstr(m)));
        }
        rd_kafka_message_destroy(m);
        return true;
    }
    /* Not wanted (a partition no longer asked for) or below the position
     * asked for (the caller moved back: never hand out what it skipped,
     * never hand out twice): drop. */
    if (i < 0 || m->offset < ks->assigned[i].next) {
        rd_kafka_message_destroy(m);
        return true;
    }
    ks->assigned[i].next = m->offset + 1;

    srl_record_t *r = &batch->records[batch->count];
    r->kind = pos[i].kind;
    r->partition = m->partition;
    r->offset = m->offset;
    r->key = m->key;
    r->key_len = m->key ? m->key_len : 0;
    r->value = m->payload;
    r->value_len = m->payload ? m->len : 0;
    r->version = srl_kafka_header_version(m);
    r->origin = NULL;
    origin_at[batch->count] = (size_t)-1;
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t size;
    if (!rd_kafka_message_headers(m, &hdrs) && hdrs &&
        !rd_kafka_header_get_last(hdrs, SRL_HDR_ORIGIN, &val, &size) && val)
        origin_at[batch->count] = arena_put(kb, val, size);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    r->timestamp_ms = ts > 0 ? ts : 0;
    kb->msgs[kb->nmsgs++] = m;
    batch->count++;
    return true;
}

static srl_source_rc_t ks_fetch(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                                size_t max_records, int timeout_ms, srl_source_batch_t *batch,
                                char *errstr, size_t errstr_size)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    srl_source_rc_t rc = SRL_SOURCE_OK;
    size_t *origin_at = NULL;

    ks_release(src, batch);
    if (max_records == 0)
        max_records = 1;
    if (!srl_source_batch_reserve(batch, npos, max_records)) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_FATAL;
    }
    if (!batch->priv && !(batch->priv = calloc(1, sizeof(kafka_batch_t)))) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_FATAL;
    }
    batch->priv_free = kafka_batch_free;
    kafka_batch_t *kb = batch->priv;
    if (kb->msgs_cap < max_records) {
        rd_kafka_message_t **m = realloc(kb->msgs, max_records * sizeof(*m));
        if (!m) {
            snprintf(errstr, errstr_size, "out of memory");
            return SRL_SOURCE_FATAL;
        }
        kb->msgs = m;
        kb->msgs_cap = max_records;
    }
    origin_at = malloc(max_records * sizeof(*origin_at));
    if (!origin_at) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_FATAL;
    }
    rc = ensure_assignment(ks, pos, npos, errstr, errstr_size);
    if (rc != SRL_SOURCE_OK)
        goto cleanup;

    /* Wait for the first message, then take what is already there: a
     * batch fills up under load and stays small (and fast) when idle. */
    int wait = timeout_ms;
    while (batch->count < max_records) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->rk, wait);
        if (!m)
            break;
        if (!take_message(ks, kb, m, pos, npos, batch, origin_at, &rc, errstr, errstr_size))
            goto cleanup;
        if (batch->count > 0)
            wait = 0;
    }
    for (size_t i = 0; i < batch->count; i++)
        if (origin_at[i] != (size_t)-1)
            batch->records[i].origin = kb->arena + origin_at[i];

    /* librdkafka 2.0 re-checks a partition whose queue was over
     * queued.max.messages.kbytes only when its broker thread wakes up,
     * which can be a second later: the store then sits idle. Any request
     * wakes that thread, so when the queue runs low, ask for a watermark
     * (one round trip, at most every 20 ms) to have it fetch again now. */
    if (npos > 0 && batch->count == max_records) {
        rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(ks->rk);
        size_t queued = cq ? rd_kafka_queue_length(cq) : 0;
        if (cq)
            rd_kafka_queue_destroy(cq);
        int64_t now = srl_clock_mono_ms();
        if (queued < max_records && now - ks->last_kick_ms >= 20) {
            int64_t lo, hi;
            ks->last_kick_ms = now;
            rd_kafka_query_watermark_offsets(ks->rk, pos[0].topic, pos[0].partition, &lo, &hi, 100);
        }
    }
    /* The high watermark of the last fetch response (no broker call), for
     * lag and catch-up; it may be a little behind the broker's. */
    for (size_t i = 0; i < npos; i++) {
        int64_t lo = -1, hi = -1;
        if (!rd_kafka_get_watermark_offsets(ks->rk, pos[i].topic, pos[i].partition, &lo, &hi) &&
            hi >= 0)
            batch->high[i] = hi;
    }
cleanup:
    free(origin_at);
    return rc;
}

static void ks_committed(srl_source_t *src, const srl_source_pos_t *pos, size_t npos)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    if (npos == 0)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)npos);
    for (size_t i = 0; i < npos; i++)
        rd_kafka_topic_partition_list_add(list, pos[i].topic, pos[i].partition)->offset =
            pos[i].offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(ks->rk, list, 1 /* async */);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        srl_log(SRL_LOG_DEBUG, "consumer", "kafka offset commit failed", "error=%s",
                srl_log_q(rd_kafka_err2str(err)));
    rd_kafka_topic_partition_list_destroy(list);
}

static void ks_close(srl_source_t *src)
{
    kafka_source_t *ks = (kafka_source_t *)src;
    if (!ks)
        return;
    if (ks->probe.running) {
        /* A probe still waiting on an unreachable broker uses rk: give it
         * a moment, then leave rk to the exit rather than free it under
         * the thread. */
        pthread_mutex_lock(&ks->probe.mu);
        int64_t until = srl_clock_mono_ms() + 1000;
        while (!ks->probe.done && srl_clock_mono_ms() < until) {
            pthread_mutex_unlock(&ks->probe.mu);
            struct timespec ts = {0, 20000000L};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&ks->probe.mu);
        }
        bool done = ks->probe.done;
        if (done)
            probe_reap(ks);
        pthread_mutex_unlock(&ks->probe.mu);
        if (!done) {
            srl_log(SRL_LOG_WARN, "consumer", "closing while a probe waits for the broker",
                    "detail=\"the Kafka client is left to the process exit\"");
            return;
        }
    }
    if (ks->rk) {
        rd_kafka_assign(ks->rk, NULL);
        rd_kafka_consumer_close(ks->rk);
        rd_kafka_destroy(ks->rk);
    }
    free_assigned(ks);
    if (ks->base.ops) { /* the probe's lock and condition were made */
        pthread_cond_destroy(&ks->probe.cv);
        pthread_mutex_destroy(&ks->probe.mu);
    }
    free(ks);
}

static const srl_source_ops_t kafka_ops = {
    .partitions = ks_partitions,
    .watermarks = ks_watermarks,
    .highs = ks_highs,
    .tombstone_retention_ms = ks_tombstone_retention_ms,
    .fetch = ks_fetch,
    .release = ks_release,
    .committed = ks_committed,
    .close = ks_close,
};

srl_source_t *srl_source_kafka_new(const srl_config_t *cfg, const char *instance_id, char *errstr,
                                   size_t errstr_size)
{
    kafka_source_t *ks = calloc(1, sizeof(*ks));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char group[300], eb[512];

    if (!ks || !conf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    ks->base.ops = &kafka_ops;
    pthread_mutex_init(&ks->probe.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ks->probe.cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((size_t)snprintf(group, sizeof(group), "sysrepl.%s", instance_id) >= sizeof(group)) {
        snprintf(errstr, errstr_size, "instance.id is too long for a group id");
        goto fail;
    }
    /* Our defaults first; kafka.* from the config may override them. */
    const char *const defaults[][2] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        /* Bounded pre-fetch: the rebuild streams, it does not buffer.
         * librdkafka's defaults allow 64 MB queued plus 50 MB per fetch
         * response. A small queue would leave the store idle with
         * librdkafka 2.0 (a partition over the limit is re-checked up to
         * a second later) but for the wake-up at the end of ks_fetch; see
         * bench/README.md for what was measured. */
        {"queued.max.messages.kbytes", "2048"},
        {"fetch.max.bytes", "1048576"},
        {"fetch.wait.max.ms", "100"},
        {"socket.keepalive.enable", "true"},
        {NULL, NULL},
    };
    if (!srl_kafka_conf_layer(conf, cfg, defaults, NULL, errstr, errstr_size))
        goto fail;
    size_t group_size = sizeof(ks->group); /* the effective one: kafka.group.id may set it */
    if (rd_kafka_conf_get(conf, "group.id", ks->group, &group_size) != RD_KAFKA_CONF_OK)
        snprintf(ks->group, sizeof(ks->group), "%s", group);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);

    ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, eb, sizeof(eb));
    if (!ks->rk) {
        snprintf(errstr, errstr_size, "creating the Kafka consumer: %s", eb);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(ks->rk);
    return &ks->base;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    ks_close(ks ? &ks->base : NULL);
    return NULL;
}
