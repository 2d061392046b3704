/*
 * push_decode.c - a push request's body, decoded and checked, before any
 * of it may reach Kafka (see routes_push.c for the route). Kept apart from
 * the HTTP code so the fuzzer (tests/fuzz/fuzz_bridge_push.c) drives the
 * exact code the route runs.
 *
 * Checks, per record, in order: key non-empty without control characters,
 * version > 0, origin present; then for a value: a known writer schema
 * (ours or from <prefix>.schemas), a value that decodes, of the path's
 * kind, whose key is the record's key, whose version and origin are the
 * record's, and that passes srl_entity_validate. The first failure names
 * the record's index and stops: the batch is all or nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "push_decode.h"
#include "sysrepl/clock.h"
#include "sysrepl/json.h"
#include "sysrepl/keys.h"

static bool fail(srl_push_error_t *e, unsigned status, long index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(srl_push_error_t *e, unsigned status, long index, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->status = status;
    e->index = index;
    return false;
}

void srl_push_batch_free(srl_push_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++) {
        free(b->recs[i].owned_value);
        free(b->recs[i].owned_key);
        free(b->recs[i].owned_origin);
    }
    free(b->recs);
    srl_framing_batch_free(&b->framing);
    memset(b, 0, sizeof(*b));
}

static const srl_meta_t *entity_meta(const srl_entity_t *e)
{
    switch (e->kind) {
    case SRL_KIND_ASSESSMENT_TYPE:
        return &e->u.type.meta;
    case SRL_KIND_ASSESSMENT:
        return &e->u.assessment.meta;
    default:
        return &e->u.policy.meta;
    }
}

/* The value's own checks against the record that carries it. */
static bool check_entity(srl_kind_t kind, const srl_entity_t *e, const srl_push_rec_t *r, char *err,
                         size_t err_size)
{
    char keybuf[SRL_FRAMING_KEY_MAX + 1];
    if (e->kind != kind) {
        snprintf(err, err_size, "value is a %s record, not %s", srl_kind_name(e->kind),
                 srl_kind_name(kind));
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
    const srl_meta_t *meta = entity_meta(e);
    if (meta->version != r->version) {
        snprintf(err, err_size, "version %" PRId64 " differs from the value's version %" PRId64,
                 r->version, meta->version);
        return false;
    }
    if (!meta->origin || strcmp(meta->origin, r->origin) != 0) {
        snprintf(err, err_size, "origin \"%.100s\" differs from the value's origin \"%.100s\"",
                 r->origin, meta->origin ? meta->origin : "");
        return false;
    }
    return srl_entity_validate(e, err, err_size);
}

static bool check_common(const srl_push_rec_t *r, char *err, size_t err_size)
{
    if (r->key_len == 0) {
        snprintf(err, err_size, "key is empty");
        return false;
    }
    for (size_t i = 0; i < r->key_len; i++)
        if ((unsigned char)r->key[i] < 0x20) {
            snprintf(err, err_size, "key contains a control character");
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
    return true;
}

static bool decode_binary(const srl_push_ctx_t *ctx, const void *body, size_t len,
                          srl_push_batch_t *out, srl_push_error_t *e)
{
    char err[512];
    long bad = -1;
    if (!srl_framing_decode(body, len, ctx->kind, 0, &out->framing, &bad, err, sizeof(err)))
        return fail(e, 400, bad, "malformed batch: %s", err);
    if (out->framing.count > ctx->max_records)
        return fail(e, 413, -1, "batch of %zu records exceeds bridge.max_batch_records = %zu",
                    out->framing.count, ctx->max_records);
    out->recs = calloc(out->framing.count ? out->framing.count : 1, sizeof(*out->recs));
    if (!out->recs)
        return fail(e, 503, -1, "out of memory");
    for (size_t i = 0; i < out->framing.count; i++) {
        const srl_record_t *in = &out->framing.records[i];
        srl_push_rec_t *r = &out->recs[i];
        r->key = in->key;
        r->key_len = in->key_len;
        r->value = in->value;
        r->value_len = in->value_len;
        r->version = in->version;
        r->origin = in->origin;
        out->count = i + 1;
        bool ok = check_common(r, err, sizeof(err));
        if (ok && r->value) {
            srl_entity_t ent;
            if (ctx->reg_lock)
                pthread_mutex_lock(ctx->reg_lock);
            ok = srl_codec_decode(ctx->reg, r->value, r->value_len, &ent, err, sizeof(err));
            if (ctx->reg_lock)
                pthread_mutex_unlock(ctx->reg_lock);
            if (ok) {
                ok = check_entity(ctx->kind, &ent, r, err, sizeof(err));
                srl_entity_clear(&ent);
            }
        }
        if (!ok)
            return fail(e, 422, (long)i, "record %zu: %s; nothing of the batch was written", i,
                        err);
    }
    return true;
}

/* One JSON record into out->recs[i]; false with err. */
static bool decode_json_record(const srl_push_ctx_t *ctx, json_t *o, srl_push_rec_t *r, char *err,
                               size_t err_size)
{
    if (!json_is_object(o)) {
        snprintf(err, err_size, "not a JSON object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "key") && strcmp(k, "version") && strcmp(k, "origin") && strcmp(k, "value")) {
            snprintf(err, err_size, "unknown field \"%.60s\" (fields: key, version, origin, value)",
                     k);
            return false;
        }
    }
    json_t *key = json_object_get(o, "key"), *ver = json_object_get(o, "version"),
           *origin = json_object_get(o, "origin"), *value = json_object_get(o, "value");
    if (!json_is_string(key) || !json_is_integer(ver) || !json_is_string(origin) || !value ||
        !(json_is_object(value) || json_is_null(value))) {
        snprintf(err, err_size,
                 "needs key (string), version (integer), origin (string) and value (object or "
                 "null)");
        return false;
    }
    r->key_len = json_string_length(key);
    if (r->key_len > SRL_FRAMING_KEY_MAX) {
        snprintf(err, err_size, "key longer than %u bytes", SRL_FRAMING_KEY_MAX);
        return false;
    }
    r->owned_key = malloc(r->key_len + 1);
    r->owned_origin = strdup(json_string_value(origin));
    if (!r->owned_key || !r->owned_origin) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    memcpy(r->owned_key, json_string_value(key), r->key_len + 1);
    r->key = r->owned_key;
    r->origin = r->owned_origin;
    r->version = json_integer_value(ver);
    if (strlen(r->origin) != json_string_length(origin) ||
        strlen(r->origin) > SRL_FRAMING_ORIGIN_MAX) {
        snprintf(err, err_size, "origin longer than %u bytes or with a NUL",
                 SRL_FRAMING_ORIGIN_MAX);
        return false;
    }
    if (!check_common(r, err, err_size))
        return false;
    if (json_is_null(value))
        return true; /* tombstone */

    /* The record's version and origin fill the value's meta when the
     * value leaves them out; when it has them they must agree. */
    json_t *val = json_deep_copy(value);
    if (!val) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    if (!json_object_get(val, "version"))
        json_object_set_new(val, "version", json_integer(r->version));
    if (!json_object_get(val, "origin"))
        json_object_set_new(val, "origin", json_string(r->origin));
    if (!json_object_get(val, "changed_at"))
        json_object_set_new(val, "changed_at", json_integer(srl_clock_wall_ms()));
    srl_entity_t ent;
    char why[400];
    bool ok = srl_json_to_entity(val, ctx->kind, &ent, why, sizeof(why));
    json_decref(val);
    if (!ok) {
        snprintf(err, err_size, "value: %s", why);
        return false;
    }
    ok = check_entity(ctx->kind, &ent, r, err, err_size);
    if (ok) {
        if (ctx->reg_lock)
            pthread_mutex_lock(ctx->reg_lock);
        ok = srl_codec_encode(ctx->reg, &ent, &r->owned_value, &r->value_len, err, err_size);
        if (ctx->reg_lock)
            pthread_mutex_unlock(ctx->reg_lock);
        r->value = r->owned_value;
    }
    srl_entity_clear(&ent);
    return ok;
}

static bool decode_json(const srl_push_ctx_t *ctx, const void *body, size_t len,
                        srl_push_batch_t *out, srl_push_error_t *e)
{
    char err[512];
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    if (!root)
        return fail(e, 400, -1, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    if (!json_is_array(root)) {
        fail(e, 400, -1, "the body must be a JSON array of records");
        goto cleanup;
    }
    size_t n = json_array_size(root);
    if (n > ctx->max_records) {
        fail(e, 413, -1, "batch of %zu records exceeds bridge.max_batch_records = %zu", n,
             ctx->max_records);
        goto cleanup;
    }
    out->recs = calloc(n ? n : 1, sizeof(*out->recs));
    if (!out->recs) {
        fail(e, 503, -1, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        out->count = i + 1;
        if (!decode_json_record(ctx, json_array_get(root, i), &out->recs[i], err, sizeof(err))) {
            fail(e, 422, (long)i, "record %zu: %s; nothing of the batch was written", i, err);
            goto cleanup;
        }
    }
    ok = true;
cleanup:
    json_decref(root);
    return ok;
}

bool srl_push_decode(const srl_push_ctx_t *ctx, bool binary, const void *body, size_t len,
                     srl_push_batch_t *out, srl_push_error_t *e)
{
    memset(out, 0, sizeof(*out));
    memset(e, 0, sizeof(*e));
    e->index = -1;
    bool ok = binary ? decode_binary(ctx, body, len, out, e) : decode_json(ctx, body, len, out, e);
    if (!ok)
        srl_push_batch_free(out);
    return ok;
}
