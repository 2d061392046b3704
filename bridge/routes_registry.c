/*
 * routes_registry.c - the Confluent Schema Registry REST API, served for
 * sysrepl's own subjects so that Kafka tools (Kafka Connect's converters,
 * ksqlDB, Flink's avro-confluent, kcat -s avro, the Confluent clients) read
 * topics written with value.format = confluent without a registry of
 * their own:
 *   GET  /schemas/ids/{id}                   {"schema": "<json>"}
 *   GET  /schemas/ids/{id}/schema            the schema itself
 *   GET  /subjects                           ["<prefix>.<kind>-value", ...]
 *   GET  /subjects/{subject}/versions        [1, 2, ...]
 *   GET  /subjects/{subject}/versions/{v}    {"subject", "version", "id", "schema"}
 *   POST /subjects/{subject}                 lookup: the same, for a given schema
 *   POST /subjects/{subject}/versions        register (push permission): {"id"}
 *   GET  /config                             {"compatibilityLevel": "FULL"}
 * Errors are the registry's: {"error_code", "message"}, its media type.
 *
 * Backed by <prefix>.schemas, which the bridge already reads (tail.c into
 * b->reg): a schema's id is derived from its fingerprint
 * (srl_schema_id_derive), so every bridge, producer and consumer reading
 * the same topics gives the same id, with no coordination. A subject is
 * <topic>-value of a replicated kind (TopicNameStrategy); its versions are
 * the kind's schemas in the order this bridge learned them (ours first):
 * ids are global, version numbers are this bridge's.
 *
 * Registering checks the schema with the rules of `sysrepl schemas
 * --check` (it may replace ours: backward and forward compatible, so the
 * subject's compatibility is FULL), publishes it to <prefix>.schemas, and
 * answers once the bridge has read it back from there (on a reader
 * thread, never on the HTTP threads): the id it returns is then on the
 * topic for every spoke.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "bridge.h"
#include "http.h"
#include "readers.h"
#include "routes.h"
#include "sysrepl/log.h"

/* How long a registration waits to read its schema back from the topic. */
#define REGISTER_WAIT_MS 15000

static enum MHD_Result reg_error(srl_req_t *req, unsigned status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum MHD_Result reg_error(srl_req_t *req, unsigned status, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    req->registry_code = code;
    return srl__respond_error(req, status, NULL, "%s", msg);
}

/* Answer o (ownership passes) as the registry's JSON. */
static enum MHD_Result reply(srl_req_t *req, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(o);
    if (!s)
        return reg_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, 50001, "out of memory");
    return srl__respond(req, MHD_HTTP_OK, SRL_REGISTRY_MEDIA_TYPE, s, strlen(s));
}

/* A copy of the JSON text of schema id (NULL: unknown). */
static char *schema_of_id(srl_bridge_t *b, int32_t id)
{
    uint64_t fp;
    char *copy = NULL;
    pthread_mutex_lock(&b->reg_lock);
    if (srl_registry_id_fingerprint(b->reg, id, &fp))
        copy = strdup(srl_registry_schema_json(b->reg, fp));
    pthread_mutex_unlock(&b->reg_lock);
    return copy;
}

enum MHD_Result srl__route_registry_schema(srl_req_t *req)
{
    char *json = schema_of_id(req->b, req->schema_id);
    if (!json)
        return reg_error(req, MHD_HTTP_NOT_FOUND, 40403, "Schema %" PRId32 " not found (not on %s)",
                         req->schema_id, req->b->schemas_topic);
    json_t *o = json_pack("{ss}", "schema", json);
    free(json);
    return reply(req, o);
}

enum MHD_Result srl__route_registry_schema_text(srl_req_t *req)
{
    char *json = schema_of_id(req->b, req->schema_id);
    if (!json)
        return reg_error(req, MHD_HTTP_NOT_FOUND, 40403, "Schema %" PRId32 " not found (not on %s)",
                         req->schema_id, req->b->schemas_topic);
    return srl__respond(req, MHD_HTTP_OK, SRL_REGISTRY_MEDIA_TYPE, json, strlen(json));
}

enum MHD_Result srl__route_registry_subjects(srl_req_t *req)
{
    srl_bridge_t *b = req->b;
    json_t *a = json_array();
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char subject[SRL_BRIDGE_TOPIC_MAX + 8];
        if (!(b->kinds & (1u << k)))
            continue;
        snprintf(subject, sizeof(subject), "%s-value", b->topics[k]);
        json_array_append_new(a, json_string(subject));
    }
    return reply(req, a);
}

/* The kind's schemas in registry order: version v (1-based; -1 the last)
 * into fp, id and json (a copy the caller frees); count gets how many
 * there are. false when there is no such version. */
static bool kind_version(srl_bridge_t *b, srl_kind_t kind, int32_t v, size_t *count, uint64_t *fp,
                         int32_t *id, char **json)
{
    srl_kind_t k;
    uint64_t f;
    int32_t i32;
    const char *j;
    size_t n = 0;
    bool found = false;
    pthread_mutex_lock(&b->reg_lock);
    for (size_t i = 0; srl_registry_entry(b->reg, i, &k, &f, &i32, &j); i++) {
        if (k != kind)
            continue;
        n++;
        if (v == -1 || (size_t)v == n) {
            found = true;
            if (fp)
                *fp = f;
            if (id)
                *id = i32;
            if (json) {
                free(*json);
                *json = strdup(j);
            }
        }
    }
    pthread_mutex_unlock(&b->reg_lock);
    *count = n;
    return found;
}

enum MHD_Result srl__route_registry_versions(srl_req_t *req)
{
    size_t n = 0;
    kind_version(req->b, req->kind, 0, &n, NULL, NULL, NULL);
    json_t *a = json_array();
    for (size_t v = 1; v <= n; v++)
        json_array_append_new(a, json_integer((json_int_t)v));
    return reply(req, a);
}

/* {"subject", "version", "id", "schema"} of a version. */
static json_t *version_json(const char *subject, size_t version, int32_t id, const char *json)
{
    return json_pack("{sssIsIss}", "subject", subject, "version", (json_int_t)version, "id",
                     (json_int_t)id, "schema", json);
}

enum MHD_Result srl__route_registry_version(srl_req_t *req)
{
    size_t n = 0;
    int32_t id = 0;
    char *json = NULL;
    if (!kind_version(req->b, req->kind, req->version, &n, NULL, &id, &json) || !json) {
        free(json);
        return reg_error(req, MHD_HTTP_NOT_FOUND, 40402,
                         "Version %" PRId32 " not found (subject %s has %zu)", req->version,
                         req->subject, n);
    }
    json_t *o = version_json(req->subject, req->version == -1 ? n : (size_t)req->version, id, json);
    free(json);
    return reply(req, o);
}

enum MHD_Result srl__route_registry_config(srl_req_t *req)
{
    /* The rules of sysrepl schemas --check: backward and forward. */
    return reply(req, json_pack("{ss}", "compatibilityLevel", "FULL"));
}

/* The schema of a lookup or registration body ({"schema": "<json>",
 * "schemaType": "AVRO"}): its text (a pointer into *doc, which the caller
 * frees), fingerprint and kind, checked to be of the subject's kind. On
 * failure an error is queued: *rc is what to return. */
static bool body_schema(srl_req_t *req, json_t **doc, const char **text, uint64_t *fp,
                        enum MHD_Result *rc)
{
    json_error_t jerr;
    char why[512];
    srl_kind_t kind;
    *doc = json_loadb(req->body.data ? (const char *)req->body.data : "", req->body.len, 0, &jerr);
    const char *type = json_string_value(json_object_get(*doc, "schemaType"));
    *text = json_string_value(json_object_get(*doc, "schema"));
    if (!*doc || !*text) {
        *rc = reg_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, 42201,
                        "Invalid schema: the body must be {\"schema\": \"<Avro schema JSON>\"}%s%s",
                        *doc ? "" : ": ", *doc ? "" : jerr.text);
        return false;
    }
    if (type && strcmp(type, "AVRO") != 0) {
        *rc = reg_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, 42201,
                        "Invalid schema: schemaType %.40s; sysrepl's subjects hold Avro schemas",
                        type);
        return false;
    }
    if (!srl_schema_identify(*text, fp, &kind, why, sizeof(why))) {
        *rc = reg_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, 42201, "Invalid schema: %s", why);
        return false;
    }
    if (kind != req->kind) {
        *rc = reg_error(req, MHD_HTTP_CONFLICT, 409,
                        "Schema being registered is incompatible with an earlier schema for "
                        "subject \"%s\": it is a record of %s, the subject holds %s",
                        req->subject, srl_kind_name(kind), srl_kind_name(req->kind));
        return false;
    }
    return true;
}

/* The version of a known fingerprint in its kind (0: not known). */
static size_t version_of(srl_bridge_t *b, srl_kind_t kind, uint64_t fp, int32_t *id, char **json)
{
    srl_kind_t k;
    uint64_t f;
    int32_t i32;
    const char *j;
    size_t n = 0, found = 0;
    pthread_mutex_lock(&b->reg_lock);
    for (size_t i = 0; srl_registry_entry(b->reg, i, &k, &f, &i32, &j); i++) {
        if (k != kind)
            continue;
        n++;
        if (f == fp) {
            found = n;
            *id = i32;
            if (json)
                *json = strdup(j);
        }
    }
    pthread_mutex_unlock(&b->reg_lock);
    return found;
}

enum MHD_Result srl__route_registry_lookup(srl_req_t *req)
{
    json_t *doc = NULL;
    const char *text;
    uint64_t fp;
    int32_t id = 0;
    char *json = NULL;
    enum MHD_Result rc;
    if (!body_schema(req, &doc, &text, &fp, &rc)) {
        json_decref(doc);
        return rc;
    }
    size_t v = version_of(req->b, req->kind, fp, &id, &json);
    json_decref(doc);
    if (!v || !json) {
        free(json);
        return reg_error(req, MHD_HTTP_NOT_FOUND, 40403,
                         "Schema not found under subject %s (fingerprint %016" PRIx64 ")",
                         req->subject, fp);
    }
    json_t *o = version_json(req->subject, v, id, json);
    free(json);
    return reply(req, o);
}

/* On a reader thread: wait until the tail has read the published schema
 * (req->fingerprint) back from <prefix>.schemas, then answer its id. */
static void register_job(srl_bridge_t *b, rd_kafka_t *rk, srl_req_t *req)
{
    (void)rk;
    uint64_t fp = strtoull(req->fingerprint, NULL, 16);
    for (int waited = 0;; waited += 50) {
        pthread_mutex_lock(&b->reg_lock);
        bool known = srl_registry_has(b->reg, fp);
        pthread_mutex_unlock(&b->reg_lock);
        if (known)
            break;
        if (waited >= REGISTER_WAIT_MS || atomic_load(&b->stopping)) {
            req->registry_code = 50003;
            srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "schema %s was sent to %s but not read back within %d ms; register "
                             "it again",
                             req->fingerprint, b->schemas_topic, REGISTER_WAIT_MS);
            return;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    json_t *o = json_pack("{sI}", "id", (json_int_t)srl_schema_id_derive(fp));
    free(req->ready_body);
    req->ready_body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!req->ready_body) {
        srl__ready_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return;
    }
    req->ready_len = strlen(req->ready_body);
    req->ready_type = SRL_REGISTRY_MEDIA_TYPE;
    req->ready_status = MHD_HTTP_OK;
}

enum MHD_Result srl__route_registry_register(srl_req_t *req)
{
    srl_bridge_t *b = req->b;
    json_t *doc = NULL;
    const char *text;
    uint64_t fp, other;
    int32_t id = 0;
    char why[768], key[17];
    enum MHD_Result rc;
    if (!body_schema(req, &doc, &text, &fp, &rc)) {
        json_decref(doc);
        return rc;
    }
    if (version_of(b, req->kind, fp, &id, NULL)) {
        json_decref(doc);
        return reply(req, json_pack("{sI}", "id", (json_int_t)id));
    }
    pthread_mutex_lock(&b->reg_lock);
    bool ok = srl_schema_check_evolution(b->reg, text, why, sizeof(why));
    bool clash = srl_registry_id_fingerprint(b->reg, srl_schema_id_derive(fp), &other);
    pthread_mutex_unlock(&b->reg_lock);
    if (!ok) {
        json_decref(doc);
        return reg_error(req, MHD_HTTP_CONFLICT, 409,
                         "Schema being registered is incompatible with an earlier schema for "
                         "subject \"%s\": %s",
                         req->subject, why);
    }
    if (clash) {
        json_decref(doc);
        return reg_error(req, MHD_HTTP_CONFLICT, 409,
                         "schema %016" PRIx64 " would get the id %" PRId32 " of schema %016" PRIx64
                         " (derived ids collide); change the schema "
                         "(its doc, say) and register it again",
                         fp, srl_schema_id_derive(fp), other);
    }
    snprintf(key, sizeof(key), "%016" PRIx64, fp);
    /* No opaque: the delivery report is not a push job's. The answer
     * comes when the tail has read it back (register_job). */
    rd_kafka_resp_err_t e = rd_kafka_producev(b->rk, RD_KAFKA_V_TOPIC(b->schemas_topic),
                                              RD_KAFKA_V_KEY(key, 16),
                                              RD_KAFKA_V_VALUE((void *)text, strlen(text)),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_END);
    json_decref(doc);
    if (e)
        return reg_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, 50003, "publishing schema %s to %s: %s",
                         key, b->schemas_topic, rd_kafka_err2str(e));
    srl_log(SRL_LOG_INFO, "bridge", "schema registered",
            "key=%s subject=%s fingerprint=%s id=%" PRId32,
            srl_log_q(req->key ? req->key->name : "-"), srl_log_q(req->subject), key,
            srl_schema_id_derive(fp));
    memcpy(req->fingerprint, key, sizeof(key));
    srl_bridge_readers_call(b->readers, req, register_job);
    return MHD_YES;
}
