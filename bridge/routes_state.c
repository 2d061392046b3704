/*
 * routes_state.c - what a spoke asks before and beside pulling:
 *   GET .../state              per replicated topic: partitions with low and
 *                              high watermarks, and delete.retention.ms (so
 *                              an http spoke applies the same tombstone-
 *                              horizon rule as a Kafka spoke)
 *   GET .../schemas/{fp-hex}   the writer schema JSON of a fingerprint
 *   GET /health                no key needed: broker reachable, tailing, our
 *                              writer schemas published (pushes need them),
 *                              topics, version; 200 when all is well, else 503
 *   GET /metrics               every counter and gauge in Prometheus text
 *                              (metrics.c)
 * /state and /health ask the broker, so they run on a reader thread
 * (readers.c), never on the HTTP threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "readers.h"
#include "routes.h"
#include "tail.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

#define BROKER_TIMEOUT_MS 5000

static void ready_json(srl_req_t *req, unsigned status, json_t *o)
{
    free(req->ready_body);
    req->ready_body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!req->ready_body) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    req->ready_len = strlen(req->ready_body);
    req->ready_type = "application/json";
    req->ready_status = status;
}

static void state_job(srl_bridge_t *b, rd_kafka_t *rk, srl_req_t *req)
{
    char err[512], retention[32];
    json_t *topics = json_array();
    for (int k = 0; k <= SRL_KIND_COUNT; k++) {
        if (k < SRL_KIND_COUNT && !(b->kinds & (1u << k)))
            continue;
        const char *topic = b->topics[k];
        int n = srl_kafka_partition_count(rk, topic, BROKER_TIMEOUT_MS, err, sizeof(err));
        if (n <= 0) {
            json_decref(topics);
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
            return;
        }
        if (!srl_kafka_topic_config(rk, topic, "delete.retention.ms", retention, sizeof(retention),
                                    BROKER_TIMEOUT_MS, err, sizeof(err))) {
            json_decref(topics);
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
            return;
        }
        json_t *parts = json_array();
        for (int p = 0; p < n; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                                     BROKER_TIMEOUT_MS);
            if (e) {
                json_decref(parts);
                json_decref(topics);
                srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "watermarks of %s partition %d: %s", topic, p,
                                 rd_kafka_err2str(e));
                return;
            }
            json_array_append_new(parts,
                                  json_pack("{sisIsI}", "partition", p, "low_watermark",
                                            (json_int_t)lo, "high_watermark", (json_int_t)hi));
        }
        json_array_append_new(
            topics, json_pack("{sssssisIso}", "kind",
                              k == SRL_KIND_COUNT ? "schemas" : srl_kind_name((srl_kind_t)k),
                              "topic", topic, "partition_count", n, "delete_retention_ms",
                              (json_int_t)strtoll(retention, NULL, 10), "partitions", parts));
    }
    ready_json(req, MHD_HTTP_OK,
               json_pack("{ssssso}", "prefix", b->prefix, "schemas_topic", b->schemas_topic,
                         "topics", topics));
}

enum MHD_Result srl__route_state(srl_req_t *req)
{
    srl_bridge_readers_call(req->b->readers, req, state_job);
    return MHD_YES;
}

enum MHD_Result srl__route_schemas(srl_req_t *req)
{
    srl_bridge_t *b = req->b;
    uint64_t fp = strtoull(req->fingerprint, NULL, 16);
    pthread_mutex_lock(&b->reg_lock);
    const char *json = srl_registry_schema_json(b->reg, fp);
    char *copy = json ? strdup(json) : NULL;
    pthread_mutex_unlock(&b->reg_lock);
    if (!json)
        return srl__respond_error(req, MHD_HTTP_NOT_FOUND, NULL,
                                  "unknown schema fingerprint %s (not ours and not on %s)",
                                  req->fingerprint, b->schemas_topic);
    if (!copy)
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
    return srl__respond(req, MHD_HTTP_OK, "application/json", copy, strlen(copy));
}

static void health_job(srl_bridge_t *b, rd_kafka_t *rk, srl_req_t *req)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, 2000);
    bool broker = e == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
    json_t *topics = json_array();
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        if (b->kinds & (1u << k))
            json_array_append_new(topics, json_string(b->topics[k]));
    bool tail = srl_bridge_tail_ready(b->tail);
    pthread_mutex_lock(&b->reg_lock);
    bool schemas = b->schemas_published;
    pthread_mutex_unlock(&b->reg_lock);
    bool ok = broker && tail && schemas;
    json_t *o = json_pack("{sssbsbsbsoss}", "status", ok ? "ok" : "degraded", "broker_reachable",
                          broker, "tailing", tail, "schemas_published", schemas, "topics", topics,
                          "version", SRL_VERSION);
    if (!broker)
        json_object_set_new(o, "broker_error", json_string(rd_kafka_err2str(e)));
    if (md)
        rd_kafka_metadata_destroy(md);
    ready_json(req, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
}

enum MHD_Result srl__route_health(srl_req_t *req)
{
    srl_bridge_readers_call(req->b->readers, req, health_job);
    return MHD_YES;
}

enum MHD_Result srl__route_metrics(srl_req_t *req)
{
    size_t len = 0;
    char *body = srl_metrics_render(&len);
    if (!body)
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "out of memory");
    return srl__respond(req, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len);
}
