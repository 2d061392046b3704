/*
 * bridge_client.c - libcurl client of the Replication API (see
 * bridge_client.h): URL building, the API key header, TLS verification
 * against bridge.ca_file, the X-Sysrepl-* headers, and the one place where
 * an HTTP outcome is classified as OK, RETRY or FATAL.
 */
#include "sysrepl/bridge_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "sysrepl/kafka.h"

#define API_PREFIX "/api/replication/v1"

struct srl_bridge_client {
    char *base;       /* bridge.url without a trailing '/' */
    char *key_header; /* "X-ApiKey: <key>" */
    char *ca_file;    /* NULL: system CAs */
    char *prefix;
    char schemas_topic[256];
    long timeout_ms;
    CURL *easy; /* reused by the blocking calls (keep-alive) */
    struct curl_slist *headers;
};

/* One easy handle's private state: the headers list it owns. */
typedef struct easy_priv {
    struct curl_slist *headers;
    srl_http_resp_t *resp;
} easy_priv_t;

void srl_http_resp_clear(srl_http_resp_t *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
    r->next_offset = r->high = -1;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    srl_http_resp_t *r = arg;
    size_t add = sz * n;
    if (r->len + add + 1 > r->cap) {
        /* grow geometrically: a batch arrives in many 16 KiB chunks */
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + add + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static bool header_num(const char *p, size_t len, const char *name, int64_t *out)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return false;
    char buf[32];
    size_t vl = len - nl - 1;
    if (vl >= sizeof(buf))
        return false;
    memcpy(buf, p + nl + 1, vl);
    buf[vl] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    while (*end == ' ' || *end == '\r' || *end == '\n')
        end++;
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    srl_http_resp_t *r = arg;
    size_t len = sz * n;
    if (len > 9 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (redirect, 100) */
        r->next_offset = r->high = -1;
    }
    header_num(p, len, "X-Sysrepl-Next-Offset", &r->next_offset);
    header_num(p, len, "X-Sysrepl-High-Watermark", &r->high);
    return len;
}

srl_bridge_client_t *srl_bridge_client_new(const srl_config_t *cfg, char *errstr,
                                           size_t errstr_size)
{
    const char *url = srl_config_str(cfg, SRL_KEY_BRIDGE_URL);
    const char *key = srl_config_str(cfg, SRL_KEY_BRIDGE_API_KEY);
    const char *ca = srl_config_str(cfg, SRL_KEY_BRIDGE_CA_FILE);
    if (!*url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
        snprintf(errstr, errstr_size,
                 "bridge.url must be the bridge's http(s):// base URL (transport = http)");
        return NULL;
    }
    if (!*key) {
        snprintf(errstr, errstr_size, "bridge.api_key is empty (transport = http needs a key)");
        return NULL;
    }
    srl_bridge_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->base = strdup(url);
    size_t hl = strlen(key) + 16;
    c->key_header = malloc(hl);
    c->prefix = strdup(srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX));
    if (!c->base || !c->key_header || !c->prefix)
        goto oom;
    size_t bl = strlen(c->base);
    while (bl && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    snprintf(c->key_header, hl, "X-ApiKey: %s", key);
    if (*ca && !(c->ca_file = strdup(ca)))
        goto oom;
    srl_topic_name_schemas(c->prefix, c->schemas_topic, sizeof(c->schemas_topic));
    c->timeout_ms = (long)srl_config_int(cfg, SRL_KEY_BRIDGE_TIMEOUT_MS);
    return c;
oom:
    srl_bridge_client_free(c);
    snprintf(errstr, errstr_size, "out of memory");
    return NULL;
}

void srl_bridge_client_free(srl_bridge_client_t *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    if (c->key_header) /* the key does not linger in freed memory */
        memset(c->key_header, 0, strlen(c->key_header));
    free(c->key_header);
    free(c->base);
    free(c->ca_file);
    free(c->prefix);
    free(c);
}

bool srl_bridge_client_topic_segment(const srl_bridge_client_t *c, const char *topic,
                                     const char **segment)
{
    srl_kind_t kind;
    if (strcmp(topic, c->schemas_topic) == 0) {
        *segment = "schemas";
        return true;
    }
    if (!srl_topic_kind(c->prefix, topic, &kind))
        return false;
    *segment = srl_kind_name(kind);
    return true;
}

static void set_common(srl_bridge_client_t *c, CURL *e, const char *path, int timeout_ms,
                       srl_http_resp_t *resp)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s%s", c->base, path[0] == '/' ? "" : API_PREFIX "/", path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : c->timeout_ms));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
}

srl_http_rc_t srl_bridge_client_finish(CURL *easy, CURLcode code, srl_http_resp_t *resp)
{
    if (code != CURLE_OK) {
        snprintf(resp->error, sizeof(resp->error), "bridge not reachable: %s",
                 curl_easy_strerror(code));
        switch (code) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
            return SRL_HTTP_FATAL;
        default:
            return SRL_HTTP_RETRY;
        }
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
    if (resp->status >= 200 && resp->status < 300)
        return SRL_HTTP_OK;
    /* The bridge names the problem in {"error": "..."}. */
    const char *msg = NULL;
    json_t *j = resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
    if (j)
        msg = json_string_value(json_object_get(j, "error"));
    snprintf(resp->error, sizeof(resp->error), "bridge answered %ld: %s", resp->status,
             msg ? msg : "(no message)");
    json_decref(j);
    if (resp->status == 408 || resp->status == 429 || resp->status >= 500)
        return SRL_HTTP_RETRY;
    return SRL_HTTP_FATAL;
}

static CURL *prepare(srl_bridge_client_t *c, CURL *e, struct curl_slist **headers, const char *path,
                     const char *accept, const char *ctype, int timeout_ms, srl_http_resp_t *resp)
{
    char h[160];
    srl_http_resp_clear(resp);
    set_common(c, e, path, timeout_ms, resp);
    *headers = curl_slist_append(NULL, c->key_header);
    if (accept) {
        snprintf(h, sizeof(h), "Accept: %s", accept);
        *headers = curl_slist_append(*headers, h);
    }
    if (ctype) {
        snprintf(h, sizeof(h), "Content-Type: %s", ctype);
        *headers = curl_slist_append(*headers, h);
        *headers = curl_slist_append(*headers, "Expect:"); /* no 100-continue round trip */
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *headers);
    return e;
}

static srl_http_rc_t perform(srl_bridge_client_t *c, const char *path, const char *accept,
                             const char *ctype, const void *body, size_t len, int timeout_ms,
                             srl_http_resp_t *resp)
{
    if (!c->easy && !(c->easy = curl_easy_init())) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return SRL_HTTP_RETRY;
    }
    curl_easy_reset(c->easy);
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    prepare(c, c->easy, &c->headers, path, accept, ctype, timeout_ms, resp);
    if (ctype) {
        curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode code = curl_easy_perform(c->easy);
    return srl_bridge_client_finish(c->easy, code, resp);
}

srl_http_rc_t srl_bridge_client_get(srl_bridge_client_t *c, const char *path, const char *accept,
                                    int timeout_ms, srl_http_resp_t *resp)
{
    return perform(c, path, accept, NULL, NULL, 0, timeout_ms, resp);
}

srl_http_rc_t srl_bridge_client_post(srl_bridge_client_t *c, const char *path,
                                     const char *content_type, const void *body, size_t len,
                                     int timeout_ms, srl_http_resp_t *resp)
{
    return perform(c, path, "application/json", content_type, body, len, timeout_ms, resp);
}

CURL *srl_bridge_client_easy(srl_bridge_client_t *c, const char *path, const char *accept,
                             int timeout_ms, srl_http_resp_t *resp)
{
    CURL *e = curl_easy_init();
    easy_priv_t *priv = calloc(1, sizeof(*priv));
    if (!e || !priv) {
        if (e)
            curl_easy_cleanup(e);
        free(priv);
        return NULL;
    }
    prepare(c, e, &priv->headers, path, accept, NULL, timeout_ms, resp);
    priv->resp = resp;
    curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
    return e;
}

void srl_bridge_client_easy_free(CURL *easy)
{
    if (!easy)
        return;
    easy_priv_t *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv);
    if (priv) {
        curl_slist_free_all(priv->headers);
        free(priv);
    }
    curl_easy_cleanup(easy);
}
