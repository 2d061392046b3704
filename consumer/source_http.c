/*
 * source_http.c - the http transport of the consumer (transport = http):
 * a spoke that cannot reach Kafka reads the topics through a
 * sysrepl-bridge's Replication API (see source.h, docs/openapi.yaml).
 *
 * fetch() asks every wanted partition at once (curl multi, connections
 * kept alive): first without waiting, and only when nothing at all came
 * back, once more as long polls of timeout_ms, returning as soon as one
 * partition has records (the other long polls are abandoned). Records are
 * the binary framing's, so the values are the topic's bytes exactly.
 *
 * An idle spoke: a fetch at the very positions the previous one found
 * caught up and empty skips the first round and long-polls for at least
 * IDLE_POLL_MS (the bridge caps it at bridge.long_poll_max_ms). The
 * consumer's loop passes consumer.poll_timeout_ms (100 ms by default), and
 * two rounds of every partition per 100 ms were about 176 requests a second
 * from a spoke with nothing to do. IDLE_POLL_MS stays below the loop's 5 s
 * heartbeat so its probes, commits and stats keep their pace; a first
 * caught-up fetch (start-up, schema loading, rebuilds) still waits only
 * timeout_ms.
 *
 * Failures: a refused connection, a reset (the bridge restarting), a
 * timeout, 408/429/5xx are RETRY - the caller waits and calls again with
 * the same positions, so a bridge restart costs nothing but the wait;
 * 401/403/other 4xx and certificate failures are FATAL. The bridge keeps
 * no state per spoke: the positions passed in are the only truth.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "source.h"
#include "source_http.h"
#include "sysrepl/bridge_client.h"
#include "sysrepl/framing.h"
#include "sysrepl/log.h"

#define IDLE_POLL_MS 4000

/* A position the last fetch found caught up; the topic name is copied (the
 * caller's strings are stable only during a fetch). */
typedef struct idle_pos {
    char topic[256];
    int32_t partition;
    int64_t offset;
} idle_pos_t;

typedef struct http_source {
    srl_source_t base;
    srl_bridge_client_t *client;
    CURLM *multi;
    idle_pos_t *idle_pos; /* the last fetch's positions if it found them
                           * all caught up and empty (idle_n 0: none) */
    size_t idle_n;
} http_source_t;

/* The caller asks again exactly where the last fetch found nothing. */
static bool same_idle_positions(const http_source_t *s, const srl_source_pos_t *pos, size_t npos)
{
    if (npos == 0 || s->idle_n != npos)
        return false;
    for (size_t i = 0; i < npos; i++)
        if (pos[i].offset != s->idle_pos[i].offset ||
            pos[i].partition != s->idle_pos[i].partition ||
            strcmp(pos[i].topic, s->idle_pos[i].topic) != 0)
            return false;
    return true;
}

static void remember_idle(http_source_t *s, const srl_source_pos_t *pos, size_t npos, bool idle)
{
    s->idle_n = 0;
    if (!idle || npos == 0)
        return;
    idle_pos_t *p = realloc(s->idle_pos, npos * sizeof(*p));
    if (!p)
        return;
    s->idle_pos = p;
    for (size_t i = 0; i < npos; i++) {
        if (strlen(pos[i].topic) >= sizeof(p[i].topic))
            return; /* longer than any Kafka topic name: never idle */
        snprintf(p[i].topic, sizeof(p[i].topic), "%s", pos[i].topic);
        p[i].partition = pos[i].partition;
        p[i].offset = pos[i].offset;
    }
    s->idle_n = npos;
}

/* batch->priv: the responses and decoded framings its records point into. */
typedef struct http_batch {
    srl_http_resp_t *resps;
    srl_framing_batch_t *frames;
    size_t n, cap;
} http_batch_t;

static void http_batch_release(http_batch_t *hb)
{
    for (size_t i = 0; i < hb->n; i++) {
        srl_http_resp_clear(&hb->resps[i]);
        srl_framing_batch_free(&hb->frames[i]);
    }
    hb->n = 0;
}

static void http_batch_free(void *priv)
{
    http_batch_t *hb = priv;
    if (!hb)
        return;
    http_batch_release(hb);
    free(hb->resps);
    free(hb->frames);
    free(hb);
}

static srl_source_rc_t rc_of(srl_http_rc_t rc)
{
    return rc == SRL_HTTP_OK      ? SRL_SOURCE_OK
           : rc == SRL_HTTP_RETRY ? SRL_SOURCE_RETRY
                                  : SRL_SOURCE_FATAL;
}

/* GET /state and find topic in it; *topic_out is borrowed from *root. */
static srl_source_rc_t get_topic_state(http_source_t *s, const char *topic, int timeout_ms,
                                       json_t **root, json_t **topic_out, char *errstr,
                                       size_t errstr_size)
{
    srl_http_resp_t resp = {0};
    srl_http_rc_t rc = srl_bridge_client_get(s->client, "state", "application/json", timeout_ms,
                                             &resp);
    *root = NULL;
    if (rc != SRL_HTTP_OK) {
        snprintf(errstr, errstr_size, "GET state: %s", resp.error);
        srl_http_resp_clear(&resp);
        return rc_of(rc);
    }
    json_error_t jerr;
    *root = json_loadb(resp.body, resp.len, 0, &jerr);
    srl_http_resp_clear(&resp);
    if (!*root) {
        snprintf(errstr, errstr_size, "GET state: not JSON: %s", jerr.text);
        return SRL_SOURCE_RETRY;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(*root, "topics"), i, t) {
        const char *name = json_string_value(json_object_get(t, "topic"));
        if (name && strcmp(name, topic) == 0) {
            *topic_out = t;
            return SRL_SOURCE_OK;
        }
    }
    json_decref(*root);
    *root = NULL;
    /* Like a topic the hub has not created yet: wait for it. */
    snprintf(errstr, errstr_size,
             "the bridge does not serve topic %s (check its replicate and "
             "topic.prefix)",
             topic);
    return SRL_SOURCE_RETRY;
}

static srl_source_rc_t http_partitions(srl_source_t *src, const char *topic, int *count,
                                       int timeout_ms, char *errstr, size_t errstr_size)
{
    http_source_t *s = (http_source_t *)src;
    json_t *root, *t;
    srl_source_rc_t rc = get_topic_state(s, topic, timeout_ms, &root, &t, errstr, errstr_size);
    if (rc != SRL_SOURCE_OK)
        return rc;
    *count = (int)json_integer_value(json_object_get(t, "partition_count"));
    json_decref(root);
    return SRL_SOURCE_OK;
}

static srl_source_rc_t http_watermarks(srl_source_t *src, const char *topic, int32_t partition,
                                       int64_t *low, int64_t *high, int timeout_ms, char *errstr,
                                       size_t errstr_size)
{
    http_source_t *s = (http_source_t *)src;
    json_t *root, *t, *p;
    size_t i;
    srl_source_rc_t rc = get_topic_state(s, topic, timeout_ms, &root, &t, errstr, errstr_size);
    if (rc != SRL_SOURCE_OK)
        return rc;
    rc = SRL_SOURCE_RETRY;
    snprintf(errstr, errstr_size, "topic %s has no partition %d at the bridge", topic,
             (int)partition);
    json_array_foreach(json_object_get(t, "partitions"), i, p) {
        if (json_integer_value(json_object_get(p, "partition")) == partition) {
            *low = json_integer_value(json_object_get(p, "low_watermark"));
            *high = json_integer_value(json_object_get(p, "high_watermark"));
            rc = SRL_SOURCE_OK;
        }
    }
    json_decref(root);
    return rc;
}

/* One GET state for every position: the bridge asks the broker for each
 * watermark while answering (routes_state.c), so these are fresh. */
static srl_source_rc_t http_highs(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                                  int64_t *highs, int timeout_ms, char *errstr, size_t errstr_size)
{
    http_source_t *s = (http_source_t *)src;
    json_t *root = NULL;
    srl_source_rc_t rc = SRL_SOURCE_OK;
    for (size_t i = 0; i < npos; i++)
        highs[i] = -1;
    for (size_t i = 0; rc == SRL_SOURCE_OK && i < npos; i++) {
        if (highs[i] >= 0)
            continue;
        json_t *t, *p;
        size_t k;
        json_decref(root);
        rc = get_topic_state(s, pos[i].topic, timeout_ms, &root, &t, errstr, errstr_size);
        if (rc != SRL_SOURCE_OK)
            break;
        /* every position of this topic from the same answer */
        json_array_foreach(json_object_get(t, "partitions"), k, p) {
            json_int_t part = json_integer_value(json_object_get(p, "partition"));
            json_t *hw = json_object_get(p, "high_watermark");
            for (size_t j = i; j < npos; j++)
                if (strcmp(pos[j].topic, pos[i].topic) == 0 && pos[j].partition == part &&
                    json_is_integer(hw))
                    highs[j] = json_integer_value(hw);
        }
        if (highs[i] < 0) {
            snprintf(errstr, errstr_size, "topic %s has no partition %d at the bridge",
                     pos[i].topic, (int)pos[i].partition);
            rc = SRL_SOURCE_RETRY;
        }
    }
    json_decref(root);
    return rc;
}

static srl_source_rc_t http_retention(srl_source_t *src, const char *topic, int64_t *ms,
                                      int timeout_ms, char *errstr, size_t errstr_size)
{
    http_source_t *s = (http_source_t *)src;
    json_t *root, *t;
    srl_source_rc_t rc = get_topic_state(s, topic, timeout_ms, &root, &t, errstr, errstr_size);
    if (rc != SRL_SOURCE_OK)
        return rc;
    *ms = json_integer_value(json_object_get(t, "delete_retention_ms"));
    json_decref(root);
    return SRL_SOURCE_OK;
}

/* One round: GET every position with wait_ms; with stop_at_first, return
 * once one answer holds records (the rest are abandoned). Fills hb->resps
 * [0..npos) (status 0: no answer). Returns the worst failure class when no
 * position answered. */
static srl_source_rc_t round_trip(http_source_t *s, const srl_source_pos_t *pos, size_t npos,
                                  size_t per_max, int wait_ms, bool stop_at_first, http_batch_t *hb,
                                  srl_http_rc_t *rcs, char *errstr, size_t errstr_size)
{
    CURL **easy = calloc(npos, sizeof(*easy));
    size_t ok = 0, failed = 0;
    srl_http_rc_t worst = SRL_HTTP_RETRY;
    if (!easy) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_RETRY;
    }
    for (size_t i = 0; i < npos; i++) {
        const char *seg;
        char path[512];
        rcs[i] = SRL_HTTP_RETRY;
        srl_http_resp_clear(&hb->resps[i]);
        if (!srl_bridge_client_topic_segment(s->client, pos[i].topic, &seg)) {
            snprintf(errstr, errstr_size, "topic %s is not one of ours (topic.prefix?)",
                     pos[i].topic);
            worst = SRL_HTTP_FATAL;
            continue;
        }
        snprintf(path, sizeof(path),
                 "topics/%s/partitions/%d/records?offset=%" PRId64 "&max=%zu&wait_ms=%d", seg,
                 (int)pos[i].partition, pos[i].offset, per_max, wait_ms);
        easy[i] = srl_bridge_client_easy(s->client, path, SRL_FRAMING_MEDIA_TYPE, wait_ms + 15000,
                                         &hb->resps[i]);
        if (easy[i])
            curl_multi_add_handle(s->multi, easy[i]);
    }
    int running = 1;
    bool done = false;
    while (running && !done) {
        curl_multi_perform(s->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(s->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            for (size_t i = 0; i < npos; i++) {
                if (easy[i] != m->easy_handle)
                    continue;
                rcs[i] = srl_bridge_client_finish(easy[i], m->data.result, &hb->resps[i]);
                if (rcs[i] == SRL_HTTP_OK) {
                    ok++;
                    /* more than the 8-byte empty batch: records came */
                    if (stop_at_first && hb->resps[i].len > SRL_FRAMING_HEADER_SIZE)
                        done = true;
                } else {
                    failed++;
                    if (rcs[i] == SRL_HTTP_FATAL)
                        worst = SRL_HTTP_FATAL;
                    snprintf(errstr, errstr_size, "partition %d of %s: %s", (int)pos[i].partition,
                             pos[i].topic, hb->resps[i].error);
                }
            }
        }
        if (running && !done)
            curl_multi_poll(s->multi, NULL, 0, 200, NULL);
    }
    for (size_t i = 0; i < npos; i++) {
        if (!easy[i])
            continue;
        curl_multi_remove_handle(s->multi, easy[i]);
        srl_bridge_client_easy_free(easy[i]);
    }
    free(easy);
    if (worst == SRL_HTTP_FATAL)
        return SRL_SOURCE_FATAL;
    if (ok == 0 && failed > 0)
        return SRL_SOURCE_RETRY;
    return SRL_SOURCE_OK;
}

static srl_source_rc_t http_fetch(srl_source_t *src, const srl_source_pos_t *pos, size_t npos,
                                  size_t max_records, int timeout_ms, srl_source_batch_t *batch,
                                  char *errstr, size_t errstr_size)
{
    http_source_t *s = (http_source_t *)src;
    if (!srl_source_batch_reserve(batch, npos, max_records ? max_records : 1)) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_RETRY;
    }
    if (!batch->priv && !(batch->priv = calloc(1, sizeof(http_batch_t)))) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_RETRY;
    }
    batch->priv_free = http_batch_free;
    http_batch_t *hb = batch->priv;
    http_batch_release(hb);
    if (npos > hb->cap) {
        srl_http_resp_t *r = realloc(hb->resps, npos * sizeof(*r));
        if (r)
            hb->resps = r;
        srl_framing_batch_t *f = realloc(hb->frames, npos * sizeof(*f));
        if (f)
            hb->frames = f;
        if (!r || !f) {
            snprintf(errstr, errstr_size, "out of memory");
            return SRL_SOURCE_RETRY;
        }
        hb->cap = npos;
    }
    memset(hb->resps, 0, npos * sizeof(*hb->resps));
    memset(hb->frames, 0, npos * sizeof(*hb->frames));
    hb->n = npos;
    srl_http_rc_t *rcs = calloc(npos ? npos : 1, sizeof(*rcs));
    if (!rcs) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SOURCE_RETRY;
    }
    size_t per_max = npos ? (max_records + npos - 1) / npos : max_records;
    if (per_max == 0)
        per_max = 1;

    bool idle = timeout_ms > 0 && same_idle_positions(s, pos, npos);
    srl_source_rc_t rc = SRL_SOURCE_OK;
    bool any = false, caught_up = true;
    if (!idle) {
        rc = round_trip(s, pos, npos, per_max, 0, false, hb, rcs, errstr, errstr_size);
        for (size_t i = 0; rc == SRL_SOURCE_OK && i < npos; i++)
            any |= rcs[i] == SRL_HTTP_OK && hb->resps[i].len > SRL_FRAMING_HEADER_SIZE;
        caught_up = rc == SRL_SOURCE_OK;
        for (size_t i = 0; caught_up && i < npos; i++)
            caught_up = rcs[i] == SRL_HTTP_OK && hb->resps[i].high >= 0 &&
                        hb->resps[i].next_offset >= hb->resps[i].high;
    }
    if (rc == SRL_SOURCE_OK && !any && timeout_ms > 0 && npos > 0 && caught_up) {
        /* Everything is caught up: wait for news with long polls (longer
         * when the caller asks again at the same positions: idle). */
        int wait_ms = idle && timeout_ms < IDLE_POLL_MS ? IDLE_POLL_MS : timeout_ms;
        rc = round_trip(s, pos, npos, per_max, wait_ms, true, hb, rcs, errstr, errstr_size);
        any = false;
        for (size_t i = 0; rc == SRL_SOURCE_OK && i < npos; i++)
            any |= rcs[i] == SRL_HTTP_OK && hb->resps[i].len > SRL_FRAMING_HEADER_SIZE;
        remember_idle(s, pos, npos, rc == SRL_SOURCE_OK && !any);
    } else {
        remember_idle(s, pos, npos, false);
    }
    if (rc != SRL_SOURCE_OK) {
        free(rcs);
        http_batch_release(hb);
        return rc;
    }

    size_t count = 0;
    for (size_t i = 0; i < npos; i++) {
        srl_http_resp_t *r = &hb->resps[i];
        if (rcs[i] != SRL_HTTP_OK)
            continue;
        char err[256];
        if (!srl_framing_decode(r->body, r->len, pos[i].kind, per_max, &hb->frames[i], NULL, err,
                                sizeof(err))) {
            snprintf(errstr, errstr_size, "partition %d of %s: bridge sent a bad batch: %s",
                     (int)pos[i].partition, pos[i].topic, err);
            free(rcs);
            http_batch_release(hb);
            return SRL_SOURCE_RETRY;
        }
        srl_framing_batch_t *f = &hb->frames[i];
        if (count + f->count > batch->capacity &&
            !srl_source_batch_reserve(batch, npos, count + f->count)) {
            snprintf(errstr, errstr_size, "out of memory");
            free(rcs);
            http_batch_release(hb);
            return SRL_SOURCE_RETRY;
        }
        int64_t last = pos[i].offset - 1;
        for (size_t k = 0; k < f->count; k++) {
            srl_record_t *rec = &f->records[k];
            /* never below the given offset, always in order */
            if (rec->offset <= last)
                continue;
            last = rec->offset;
            rec->kind = pos[i].kind;
            rec->partition = pos[i].partition;
            batch->records[count++] = *rec;
        }
        batch->high[i] = r->high;
        batch->eof[i] = r->high >= 0 && r->next_offset >= r->high;
        /* The bridge's next offset passes compacted gaps (source.h). */
        if (r->next_offset > pos[i].offset)
            batch->next[i] = r->next_offset;
    }
    batch->count = count;
    free(rcs);
    return SRL_SOURCE_OK;
}

static void http_release(srl_source_t *src, srl_source_batch_t *batch)
{
    (void)src;
    if (batch && batch->priv && batch->priv_free == http_batch_free)
        http_batch_release(batch->priv);
    if (batch)
        batch->count = 0;
}

static void http_committed(srl_source_t *src, const srl_source_pos_t *pos, size_t npos)
{
    /* The bridge keeps no state per spoke: nothing to tell it. */
    (void)src;
    (void)pos;
    (void)npos;
}

static void http_close(srl_source_t *src)
{
    http_source_t *s = (http_source_t *)src;
    if (!s)
        return;
    if (s->multi)
        curl_multi_cleanup(s->multi);
    srl_bridge_client_free(s->client);
    free(s->idle_pos);
    free(s);
}

static const srl_source_ops_t http_ops = {
    .partitions = http_partitions,
    .watermarks = http_watermarks,
    .highs = http_highs,
    .tombstone_retention_ms = http_retention,
    .fetch = http_fetch,
    .release = http_release,
    .committed = http_committed,
    .close = http_close,
};

srl_source_t *srl_source_http_new(const srl_config_t *cfg, char *errstr, size_t errstr_size)
{
    http_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->base.ops = &http_ops;
    s->client = srl_bridge_client_new(cfg, errstr, errstr_size);
    s->multi = curl_multi_init();
    if (!s->client || !s->multi) {
        if (s->client && !s->multi)
            snprintf(errstr, errstr_size, "out of memory");
        http_close(&s->base);
        return NULL;
    }
    return &s->base;
}
