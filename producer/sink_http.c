/*
 * sink_http.c - the http transport of the producer (transport = http): a
 * push instance that cannot reach Kafka posts its batches to a
 * sysrepl-bridge (POST /api/replication/v1/topics/{kind}/records, binary
 * framing, see docs/openapi.yaml). See sink.h for the contract.
 *
 * publish() frames each kind's records of a batch into one request and
 * queues it; poll() drives the requests (curl multi, keep-alive). One
 * request is in flight at a time, in publish order, so records of one key
 * reach the topic in order even across batches and retries. The bridge
 * answers 200 only after the broker acknowledged every record of the
 * request: only then are the records marked delivered (and the caller may
 * delete their outbox rows).
 *
 * Failures: a refused or reset connection, a timeout, 408/429/5xx are
 * retried with backoff (200 ms doubling to 10 s) for as long as it takes -
 * a bridge restart costs only the wait; the bridge's 503 after a partial
 * write is retried whole (repeats are no-ops on the spokes). 401/403 and
 * other 4xx (a batch the bridge refuses as invalid) fail the request's
 * records with failed_fatal set: retrying cannot fix them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sink.h"
#include "sink_http.h"
#include "sysrepl/bridge_client.h"
#include "sysrepl/clock.h"
#include "sysrepl/framing.h"
#include "sysrepl/log.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000

typedef struct push_req {
    srl_sink_batch_t *batch;
    srl_kind_t kind;
    size_t nrecords;
    srl_framing_buf_t body;
    struct push_req *next;
} push_req_t;

typedef struct http_sink {
    srl_sink_t base;
    srl_bridge_client_t *client;
    CURLM *multi;
    push_req_t *head, *tail; /* FIFO; head is the one in flight or next */
    CURL *easy;              /* head's transfer, when running */
    struct curl_slist *headers;
    srl_http_resp_t resp;
    int64_t retry_at_ms; /* head waits until then after a failure */
    int64_t backoff_ms;
    size_t in_flight;
    int timeout_ms;
    char key_header[600];
} http_sink_t;

static void push_req_free(push_req_t *r)
{
    if (!r)
        return;
    srl_framing_buf_free(&r->body);
    free(r);
}

static bool sink_publish(srl_sink_t *sink, srl_sink_batch_t *b, char *errstr, size_t errstr_size)
{
    http_sink_t *s = (http_sink_t *)sink;
    push_req_t *reqs[SRL_KIND_COUNT] = {0};
    size_t starts[SRL_KIND_COUNT] = {0};
    char err[256];
    b->pending = b->count;
    b->failed = 0;
    b->failed_fatal = false;
    b->error[0] = '\0';
    for (size_t i = 0; i < b->count; i++) {
        const srl_record_t *rec = &b->records[i];
        if ((unsigned)rec->kind >= SRL_KIND_COUNT) {
            snprintf(errstr, errstr_size, "record %zu has no kind", i);
            goto fail;
        }
        push_req_t *r = reqs[rec->kind];
        if (!r) {
            r = reqs[rec->kind] = calloc(1, sizeof(*r));
            if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
            }
            r->batch = b;
            r->kind = rec->kind;
            starts[rec->kind] = srl_framing_begin(&r->body);
        }
        srl_record_t copy = *rec;
        copy.offset = -1;
        copy.partition = -1;
        if (!srl_framing_add(&r->body, &copy, err, sizeof(err))) {
            snprintf(errstr, errstr_size, "record %zu: %s", i, err);
            goto fail;
        }
        r->nrecords++;
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!reqs[k])
            continue;
        if (!srl_framing_finish(&reqs[k]->body, starts[k], (uint32_t)reqs[k]->nrecords)) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    /* All framed: queue them (kinds in apply order). */
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        if (!reqs[k])
            continue;
        if (s->tail)
            s->tail->next = reqs[k];
        else
            s->head = reqs[k];
        s->tail = reqs[k];
    }
    s->in_flight += b->count;
    return true;
fail:
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        push_req_free(reqs[k]);
    b->pending = 0;
    return false;
}

/* Start the head request's transfer. */
static void push_start_head(http_sink_t *s)
{
    push_req_t *r = s->head;
    char path[128];
    snprintf(path, sizeof(path), "topics/%s/records", srl_kind_name(r->kind));
    srl_http_resp_clear(&s->resp);
    s->easy = srl_bridge_client_easy(s->client, path, "application/json", s->timeout_ms, &s->resp);
    if (!s->easy) {
        s->retry_at_ms = srl_clock_mono_ms() + BACKOFF_MIN_MS;
        return;
    }
    /* srl_bridge_client_easy prepares a GET: make it this POST. Its
     * headers (the key) stay; add the content type. */
    s->headers = curl_slist_append(NULL, s->key_header);
    s->headers = curl_slist_append(s->headers, "Content-Type: " SRL_FRAMING_MEDIA_TYPE);
    s->headers = curl_slist_append(s->headers, "Accept: application/json");
    s->headers = curl_slist_append(s->headers, "Expect:");
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, r->body.data);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    curl_multi_add_handle(s->multi, s->easy);
}

static void push_end_transfer(http_sink_t *s)
{
    curl_multi_remove_handle(s->multi, s->easy);
    srl_bridge_client_easy_free(s->easy);
    s->easy = NULL;
    curl_slist_free_all(s->headers);
    s->headers = NULL;
}

/* The head request got its final answer: record it in its batch. */
static void push_finish_head(http_sink_t *s, bool ok, bool fatal, const char *why)
{
    push_req_t *r = s->head;
    srl_sink_batch_t *b = r->batch;
    if (!ok) {
        if (!b->failed)
            snprintf(b->error, sizeof(b->error), "%s", why);
        b->failed += r->nrecords;
        b->failed_fatal |= fatal;
    }
    b->pending -= r->nrecords;
    s->in_flight -= r->nrecords;
    s->head = r->next;
    if (!s->head)
        s->tail = NULL;
    push_req_free(r);
}

static void sink_poll(srl_sink_t *sink, int timeout_ms)
{
    http_sink_t *s = (http_sink_t *)sink;
    int64_t deadline = srl_clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t now = srl_clock_mono_ms();
        if (!s->easy && s->head && now >= s->retry_at_ms)
            push_start_head(s);
        if (s->easy) {
            int running = 0;
            curl_multi_perform(s->multi, &running);
            CURLMsg *m;
            int left;
            while ((m = curl_multi_info_read(s->multi, &left))) {
                if (m->msg != CURLMSG_DONE || m->easy_handle != s->easy)
                    continue;
                srl_http_rc_t rc = srl_bridge_client_finish(s->easy, m->data.result, &s->resp);
                push_end_transfer(s);
                if (rc == SRL_HTTP_OK) {
                    s->backoff_ms = 0;
                    push_finish_head(s, true, false, NULL);
                } else if (rc == SRL_HTTP_FATAL) {
                    srl_log(SRL_LOG_ERROR, "producer", "bridge refused a batch",
                            "kind=%s records=%zu reason=%s", srl_kind_name(s->head->kind),
                            s->head->nrecords, srl_log_q(s->resp.error));
                    push_finish_head(s, false, true, s->resp.error);
                } else {
                    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
                    if (s->backoff_ms > BACKOFF_MAX_MS)
                        s->backoff_ms = BACKOFF_MAX_MS;
                    s->retry_at_ms = srl_clock_mono_ms() + s->backoff_ms;
                    srl_log(SRL_LOG_WARN, "producer", "bridge push failed, retrying",
                            "kind=%s records=%zu retry_ms=%" PRId64 " reason=%s",
                            srl_kind_name(s->head->kind), s->head->nrecords, s->backoff_ms,
                            srl_log_q(s->resp.error));
                }
                break;
            }
        }
        now = srl_clock_mono_ms();
        if (now >= deadline)
            return;
        int wait = (int)(deadline - now);
        if (s->easy) {
            curl_multi_poll(s->multi, NULL, 0, wait > 100 ? 100 : wait, NULL);
        } else if (s->head) {
            int64_t until = s->retry_at_ms < deadline ? s->retry_at_ms : deadline;
            if (until > now)
                nanosleep(&(struct timespec){0, (long)((until - now > 100 ? 100 : until - now) *
                                                       1000000)},
                          NULL);
        } else {
            return; /* nothing to do */
        }
    }
}

static int sink_wait_fd(srl_sink_t *sink)
{
    (void)sink;
    return -1; /* the caller polls with a timeout */
}

static size_t sink_in_flight(srl_sink_t *sink)
{
    return ((http_sink_t *)sink)->in_flight;
}

static void sink_close(srl_sink_t *sink)
{
    http_sink_t *s = (http_sink_t *)sink;
    if (!s)
        return;
    if (s->easy)
        push_end_transfer(s);
    while (s->head) {
        push_req_t *r = s->head;
        s->head = r->next;
        push_req_free(r);
    }
    srl_http_resp_clear(&s->resp);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    srl_bridge_client_free(s->client);
    memset(s->key_header, 0, sizeof(s->key_header));
    free(s);
}

/* Empty = every partition's high watermark is 0, from GET state. */
static bool sink_topic_empty(srl_sink_t *sink, srl_kind_t kind, bool *empty, char *errstr,
                             size_t errstr_size)
{
    http_sink_t *s = (http_sink_t *)sink;
    srl_http_resp_t resp = {0};
    if (srl_bridge_client_get(s->client, "state", "application/json", 0, &resp) != SRL_HTTP_OK) {
        snprintf(errstr, errstr_size, "GET state: %s", resp.error);
        srl_http_resp_clear(&resp);
        return false;
    }
    json_t *root = json_loadb(resp.body, resp.len, 0, NULL);
    srl_http_resp_clear(&resp);
    bool found = false;
    size_t i, j;
    json_t *t, *p;
    *empty = true;
    json_array_foreach(json_object_get(root, "topics"), i, t) {
        const char *k = json_string_value(json_object_get(t, "kind"));
        if (!k || strcmp(k, srl_kind_name(kind)) != 0)
            continue;
        found = true;
        json_array_foreach(json_object_get(t, "partitions"), j, p) {
            if (json_integer_value(json_object_get(p, "high_watermark")) > 0)
                *empty = false;
        }
    }
    json_decref(root);
    if (!found)
        snprintf(errstr, errstr_size, "the bridge does not serve %s", srl_kind_name(kind));
    return found;
}

static const srl_sink_ops_t sink_ops = {
    .name = "http",
    .publish = sink_publish,
    .poll = sink_poll,
    .wait_fd = sink_wait_fd,
    .in_flight = sink_in_flight,
    .close = sink_close,
    /* The bridge publishes its own writer schemas and refuses values of
     * fingerprints it does not know; reading back the topics' keys and
     * origins needs Kafka. */
    .publish_schema = NULL,
    .topic_empty = sink_topic_empty,
    .check_origin = NULL,
    .scan_keys = NULL,
};

srl_sink_t *srl_sink_http_new(const srl_config_t *cfg, char *errstr, size_t errstr_size)
{
    http_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->base.ops = &sink_ops;
    s->client = srl_bridge_client_new(cfg, errstr, errstr_size);
    s->multi = curl_multi_init();
    s->timeout_ms = (int)srl_config_int(cfg, SRL_KEY_BRIDGE_TIMEOUT_MS);
    snprintf(s->key_header, sizeof(s->key_header), "X-ApiKey: %s",
             srl_config_str(cfg, SRL_KEY_BRIDGE_API_KEY));
    if (!s->client || !s->multi) {
        if (s->client)
            snprintf(errstr, errstr_size, "out of memory");
        sink_close(&s->base);
        return NULL;
    }
    return &s->base;
}
