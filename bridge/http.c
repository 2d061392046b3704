/*
 * http.c - the bridge's HTTP(S) server on libmicrohttpd: the request's
 * life (headers, body, suspend/resume, completion), limits, TLS, and the
 * replies (JSON errors, answers computed on other threads). It knows no
 * route: the route layer (routes.c), handed in at start, sees each
 * request's headers and names the handler that runs when the body is in.
 *
 * Every request ends in exactly one response with a status from the
 * documented set and, for errors, a JSON body {"error": "..."} naming the
 * problem. Limits, and what a client sees when it passes one:
 *   body over bridge.max_body_bytes     413 (before reading it, when
 *                                           Content-Length says so)
 *   more than bridge.max_connections    503 "too many connections"
 *   request slower than request_timeout 408 (or the connection is closed
 *                                           when the client stalls mid-body)
 *   idle connection                     closed by libmicrohttpd's timeout
 *   headers over 16 KiB                 431, by libmicrohttpd
 * libmicrohttpd's own connection limit is set a little above ours so the
 * extra connections can be told why instead of being dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "http.h"
#include "metrics.h"
#include "sysrepl/clock.h"
#include "sysrepl/log.h"

#define CONNECTION_HEADROOM 64

/* The PEM text given to libmicrohttpd; kept until the daemon stops. */
static char *tls_cert_pem, *tls_key_pem;
/* The route layer (one server per process), set at start. */
static srl_http_headers_fn route_headers;

enum MHD_Result srl__respond(srl_req_t *req, unsigned status, const char *content_type, char *body,
                             size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(body ? len : 0,
                                                                body ? body : (void *)"",
                                                                body ? MHD_RESPMEM_MUST_FREE
                                                                     : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"sysrepl\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow ? req->allow : "GET, HEAD");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    /* Only a pull answer sets ready_next (srl__pull_encode). */
    if (req->ready_next >= 0 && status == MHD_HTTP_OK) {
        char num[32];
        snprintf(num, sizeof(num), "%" PRId64, req->ready_next);
        MHD_add_response_header(resp, "X-Sysrepl-Next-Offset", num);
        snprintf(num, sizeof(num), "%" PRId64, req->ready_high);
        MHD_add_response_header(resp, "X-Sysrepl-High-Watermark", num);
        snprintf(num, sizeof(num), "%zu", req->ready_count);
        MHD_add_response_header(resp, "X-Sysrepl-Record-Count", num);
    }
    /* A request whose body we did not read cannot keep its connection. */
    if (req->body_too_large || status == MHD_HTTP_SERVICE_UNAVAILABLE ||
        status == MHD_HTTP_REQUEST_TIMEOUT || status == MHD_HTTP_CONTENT_TOO_LARGE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    req->status = status;
    enum MHD_Result rc = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static char *error_json(const char *msg, void *extra, size_t *len)
{
    json_t *obj = extra ? (json_t *)extra : json_object();
    json_object_set_new(obj, "error", json_string(msg));
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        s = strdup("{\"error\":\"out of memory\"}");
    if (!s)
        return NULL;
    size_t n = strlen(s);
    /* a newline so curl and terminals show it nicely */
    char *t = realloc(s, n + 2);
    if (t) {
        t[n] = '\n';
        t[n + 1] = '\0';
        s = t;
        n++;
    }
    *len = n;
    return s;
}

enum MHD_Result srl__respond_error(srl_req_t *req, unsigned status, void *extra, const char *fmt,
                                   ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body = error_json(msg, extra, &len);
    if (status >= 500)
        srl_log(SRL_LOG_WARN, "bridge", "request failed", "route=%s status=%u reason=%s",
                srl_metrics_route_name(req->route), status, srl_log_q(msg));
    return srl__respond(req, status, "application/json", body, len);
}

void srl__ready_error(srl_req_t *req, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(req->ready_body);
    req->ready_body = error_json(msg, NULL, &req->ready_len);
    req->ready_type = "application/json";
    req->ready_status = status;
    req->ready_next = -1;
}

enum MHD_Result srl__respond_ready(srl_req_t *req)
{
    char *body = req->ready_body;
    req->ready_body = NULL;
    if (!req->ready_status) {
        free(body);
        return srl__respond_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                                  "internal error: request resumed without a result");
    }
    return srl__respond(req, req->ready_status, req->ready_type, body, req->ready_len);
}

void srl__suspend(srl_req_t *req, srl_wait_t why)
{
    req->wait = why;
    req->resumed = false;
    req->suspended = true;
    MHD_suspend_connection(req->conn);
}

void srl__resume(srl_req_t *req)
{
    req->resumed = true;
    req->suspended = false;
    MHD_resume_connection(req->conn);
}

/* Parse a whole decimal number in [lo, hi]; no sign, no spaces. */
bool srl__parse_num(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool srl__http_refuse_busy(srl_req_t *req, enum MHD_Result *rc)
{
    srl_bridge_t *b = req->b;
    if (atomic_load(&b->stopping)) {
        *rc = srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                 "the bridge is shutting down");
        return true;
    }
    if (atomic_load(&b->connections) > (int)b->max_connections) {
        *rc = srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                 "too many connections: the bridge serves at most %u at once "
                                 "(bridge.max_connections); retry later",
                                 b->max_connections);
        return true;
    }
    return false;
}

bool srl__http_refuse_too_large(srl_req_t *req, enum MHD_Result *rc)
{
    srl_bridge_t *b = req->b;
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t clen = 0;
    if (cl && srl__parse_num(cl, 0, INT64_MAX, &clen) && (uint64_t)clen > b->max_body_bytes) {
        req->body_too_large = true;
        *rc = srl__respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "request body of %" PRId64
                                 " bytes exceeds bridge.max_body_bytes = %zu",
                                 clen, b->max_body_bytes);
        return true;
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    srl_bridge_t *b = cls;
    srl_req_t *req = *con_cls;
    (void)version;

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->b = b;
        req->conn = conn;
        req->start_ms = srl_clock_mono_ms();
        req->ready_next = -1;
        req->partition = -1;
        req->route = SRL_ROUTE_OTHER;
        *con_cls = req;
        return route_headers(req, url, method);
    }
    if (req->status)
        return MHD_YES; /* an error was queued at the headers; drain */

    if (*upload_data_size) {
        if (b->request_timeout_ms && srl_clock_mono_ms() - req->start_ms > b->request_timeout_ms) {
            /* libmicrohttpd cannot answer in the middle of a body: close. */
            srl_log(SRL_LOG_INFO, "bridge", "request body too slow, closing",
                    "route=%s timeout_ms=%" PRId64, srl_metrics_route_name(req->route),
                    b->request_timeout_ms);
            req->status = MHD_HTTP_REQUEST_TIMEOUT;
            return MHD_NO;
        }
        if (req->body.len + *upload_data_size > b->max_body_bytes) {
            req->body_too_large = true;
            srl_framing_buf_free(&req->body);
            /* A chunked body without a length: read and drop it up to a
             * bound, then close. */
            req->body.len = b->max_body_bytes + 1;
        } else {
            srl_framing_buf_append(&req->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* The whole request is in, or it was resumed. */
    if (req->resumed && req->wait != SRL_WAIT_DATA)
        return srl__respond_ready(req);
    if (req->body_too_large) {
        req->body.len = 0;
        return srl__respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                  "request body exceeds bridge.max_body_bytes = %zu",
                                  b->max_body_bytes);
    }
    if (req->body.oom)
        return srl__respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                                  "out of memory reading the request body");
    if (!req->resumed && b->request_timeout_ms &&
        srl_clock_mono_ms() - req->start_ms > b->request_timeout_ms)
        return srl__respond_error(req, MHD_HTTP_REQUEST_TIMEOUT, NULL,
                                  "request took longer than bridge.request_timeout_ms = %" PRId64
                                  " ms to arrive",
                                  b->request_timeout_ms);

    if (!req->handler)
        return srl__respond_error(req, MHD_HTTP_NOT_FOUND, NULL, "no such route");
    return req->handler(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    srl_req_t *req = *con_cls;
    if (!req)
        return;
    int64_t elapsed = srl_clock_mono_ms() - req->start_ms;
    unsigned status = req->status;
    if (!status || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* No response went out in full: count it as the client's or our
         * failure so /metrics shows it. */
        if (!status)
            status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
        if (srl_log_enabled(SRL_LOG_DEBUG))
            srl_log(SRL_LOG_DEBUG, "bridge", "request ended early", "route=%s status=%u toe=%d",
                    srl_metrics_route_name(req->route), status, (int)toe);
    }
    srl_metrics_request(req->route, status, elapsed);
    if (srl_log_enabled(SRL_LOG_DEBUG))
        srl_log(SRL_LOG_DEBUG, "bridge", "request", "route=%s status=%u key=%s elapsed_ms=%" PRId64,
                srl_metrics_route_name(req->route), status, req->key ? req->key->name : "-",
                elapsed);
    if (req->route_free)
        req->route_free(req);
    srl_framing_buf_free(&req->body);
    free(req->ready_body);
    free(req);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    srl_bridge_t *b = cls;
    (void)conn;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&b->connections, 1);
    else
        atomic_fetch_sub(&b->connections, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    srl_log(SRL_LOG_DEBUG, "bridge", "libmicrohttpd", "detail=%s", srl_log_q(msg));
}

/* Read a whole PEM file; errstr names the config key. */
static char *read_pem(const char *key, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        snprintf(errstr, errstr_size, "%s = %s: %s", key, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > (1 << 20)) {
        snprintf(errstr, errstr_size, "%s = %s: empty or larger than 1 MiB", key, path);
        goto cleanup;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        snprintf(errstr, errstr_size, "%s = %s: cannot read", key, path);
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[st.st_size] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        snprintf(errstr, errstr_size, "%s = %s: not a PEM file", key, path);
        free(buf);
        buf = NULL;
    }
cleanup:
    fclose(f);
    return buf;
}

bool srl_bridge_http_check(srl_bridge_t *b, char *errstr, size_t errstr_size)
{
    const char *cert_path = srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_CERT);
    const char *key_path = srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_KEY);
    bool plain = srl_config_bool(b->cfg, SRL_KEY_BRIDGE_PLAIN_HTTP);
    if (!plain && (!*cert_path || !*key_path)) {
        snprintf(errstr, errstr_size,
                 "no TLS: set bridge.tls_cert and bridge.tls_key (PEM files), or set "
                 "bridge.plain_http = true to serve plain HTTP on purpose");
        return false;
    }
    if (plain && (*cert_path || *key_path)) {
        snprintf(errstr, errstr_size,
                 "bridge.plain_http = true and bridge.tls_cert/bridge.tls_key are both set: "
                 "choose one");
        return false;
    }
    if (plain)
        return true;
    char *pem = read_pem("bridge.tls_cert", cert_path, errstr, errstr_size);
    if (!pem)
        return false;
    free(pem);
    pem = read_pem("bridge.tls_key", key_path, errstr, errstr_size);
    if (!pem)
        return false;
    free(pem);
    return true;
}

bool srl_bridge_http_start(srl_bridge_t *b, srl_http_headers_fn on_headers, char *errstr,
                           size_t errstr_size)
{
    const char *cert_path = srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_CERT);
    const char *key_path = srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_KEY);
    bool plain = srl_config_bool(b->cfg, SRL_KEY_BRIDGE_PLAIN_HTTP);
    const char *listen = srl_config_str(b->cfg, SRL_KEY_BRIDGE_LISTEN);
    int port = (int)srl_config_int(b->cfg, SRL_KEY_BRIDGE_PORT);
    int threads = (int)srl_config_int(b->cfg, SRL_KEY_BRIDGE_HTTP_THREADS);
    char *cert = NULL, *key = NULL;
    bool ok = false;

    if (!srl_bridge_http_check(b, errstr, errstr_size))
        return false;
    route_headers = on_headers;
    if (!plain) {
        cert = read_pem("bridge.tls_cert", cert_path, errstr, errstr_size);
        if (!cert)
            goto cleanup;
        key = read_pem("bridge.tls_key", key_path, errstr, errstr_size);
        if (!key)
            goto cleanup;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, listen, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, listen, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(errstr, errstr_size, "bridge.listen = %s: not an IPv4 or IPv6 address", listen);
        goto cleanup;
    }
    if (!plain)
        flags |= MHD_USE_TLS;

    unsigned timeout_s = (unsigned)((b->request_timeout_ms + 999) / 1000);
    if (timeout_s < 1)
        timeout_s = 1;
    struct MHD_OptionItem opts[16];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)(b->max_connections + CONNECTION_HEADROOM), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, b};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    /* Per-connection pool for request and response headers (default 32 KiB):
     * 16 KiB keeps 2,000 idle long polls in about 35 MB; larger headers get
     * 431 from libmicrohttpd. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16384, NULL};
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    if (!plain) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    b->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, b, MHD_OPTION_ARRAY,
                                 opts, MHD_OPTION_END);
    if (!b->daemon) {
        snprintf(errstr, errstr_size,
                 "cannot serve on %s:%d (bridge.listen, bridge.port): address in use, no "
                 "permission, or a TLS certificate/key that does not load (bridge.tls_cert, "
                 "bridge.tls_key)",
                 listen, port);
        goto cleanup;
    }
    srl_log(SRL_LOG_INFO, "bridge", "listening", "address=%s port=%d tls=%s threads=%d",
            srl_log_q(listen), port, plain ? "off" : "on", threads);
    ok = true;
cleanup:
    if (ok) {
        tls_cert_pem = cert;
        tls_key_pem = key;
    } else {
        free(cert);
        free(key);
    }
    return ok;
}

void srl_bridge_http_stop(srl_bridge_t *b)
{
    if (b->daemon) {
        MHD_stop_daemon(b->daemon);
        b->daemon = NULL;
    }
    free(tls_cert_pem);
    free(tls_key_pem);
    tls_cert_pem = tls_key_pem = NULL;
}
