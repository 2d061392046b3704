/*
 * routes_push.c - POST /api/replication/v1/topics/{kind}/records
 *
 * A push instance that cannot reach Kafka sends its change records here,
 * as the binary framing (Content-Type application/vnd.sysrepl.records,
 * values in Avro single-object encoding) or as JSON (application/json):
 *   [{"key": "...", "version": 12, "origin": "hub-1", "value": {...} | null}]
 *
 * All or nothing before Kafka: every record is decoded and checked first -
 * a known writer schema, the value's kind is the path's kind, the key is
 * the entity's key, version > 0 and equal to the value's, origin present
 * and equal to the value's, the entity's own checks (srl_entity_validate).
 * One bad record rejects the batch (400 when the body cannot be parsed,
 * 422 when a record is invalid; the body names the record's index) and
 * nothing of it is produced.
 *
 * Then every record is produced (acks=all, idempotent, murmur2_random: the
 * partition the hub's own producer would choose) with the headers
 * sysrepl.version and sysrepl.origin, and the request is suspended until
 * the broker acknowledged all of them: 200 {"accepted": n}. A record the
 * broker refused after librdkafka's retries fails the request with 503;
 * records of it may have been written - the client sends the batch again,
 * and the spokes treat the repeats as no-ops (same version).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bridge.h"
#include "sysrepl/json.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"
#include "sysrepl/log.h"

/* A record ready to produce: key and value point into the request body
 * (binary) or into owned buffers (JSON). */
typedef struct push_rec {
    const char *key;
    size_t key_len;
    const uint8_t *value; /* NULL: tombstone */
    size_t value_len;
    int64_t version;
    const char *origin;
    uint8_t *owned_value;
    char *owned_key;
    char *owned_origin;
} push_rec_t;

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct push_job {
    srl_req_t *req;
    pthread_mutex_t lock;
    size_t pending;
    bool suspended;
    size_t failed;
    rd_kafka_resp_err_t first_err;
    push_rec_t *recs;
    size_t count;
    srl_framing_batch_t batch;
} push_job_t;

static void push_job_free(srl_req_t *req)
{
    push_job_t *j = req->route_state;
    if (!j)
        return;
    for (size_t i = 0; i < j->count; i++) {
        free(j->recs[i].owned_value);
        free(j->recs[i].owned_key);
        free(j->recs[i].owned_origin);
    }
    free(j->recs);
    srl_framing_batch_free(&j->batch);
    pthread_mutex_destroy(&j->lock);
    free(j);
    req->route_state = NULL;
}

/* Checks shared by both body forms, with the entity decoded. */
static bool check_entity(srl_req_t *req, const srl_entity_t *e, const push_rec_t *r, char *err,
                         size_t err_size)
{
    char keybuf[SRL_FRAMING_KEY_MAX + 1];
    if (e->kind != req->kind) {
        snprintf(err, err_size, "value is a %s record, not %s", srl_kind_name(e->kind),
                 srl_kind_name(req->kind));
        return false;
    }
    int klen = srl_key_build(e, keybuf, sizeof(keybuf));
    if (klen < 0) {
        snprintf(err, err_size, "value has no complete key");
        return false;
    }
    if ((size_t)klen != r->key_len || memcmp(keybuf, r->key, r->key_len) != 0) {
        snprintf(err, err_size, "key \"%.*s\" is not the value's key \"%.200s\"",
                 (int)(r->key_len > 200 ? 200 : r->key_len), r->key, keybuf);
        return false;
    }
    const srl_meta_t *meta = e->kind == SRL_KIND_ASSESSMENT_TYPE ? &e->u.type.meta
                             : e->kind == SRL_KIND_ASSESSMENT    ? &e->u.assessment.meta
                                                                 : &e->u.policy.meta;
    if (meta->version != r->version) {
        snprintf(err, err_size, "version %" PRId64 " differs from the value's version %" PRId64,
                 r->version, meta->version);
        return false;
    }
    if (!meta->origin || strcmp(meta->origin, r->origin) != 0) {
        snprintf(err, err_size, "origin \"%s\" differs from the value's origin \"%s\"", r->origin,
                 meta->origin ? meta->origin : "");
        return false;
    }
    return srl_entity_validate(e, err, err_size);
}

static bool check_common(const push_rec_t *r, char *err, size_t err_size)
{
    if (r->key_len == 0) {
        snprintf(err, err_size, "key is empty");
        return false;
    }
    if (r->version <= 0) {
        snprintf(err, err_size, "version must be > 0, got %" PRId64, r->version);
        return false;
    }
    if (!r->origin || !*r->origin) {
        snprintf(err, err_size, "origin is missing");
        return false;
    }
    for (size_t i = 0; i < r->key_len; i++)
        if ((unsigned char)r->key[i] < 0x20) {
            snprintf(err, err_size, "key contains a control character");
            return false;
        }
    return true;
}

/* Decode and check the binary framing. On failure a response is queued. */
static bool parse_binary(srl_req_t *req, push_job_t *j, enum MHD_Result *rc)
{
    srl_bridge_t *b = req->b;
    char err[512];
    long bad = -1;
    if (!srl_framing_decode(req->body.data, req->body.len, req->kind, 0, &j->batch, &bad, err,
                            sizeof(err))) {
        json_t *extra = bad >= 0 ? json_pack("{sI}", "record", (json_int_t)bad) : NULL;
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, extra, "malformed batch: %s", err);
        return false;
    }
    if (j->batch.count > b->max_batch_records) {
        *rc = srl__respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "batch of %zu records exceeds bridge.max_batch_records = %zu",
                                 j->batch.count, b->max_batch_records);
        return false;
    }
    j->recs = calloc(j->batch.count ? j->batch.count : 1, sizeof(*j->recs));
    if (!j->recs) {
        *rc = srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < j->batch.count; i++) {
        const srl_record_t *in = &j->batch.records[i];
        push_rec_t *r = &j->recs[i];
        r->key = in->key;
        r->key_len = in->key_len;
        r->value = in->value;
        r->value_len = in->value_len;
        r->version = in->version;
        r->origin = in->origin;
        j->count = i + 1;
        bool ok = check_common(r, err, sizeof(err));
        if (ok && r->value) {
            srl_entity_t e;
            pthread_mutex_lock(&b->reg_lock);
            ok = srl_codec_decode(b->reg, r->value, r->value_len, &e, err, sizeof(err));
            pthread_mutex_unlock(&b->reg_lock);
            if (ok) {
                ok = check_entity(req, &e, r, err, sizeof(err));
                srl_entity_clear(&e);
            }
        }
        if (!ok) {
            json_t *extra = json_pack("{sI}", "record", (json_int_t)i);
            *rc = srl__respond_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, extra,
                                     "record %zu: %s; nothing of the batch was written", i, err);
            return false;
        }
    }
    return true;
}

static bool parse_json(srl_req_t *req, push_job_t *j, enum MHD_Result *rc)
{
    srl_bridge_t *b = req->b;
    char err[512];
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body.data, req->body.len,
                              JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    if (!root) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                                 jerr.text);
        return false;
    }
    if (!json_is_array(root)) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "the body must be a JSON array of records");
        goto cleanup;
    }
    size_t n = json_array_size(root);
    if (n > b->max_batch_records) {
        *rc = srl__respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "batch of %zu records exceeds bridge.max_batch_records = %zu", n,
                                 b->max_batch_records);
        goto cleanup;
    }
    j->recs = calloc(n ? n : 1, sizeof(*j->recs));
    if (!j->recs) {
        *rc = srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(root, i);
        push_rec_t *r = &j->recs[i];
        j->count = i + 1;
        unsigned status = MHD_HTTP_UNPROCESSABLE_CONTENT;
        json_t *key = json_object_get(o, "key"), *ver = json_object_get(o, "version"),
               *origin = json_object_get(o, "origin"), *value = json_object_get(o, "value");
        srl_entity_t e;
        bool have_entity = false;
        if (!json_is_object(o)) {
            snprintf(err, sizeof(err), "not a JSON object");
            goto bad;
        }
        const char *unknown = NULL;
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            if (strcmp(k, "key") && strcmp(k, "version") && strcmp(k, "origin") &&
                strcmp(k, "value"))
                unknown = k;
        }
        if (unknown) {
            snprintf(err, sizeof(err), "unknown field \"%.60s\" (fields: key, version, origin, "
                     "value)", unknown);
            goto bad;
        }
        if (!json_is_string(key) || !json_is_integer(ver) || !json_is_string(origin) || !value ||
            !(json_is_object(value) || json_is_null(value))) {
            snprintf(err, sizeof(err),
                     "needs key (string), version (integer), origin (string) and value "
                     "(object or null)");
            goto bad;
        }
        r->owned_key = strndup(json_string_value(key), json_string_length(key));
        r->owned_origin = strdup(json_string_value(origin));
        if (!r->owned_key || !r->owned_origin) {
            snprintf(err, sizeof(err), "out of memory");
            goto bad;
        }
        r->key = r->owned_key;
        r->key_len = json_string_length(key);
        r->origin = r->owned_origin;
        r->version = json_integer_value(ver);
        if (r->key_len > SRL_FRAMING_KEY_MAX) {
            snprintf(err, sizeof(err), "key longer than %u bytes", SRL_FRAMING_KEY_MAX);
            goto bad;
        }
        if (strlen(r->origin) > SRL_FRAMING_ORIGIN_MAX) {
            snprintf(err, sizeof(err), "origin longer than %u bytes", SRL_FRAMING_ORIGIN_MAX);
            goto bad;
        }
        if (!check_common(r, err, sizeof(err)))
            goto bad;
        if (json_is_null(value))
            continue; /* tombstone */
        /* The record's version and origin fill the value's meta when the
         * value leaves them out; when it has them they must agree. */
        json_t *val = json_deep_copy(value);
        if (!json_object_get(val, "version"))
            json_object_set_new(val, "version", json_integer(r->version));
        if (!json_object_get(val, "origin"))
            json_object_set_new(val, "origin", json_string(r->origin));
        if (!json_object_get(val, "changed_at"))
            json_object_set_new(val, "changed_at", json_integer(now_wall_ms()));
        have_entity = srl_json_to_entity(val, req->kind, &e, err, sizeof(err));
        json_decref(val);
        if (!have_entity) {
            char tmp[sizeof(err)];
            memcpy(tmp, err, sizeof(tmp));
            snprintf(err, sizeof(err), "value: %.500s", tmp);
            goto bad;
        }
        if (!check_entity(req, &e, r, err, sizeof(err)))
            goto bad;
        pthread_mutex_lock(&b->reg_lock);
        bool enc = srl_codec_encode(b->reg, &e, &r->owned_value, &r->value_len, err, sizeof(err));
        pthread_mutex_unlock(&b->reg_lock);
        if (!enc)
            goto bad;
        r->value = r->owned_value;
        srl_entity_clear(&e);
        continue;
    bad:
        if (have_entity)
            srl_entity_clear(&e);
        *rc = srl__respond_error(req, status, json_pack("{sI}", "record", (json_int_t)i),
                                 "record %zu: %s; nothing of the batch was written", i, err);
        goto cleanup;
    }
    ok = true;
cleanup:
    json_decref(root);
    return ok;
}

void srl__push_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    push_job_t *j = m->_private;
    if (!j)
        return; /* a schema publication (no job) */
    pthread_mutex_lock(&j->lock);
    if (m->err) {
        if (!j->failed)
            j->first_err = m->err;
        j->failed++;
        srl_metrics_kafka_error();
    }
    if (--j->pending == 0 && j->suspended) {
        srl_req_t *req = j->req;
        if (j->failed)
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the broker did not accept %zu of %zu records: %s; send the batch "
                             "again",
                             j->failed, j->count, rd_kafka_err2str(j->first_err));
        else {
            srl_metrics_records_accepted(req->kind, j->count);
            json_t *o = json_pack("{sIss}", "accepted", (json_int_t)j->count, "topic",
                                  req->b->topics[req->kind]);
            req->ready_body = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            req->ready_len = req->ready_body ? strlen(req->ready_body) : 0;
            req->ready_type = "application/json";
            req->ready_status = req->ready_body ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        srl__resume(req);
    }
    pthread_mutex_unlock(&j->lock);
}

bool srl__bridge_publish_schemas(srl_bridge_t *b, char *errstr, size_t errstr_size)
{
    pthread_mutex_lock(&b->reg_lock);
    bool done = b->schemas_published;
    pthread_mutex_unlock(&b->reg_lock);
    if (done)
        return true;
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char key[17];
        pthread_mutex_lock(&b->reg_lock);
        uint64_t fp = srl_registry_writer_fingerprint(b->reg, (srl_kind_t)k);
        const char *json = srl_registry_writer_json(b->reg, (srl_kind_t)k);
        pthread_mutex_unlock(&b->reg_lock);
        snprintf(key, sizeof(key), "%016" PRIx64, fp);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            b->rk, RD_KAFKA_V_TOPIC(b->schemas_topic), RD_KAFKA_V_KEY(key, 16),
            RD_KAFKA_V_VALUE((void *)json, strlen(json)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e) {
            snprintf(errstr, errstr_size, "publishing schema %s to %s: %s", key, b->schemas_topic,
                     rd_kafka_err2str(e));
            return false;
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(b->rk, 30000);
    if (e) {
        snprintf(errstr, errstr_size, "publishing our writer schemas to %s: %s", b->schemas_topic,
                 rd_kafka_err2str(e));
        return false;
    }
    pthread_mutex_lock(&b->reg_lock);
    b->schemas_published = true;
    pthread_mutex_unlock(&b->reg_lock);
    return true;
}

enum MHD_Result srl__route_push(srl_req_t *req)
{
    srl_bridge_t *b = req->b;
    enum MHD_Result rc = MHD_YES;
    const char *ctype =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool binary = ctype && strncmp(ctype, SRL_FRAMING_MEDIA_TYPE, strlen(SRL_FRAMING_MEDIA_TYPE)) == 0;
    bool json = ctype && strncmp(ctype, "application/json", 16) == 0;
    if (!binary && !json)
        return srl__respond_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                                  "Content-Type must be %s or application/json, got \"%.60s\"",
                                  SRL_FRAMING_MEDIA_TYPE, ctype ? ctype : "");

    push_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
    pthread_mutex_init(&j->lock, NULL);
    j->req = req;
    req->route_state = j;
    req->route_free = push_job_free;

    if (!(binary ? parse_binary(req, j, &rc) : parse_json(req, j, &rc))) {
        srl_metrics_push_rejected();
        srl_log(SRL_LOG_INFO, "bridge", "push rejected", "key=%s kind=%s status=%u",
                srl_log_q(req->key ? req->key->name : "-"), srl_kind_name(req->kind),
                req->status);
        return rc;
    }
    if (j->count == 0) {
        json_t *o = json_pack("{sIss}", "accepted", (json_int_t)0, "topic", b->topics[req->kind]);
        char *body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return srl__respond(req, MHD_HTTP_OK, "application/json", body, body ? strlen(body) : 0);
    }
    pthread_mutex_lock(&b->reg_lock);
    bool published = b->schemas_published;
    pthread_mutex_unlock(&b->reg_lock);
    if (!published)
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                  "the bridge has not published its writer schemas to %s yet "
                                  "(broker not reachable?)",
                                  b->schemas_topic);

    /* Produce all; delivery reports (main thread) count down under j->lock,
     * held here until the request is suspended so the last report cannot
     * resume a request that is not suspended yet. */
    pthread_mutex_lock(&j->lock);
    size_t produced = 0;
    rd_kafka_resp_err_t perr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < j->count; i++) {
        push_rec_t *r = &j->recs[i];
        char vbuf[24];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        int vlen = snprintf(vbuf, sizeof(vbuf), "%" PRId64, r->version);
        rd_kafka_header_add(hdrs, SRL_HDR_VERSION, -1, vbuf, vlen);
        rd_kafka_header_add(hdrs, SRL_HDR_ORIGIN, -1, r->origin, -1);
        perr = rd_kafka_producev(b->rk, RD_KAFKA_V_TOPIC(b->topics[req->kind]),
                                 RD_KAFKA_V_KEY(r->key, r->key_len),
                                 RD_KAFKA_V_VALUE((void *)r->value, r->value ? r->value_len : 0),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
        if (perr) {
            rd_kafka_headers_destroy(hdrs);
            break;
        }
        produced++;
    }
    j->pending += produced;
    if (perr) {
        /* Some records may already be on their way; the client retries the
         * whole batch (repeats are no-ops on the spokes). */
        if (!j->failed)
            j->first_err = perr;
        j->failed += j->count - produced;
    }
    if (j->pending == 0) {
        pthread_mutex_unlock(&j->lock);
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                  "the broker queue refused the batch: %s; send it again",
                                  rd_kafka_err2str(j->first_err));
    }
    j->suspended = true;
    srl__suspend(req, SRL_WAIT_ACKS);
    pthread_mutex_unlock(&j->lock);
    return MHD_YES;
}
