/*
 * schema_registry.c - libcurl client of the Confluent Schema Registry REST
 * API (see schema_registry.h). Every answer is classified here, once: the
 * registry's JSON error ({"error_code", "message"}) becomes the reason.
 */
#include "sysrepl/schema_registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sysrepl/kafka.h"

#define SR_TIMEOUT_MS 15000L
#define SR_MEDIA "application/vnd.schemaregistry.v1+json"

struct srl_sr_client {
    char *base;       /* schema.registry.url without a trailing '/' */
    char *basic_auth; /* user:password, or NULL */
    char *ca_file;    /* NULL: system CAs */
    CURL *easy;       /* reused between calls (keep-alive) */
};

typedef struct sr_body {
    char *data;
    size_t len;
} sr_body_t;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    sr_body_t *b = arg;
    size_t add = sz * n;
    if (b->len + add > 16u << 20)
        return 0; /* no registry answer of ours is that large */
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->len += add;
    d[b->len] = '\0';
    b->data = d;
    return add;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

bool srl_sr_client_new(const srl_config_t *cfg, srl_sr_client_t **client, char *errstr,
                       size_t errstr_size)
{
    const char *url = srl_config_str(cfg, SRL_KEY_SCHEMA_REGISTRY_URL);
    *client = NULL;
    if (!url || !*url)
        return true;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(errstr, errstr_size,
                 "schema.registry.url \"%s\" must start with http:// or https://", url);
        return false;
    }
    srl_sr_client_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->base = strdup(url)) || !(c->easy = curl_easy_init())) {
        srl_sr_client_free(c);
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->basic_auth = dup_or_null(srl_config_str(cfg, SRL_KEY_SCHEMA_REGISTRY_BASIC_AUTH));
    c->ca_file = dup_or_null(srl_config_str(cfg, SRL_KEY_SCHEMA_REGISTRY_CA_FILE));
    *client = c;
    return true;
}

void srl_sr_client_free(srl_sr_client_t *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    free(c->base);
    if (c->basic_auth) {
        memset(c->basic_auth, 0, strlen(c->basic_auth));
        free(c->basic_auth);
    }
    free(c->ca_file);
    free(c);
}

const char *srl_sr_client_url(const srl_sr_client_t *c)
{
    return c ? c->base : "";
}

bool srl_sr_subject(const char *prefix, srl_kind_t kind, char *buf, size_t size)
{
    char topic[256];
    if (!srl_topic_name(prefix, kind, topic, sizeof(topic)))
        return false;
    int n = snprintf(buf, size, "%s-value", topic);
    return n > 0 && (size_t)n < size;
}

/* One request; body_json NULL: GET. The answer's body goes to *out (the
 * caller frees out->data). */
static srl_sr_rc_t sr_call(srl_sr_client_t *c, const char *path, const char *body_json,
                           sr_body_t *out, char *errstr, size_t errstr_size)
{
    char url[2048];
    struct curl_slist *headers = NULL;
    memset(out, 0, sizeof(*out));
    if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
        snprintf(errstr, errstr_size, "schema registry URL too long");
        return SRL_SR_FATAL;
    }
    CURL *e = c->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, SR_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->basic_auth) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERPWD, c->basic_auth);
    }
    headers = curl_slist_append(headers, "Accept: " SR_MEDIA ", application/json");
    if (body_json) {
        headers = curl_slist_append(headers, "Content-Type: " SR_MEDIA);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_json);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body_json));
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    CURLcode cc = curl_easy_perform(e);
    curl_slist_free_all(headers);
    if (cc != CURLE_OK) {
        snprintf(errstr, errstr_size, "schema registry %s: %s", c->base, curl_easy_strerror(cc));
        return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
                       cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL
                   ? SRL_SR_FATAL
                   : SRL_SR_RETRY;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return SRL_SR_OK;
    /* The registry's error: {"error_code": N, "message": "..."} */
    const char *msg = NULL;
    json_t *j = out->data ? json_loads(out->data, 0, NULL) : NULL;
    if (j)
        msg = json_string_value(json_object_get(j, "message"));
    snprintf(errstr, errstr_size, "schema registry %s%s: HTTP %ld: %s", c->base, path, status,
             msg ? msg : (out->data ? out->data : "no body"));
    json_decref(j);
    if (status == 409 || status == 422)
        return SRL_SR_REFUSED;
    if (status == 404)
        return SRL_SR_NOT_FOUND;
    if (status == 408 || status == 429 || status >= 500)
        return SRL_SR_RETRY;
    return SRL_SR_FATAL;
}

/* A subject as one URL path segment (percent-encoded). */
static bool path_segment(srl_sr_client_t *c, const char *s, char *buf, size_t size)
{
    char *esc = curl_easy_escape(c->easy, s, 0);
    if (!esc)
        return false;
    int n = snprintf(buf, size, "%s", esc);
    curl_free(esc);
    return n > 0 && (size_t)n < size;
}

srl_sr_rc_t srl_sr_register(srl_sr_client_t *c, const char *subject, const char *schema_json,
                            int32_t *id, char *errstr, size_t errstr_size)
{
    char seg[512], path[600];
    sr_body_t out;
    *id = 0;
    if (!path_segment(c, subject, seg, sizeof(seg))) {
        snprintf(errstr, errstr_size, "subject \"%.200s\" too long", subject);
        return SRL_SR_FATAL;
    }
    snprintf(path, sizeof(path), "/subjects/%s/versions", seg);
    json_t *req = json_pack("{ss}", "schema", schema_json);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        snprintf(errstr, errstr_size, "out of memory");
        return SRL_SR_RETRY;
    }
    srl_sr_rc_t rc = sr_call(c, path, body, &out, errstr, errstr_size);
    free(body);
    if (rc == SRL_SR_OK) {
        json_t *j = out.data ? json_loads(out.data, 0, NULL) : NULL;
        json_int_t v = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        if (v <= 0 || v > INT32_MAX) {
            snprintf(errstr, errstr_size, "schema registry %s%s: answer without a valid \"id\"",
                     c->base, path);
            rc = SRL_SR_FATAL;
        } else {
            *id = (int32_t)v;
        }
    }
    free(out.data);
    return rc;
}

srl_sr_rc_t srl_sr_schema_by_id(srl_sr_client_t *c, int32_t id, char **schema_json, char *errstr,
                                size_t errstr_size)
{
    char path[64];
    sr_body_t out;
    *schema_json = NULL;
    snprintf(path, sizeof(path), "/schemas/ids/%" PRId32, id);
    srl_sr_rc_t rc = sr_call(c, path, NULL, &out, errstr, errstr_size);
    if (rc == SRL_SR_OK) {
        json_t *j = out.data ? json_loads(out.data, 0, NULL) : NULL;
        const char *s = json_string_value(json_object_get(j, "schema"));
        const char *type = json_string_value(json_object_get(j, "schemaType"));
        if (type && strcmp(type, "AVRO") != 0) {
            snprintf(errstr, errstr_size, "schema id %" PRId32 " at %s is a %s schema, not Avro",
                     id, c->base, type);
            rc = SRL_SR_FATAL;
        } else if (!s || !(*schema_json = strdup(s))) {
            snprintf(errstr, errstr_size,
                     "schema registry %s%s: answer without a \"schema\" string", c->base, path);
            rc = SRL_SR_FATAL;
        }
        json_decref(j);
    }
    free(out.data);
    return rc;
}
