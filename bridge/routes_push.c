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

#include <jansson.h>

#include "auth.h"
#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "push_decode.h"
#include "routes.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

typedef struct push_job {
    srl_req_t *req;
    pthread_mutex_t lock;
    size_t pending;
    bool suspended;
    size_t failed;
    rd_kafka_resp_err_t first_err;
    srl_push_batch_t batch;
} push_job_t;

static void push_job_free(srl_req_t *req)
{
    push_job_t *j = req->route_state;
    if (!j)
        return;
    srl_push_batch_free(&j->batch);
    pthread_mutex_destroy(&j->lock);
    free(j);
    req->route_state = NULL;
}

void srl__push_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    push_job_t *j = m->_private;
    srl_req_t *resume = NULL;
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
                             j->failed, j->batch.count, rd_kafka_err2str(j->first_err));
        else {
            srl_metrics_records_accepted(req->kind, j->batch.count);
            json_t *o = json_pack("{sIss}", "accepted", (json_int_t)j->batch.count, "topic",
                                  req->b->topics[req->kind]);
            req->ready_body = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            req->ready_len = req->ready_body ? strlen(req->ready_body) : 0;
            req->ready_type = "application/json";
            req->ready_status = req->ready_body ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        resume = req;
    }
    pthread_mutex_unlock(&j->lock);
    /* Resume only after the unlock, and touch neither j nor req after it:
     * once MHD_resume_connection is called, an MHD worker may queue the
     * response, complete the request and free req and j (on_completed ->
     * push_job_free) at once. Unlocking j->lock after the resume wrote into
     * freed memory (heap corruption: crashes in malloc on any thread).
     * Resuming outside the lock is safe: pending reached 0 under it, so no
     * other report touches j, and a suspended connection is never closed
     * or timed out by libmicrohttpd, so req lives until this resume. */
    if (resume)
        srl__resume(resume);
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
        rd_kafka_resp_err_t e = rd_kafka_producev(b->rk, RD_KAFKA_V_TOPIC(b->schemas_topic),
                                                  RD_KAFKA_V_KEY(key, 16),
                                                  RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
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
    const char *ctype = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    bool binary = ctype &&
                  strncmp(ctype, SRL_FRAMING_MEDIA_TYPE, strlen(SRL_FRAMING_MEDIA_TYPE)) == 0;
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

    srl_push_ctx_t ctx = {.kind = req->kind,
                          .reg = b->reg,
                          .reg_lock = &b->reg_lock,
                          .max_records = b->max_batch_records};
    srl_push_error_t perror;
    if (!srl_push_decode(&ctx, binary, req->body.data, req->body.len, &j->batch, &perror)) {
        srl_metrics_push_rejected();
        srl_log(SRL_LOG_INFO, "bridge", "push rejected", "key=%s kind=%s status=%u reason=%s",
                srl_log_q(req->key ? req->key->name : "-"), srl_kind_name(req->kind), perror.status,
                srl_log_q(perror.msg));
        json_t *extra = perror.index >= 0 ? json_pack("{sI}", "record", (json_int_t)perror.index)
                                          : NULL;
        return srl__respond_error(req, perror.status, extra, "%s", perror.msg);
    }
    if (j->batch.count == 0) {
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

    /* value.format = confluent: each value re-framed (00 + the id derived
     * from its fingerprint, the same body) into frame; librdkafka copies. */
    uint8_t *frame = NULL;
    if (b->confluent) {
        size_t most = 0;
        for (size_t i = 0; i < j->batch.count; i++)
            if (j->batch.recs[i].value && j->batch.recs[i].value_len > most)
                most = j->batch.recs[i].value_len;
        if (!(frame = malloc(most ? most : 1)))
            return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
    }
    /* Produce all; delivery reports (main thread) count down under j->lock,
     * held here until the request is suspended so the last report cannot
     * resume a request that is not suspended yet (the report resumes after
     * releasing the lock; see srl__push_delivery_report). */
    pthread_mutex_lock(&j->lock);
    size_t produced = 0;
    rd_kafka_resp_err_t perr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < j->batch.count; i++) {
        const srl_push_rec_t *r = &j->batch.recs[i];
        const void *value = r->value;
        size_t value_len = r->value ? r->value_len : 0;
        srl_value_ref_t ref;
        char why[256];
        /* push_decode decoded every value with our registry: its header is
         * one of the two framings and its schema known. */
        if (frame && r->value && srl_codec_peek(r->value, r->value_len, &ref, why, sizeof(why)) &&
            srl_codec_to_confluent(r->value, r->value_len, srl_schema_id_derive(ref.fingerprint),
                                   frame, &value_len, why, sizeof(why)))
            value = frame;
        char vbuf[24];
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
        int vlen = snprintf(vbuf, sizeof(vbuf), "%" PRId64, r->version);
        rd_kafka_header_add(hdrs, SRL_HDR_VERSION, -1, vbuf, vlen);
        rd_kafka_header_add(hdrs, SRL_HDR_ORIGIN, -1, r->origin, -1);
        perr = rd_kafka_producev(b->rk, RD_KAFKA_V_TOPIC(b->topics[req->kind]),
                                 RD_KAFKA_V_KEY(r->key, r->key_len),
                                 RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                 RD_KAFKA_V_OPAQUE(j), RD_KAFKA_V_END);
        if (perr) {
            rd_kafka_headers_destroy(hdrs);
            break;
        }
        produced++;
    }
    free(frame);
    j->pending += produced;
    if (perr) {
        /* Some records may already be on their way; the client retries the
         * whole batch (repeats are no-ops on the spokes). */
        if (!j->failed)
            j->first_err = perr;
        j->failed += j->batch.count - produced;
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
