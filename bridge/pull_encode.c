/*
 * pull_encode.c - records as the body of a pull answer: the binary framing
 * (framing.h) with keys and values exactly as on the topic, or, when the
 * client asked for application/json, one JSON object for people and scripts
 * (values decoded with the registry; value_base64 and value_error when a
 * value does not decode). The tail (records from its window) and the
 * readers (records read from Kafka) both answer through it, so the two
 * paths cannot disagree on the bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "pull_encode.h"
#include "sysrepl/json.h"
#include "sysrepl/log.h"

static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static json_t *record_json(srl_bridge_t *b, const srl_record_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "offset", json_integer(r->offset));
    json_t *key = json_stringn(r->key, r->key_len);
    if (key) {
        json_object_set_new(o, "key", key);
    } else { /* not UTF-8 */
        char *k = base64((const uint8_t *)r->key, r->key_len);
        json_object_set_new(o, "key_base64", json_string(k ? k : ""));
        free(k);
    }
    json_object_set_new(o, "version", json_integer(r->version));
    json_object_set_new(o, "origin", r->origin ? json_string(r->origin) : json_null());
    char ts[40];
    if (r->timestamp_ms > 0 && srl_json_format_time(r->timestamp_ms, ts, sizeof(ts)))
        json_object_set_new(o, "timestamp", json_string(ts));
    if (!r->value) {
        json_object_set_new(o, "value", json_null());
        return o;
    }
    if (r->kind == SRL_BRIDGE_SCHEMAS) {
        json_t *schema = json_loadb((const char *)r->value, r->value_len, 0, NULL);
        json_object_set_new(o, "value",
                            schema ? schema : json_stringn((const char *)r->value, r->value_len));
        return o;
    }
    srl_entity_t e;
    char err[512];
    json_t *v = NULL;
    pthread_mutex_lock(&b->reg_lock);
    bool ok = srl_codec_decode(b->reg, r->value, r->value_len, &e, err, sizeof(err));
    pthread_mutex_unlock(&b->reg_lock);
    if (ok) {
        v = srl_json_from_entity(&e, err, sizeof(err));
        srl_entity_clear(&e);
    }
    if (v) {
        json_object_set_new(o, "value", v);
    } else {
        char *s = base64(r->value, r->value_len);
        json_object_set_new(o, "value_base64", json_string(s ? s : ""));
        json_object_set_new(o, "value_error", json_string(err));
        free(s);
    }
    return o;
}

bool srl__pull_encode(srl_req_t *req, const srl_record_t *records, size_t count,
                      int64_t next_offset, int64_t high)
{
    char err[256];
    req->ready_next = next_offset;
    req->ready_high = high;
    req->ready_count = count;
    free(req->ready_body);
    req->ready_body = NULL;
    if (req->want_json) {
        json_t *o = json_object();
        json_t *arr = json_array();
        json_object_set_new(o, "kind",
                            json_string(req->kind == SRL_BRIDGE_SCHEMAS
                                            ? "schemas"
                                            : srl_kind_name(req->kind)));
        json_object_set_new(o, "partition", json_integer(req->partition));
        json_object_set_new(o, "offset", json_integer(req->offset));
        json_object_set_new(o, "next_offset", json_integer(next_offset));
        json_object_set_new(o, "high_watermark", json_integer(high));
        for (size_t i = 0; i < count; i++)
            json_array_append_new(arr, record_json(req->b, &records[i]));
        json_object_set_new(o, "records", arr);
        req->ready_body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!req->ready_body) {
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
            return false;
        }
        req->ready_len = strlen(req->ready_body);
        req->ready_type = "application/json";
    } else {
        srl_framing_buf_t buf = {0};
        size_t start = srl_framing_begin(&buf);
        uint32_t added = 0;
        for (size_t i = 0; i < count; i++) {
            if (!srl_framing_add(&buf, &records[i], err, sizeof(err))) {
                if (buf.oom)
                    break;
                /* A record we cannot frame (key over 4 KiB): skip it, but
                 * say so, never silently. */
                srl_log(SRL_LOG_WARN, "bridge", "record not served",
                        "kind=%s partition=%d "
                        "offset=%" PRId64 " reason=%s",
                        srl_kind_name(req->kind), (int)req->partition, records[i].offset,
                        srl_log_q(err));
                continue;
            }
            added++;
        }
        if (!srl_framing_finish(&buf, start, added)) {
            srl_framing_buf_free(&buf);
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
            return false;
        }
        req->ready_body = (char *)buf.data;
        req->ready_len = buf.len;
        req->ready_type = SRL_FRAMING_MEDIA_TYPE;
    }
    req->ready_status = MHD_HTTP_OK;
    srl_metrics_records_served(req->kind, count);
    return true;
}
