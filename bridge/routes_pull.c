/*
 * routes_pull.c - GET /api/replication/v1/topics/{kind}/partitions/{p}/records
 *                     ?offset=N[&max=M][&wait_ms=T]
 *
 * Records of one partition from offset N on, at most M (default 1000,
 * capped at bridge.max_batch_records). With wait_ms > 0 and nothing at N
 * yet, the request waits (suspended, no thread) up to T ms, capped at
 * bridge.long_poll_max_ms, for the first record. The offsets are the
 * client's: the bridge keeps no state per client. Every 200 answer carries
 *   X-Sysrepl-Next-Offset     the offset to ask for next (past compacted gaps)
 *   X-Sysrepl-High-Watermark  the partition's high watermark as last seen
 *   X-Sysrepl-Record-Count    records in the body
 * Body: the binary framing (framing.h) with the values exactly as on the
 * topic, or with Accept: application/json a JSON object for people and
 * scripts (values decoded; value_base64 when a value does not decode) -
 * written by pull_encode.c, whether the tail or a reader serves it.
 *
 * kind "schemas" reads <prefix>.schemas (key: fingerprint hex, value: the
 * schema JSON), always from Kafka through the readers and without long
 * polling: it is small and read once at a spoke's start.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge.h"
#include "http.h"
#include "readers.h"
#include "routes.h"
#include "tail.h"
#include "sysrepl/log.h"

#define DEFAULT_MAX 1000

typedef struct query_check {
    char bad[64];
} query_check_t;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    query_check_t *q = cls;
    (void)kind;
    (void)value;
    if (strcmp(key, "offset") && strcmp(key, "max") && strcmp(key, "wait_ms")) {
        snprintf(q->bad, sizeof(q->bad), "%.60s", key);
        return MHD_NO;
    }
    return MHD_YES;
}

static bool parse_arg(srl_req_t *req, const char *name, int64_t lo, int64_t hi, int64_t *out,
                      bool required, char *err, size_t err_size)
{
    const char *s = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!s) {
        if (required)
            snprintf(err, err_size, "query parameter %s is required", name);
        return !required;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi || s[0] == '+' || s[0] == ' ') {
        snprintf(err, err_size,
                 "query parameter %s must be an integer in %" PRId64 "..%" PRId64 ", got \"%.40s\"",
                 name, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

/* Parse ?offset, max, wait_ms and Accept; false with a 400 queued. */
static bool parse_request(srl_req_t *req, enum MHD_Result *rc)
{
    srl_bridge_t *b = req->b;
    char err[256];
    query_check_t q = {{0}};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_arg, &q);
    if (q.bad[0]) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "unknown query parameter \"%s\" (known: offset, max, wait_ms)",
                                 q.bad);
        return false;
    }
    int64_t offset = 0, max = DEFAULT_MAX, wait_ms = 0;
    if (!parse_arg(req, "offset", 0, INT64_MAX - 1, &offset, true, err, sizeof(err)) ||
        !parse_arg(req, "max", 1, 1000000000, &max, false, err, sizeof(err)) ||
        !parse_arg(req, "wait_ms", 0, 24LL * 3600 * 1000, &wait_ms, false, err, sizeof(err))) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
        return false;
    }
    req->offset = offset;
    req->max = (size_t)max > b->max_batch_records ? b->max_batch_records : (size_t)max;
    req->wait_ms = wait_ms > b->long_poll_max_ms ? b->long_poll_max_ms : wait_ms;
    const char *accept = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Accept");
    req->want_json = accept && strstr(accept, "application/json") &&
                     !strstr(accept, SRL_FRAMING_MEDIA_TYPE);
    return true;
}

enum MHD_Result srl__route_pull(srl_req_t *req)
{
    srl_bridge_t *b = req->b;
    enum MHD_Result rc = MHD_YES;
    bool woken = req->resumed && req->wait == SRL_WAIT_DATA;
    if (!woken && !parse_request(req, &rc))
        return rc;
    req->resumed = false;
    req->wait = SRL_WAIT_NONE;
    if (req->kind == SRL_BRIDGE_SCHEMAS)
        goto below;
    if (++req->attempts > 4)
        /* The window moved past us more than once between wake and serve:
         * the readers serve it. */
        goto below;
    int64_t high = -1;
    srl_tail_rc_t trc = srl_bridge_tail_pull(b->tail, req, !woken, &high);
    if (srl_log_enabled(SRL_LOG_DEBUG))
        srl_log(SRL_LOG_DEBUG, "bridge", "pull",
                "kind=%s partition=%d offset=%" PRId64 " wait_ms=%" PRId64 " woken=%d rc=%d",
                req->kind == SRL_BRIDGE_SCHEMAS ? "schemas" : srl_kind_name(req->kind),
                (int)req->partition, req->offset, req->wait_ms, (int)woken, (int)trc);
    switch (trc) {
    case SRL_TAIL_SERVED:
        return srl__respond_ready(req);
    case SRL_TAIL_WAITING:
        return MHD_YES;
    case SRL_TAIL_BELOW:
        goto below;
    case SRL_TAIL_NOT_READY:
        if (req->partition >= 0 && srl_bridge_tail_ready(b->tail) &&
            req->partition >= srl_bridge_tail_partitions(b->tail, req->kind))
            return srl__respond_error(req, MHD_HTTP_NOT_FOUND, NULL,
                                      "topic %s has no partition %d (it has %d)",
                                      b->topics[req->kind], (int)req->partition,
                                      srl_bridge_tail_partitions(b->tail, req->kind));
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                  "the bridge is not reading topic %s yet (broker not reachable?)",
                                  b->topics[req->kind]);
    case SRL_TAIL_BEYOND: {
        json_t *extra = json_pack("{sI}", "high_watermark", (json_int_t)high);
        return srl__respond_error(req, MHD_HTTP_RANGE_NOT_SATISFIABLE, extra,
                                  "offset %" PRId64 " is beyond the high watermark %" PRId64
                                  " of %s partition %d (was the topic recreated? rebuild from 0)",
                                  req->offset, high, b->topics[req->kind], (int)req->partition);
    }
    }
below:
    srl_bridge_readers_pull(b->readers, req);
    return MHD_YES;
}
