/*
 * http.c - the bridge's HTTP(S) server on libmicrohttpd: the request's
 * life (headers, body, suspend/resume, completion), limits, TLS, and the
 * replies (JSON errors, answers computed on other threads). It knows no
 * route: the route layer (routes.c), handed in at start, sees each
 * request's headers and names the handler that runs when the body is in.
 *
 * Every request ends in exactly one response with a status from the
 * documented set and, for errors, a JSON body {"error": "..."} naming the
 * problem; 4xx and 5xx are logged (rate-limited, by key name, never the
 * key). Limits, and what a client sees when it passes one:
 *   body over bridge.max_body_bytes     413 (before reading it, when
 *                                           Content-Length says so)
 *   more than bridge.max_connections    503 "too many connections"
 *   more than max_connections_per_ip    closed at once, unanswered
 *   header not in within header_timeout closed (a watchdog thread shuts
 *                                           the socket down)
 *   request slower than request_timeout 408 (or the connection is closed
 *                                           when the client stalls mid-body)
 *   idle connection                     closed by libmicrohttpd's timeout
 *   two Content-Length, or one with     400 and close (ambiguous framing:
 *     Transfer-Encoding                     request smuggling)
 *   a NUL byte in the path or query     400 and close; in the key header 401
 *     (%00) or in a header value
 * libmicrohttpd's own connection limit is set a little above ours so the
 * extra connections can be told why instead of being dropped; ours is kept
 * below what the open-files limit allows (the soft limit is raised to the
 * hard one at start). TLS takes bridge.tls_priorities: by default 1.2 and
 * 1.3, ECDHE key exchange and AEAD ciphers only.
 *
 * What libmicrohttpd 0.9.75 answers by itself, with its own compiled-in
 * HTML body and no option to replace it: 400 for a request line or header
 * line it cannot parse, 505 an HTTP version but 1.0 and 1.1, 400 a
 * malformed chunk, 414 a request line over the 16 KiB pool, 431 a
 * header block over it, 413 a chunk size over 64 bits, 500 a chunk line
 * (its extension) that does not fit the pool. For an invalid
 * Content-Length (not a decimal number) it queues its 400 (413 when the
 * number overflows) without calling the handler and then builds the header
 * block a second time: the client gets the status line twice, then the
 * connection is closed. None of these reach this file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <jansson.h>

#include "auth.h"
#include "http.h"
#include "metrics.h"
#include "sysrepl/clock.h"
#include "sysrepl/log.h"

#define CONNECTION_HEADROOM 64
/* File descriptors kept for everything but client connections: the Kafka
 * clients (tail, readers, producer: sockets and wake-up pipes per broker),
 * the listen socket, epoll, files. */
#define FD_RESERVE 256
/* 4xx log lines per second at most; the rest are counted and the count is
 * in the next line (a client hammering 401s cannot flood the journal). */
#define REFUSALS_LOGGED_PER_S 20

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
    if (req->close || req->body_too_large || status == MHD_HTTP_SERVICE_UNAVAILABLE ||
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

/* The Schema Registry's error body: {"error_code": N, "message": "..."};
 * N is the route's own code (40401 ...) or the status. */
static char *registry_error_json(srl_req_t *req, unsigned status, const char *msg, void *extra,
                                 size_t *len)
{
    json_decref((json_t *)extra);
    json_t *obj = json_pack("{siss}", "error_code",
                            req->registry_code ? req->registry_code : (int)status, "message", msg);
    req->registry_code = 0;
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s)
        s = strdup("{\"error_code\":50001,\"message\":\"out of memory\"}");
    *len = s ? strlen(s) : 0;
    return s;
}

/* The client's address for a log line ("-" when unknown). */
static void peer_name(struct MHD_Connection *conn, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, size, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)size);
}

/* One line per error answer: 4xx "request refused" (info), 5xx "request
 * failed" (warn); at most REFUSALS_LOGGED_PER_S a second together, the
 * lines left out counted in the next one (suppressed=), so a client
 * hammering bad keys or the connection limit cannot flood the journal.
 * The key's name is logged, never the key. */
static void log_error_answer(srl_req_t *req, unsigned status, const char *msg)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int64_t second;
    static unsigned logged, suppressed;
    int64_t now = srl_clock_mono_ms() / 1000;
    unsigned dropped = 0;
    pthread_mutex_lock(&lock);
    if (now != second) {
        second = now;
        logged = 0;
    }
    bool log = logged < REFUSALS_LOGGED_PER_S;
    if (log) {
        logged++;
        dropped = suppressed;
        suppressed = 0;
    } else {
        suppressed++;
    }
    pthread_mutex_unlock(&lock);
    if (!log)
        return;
    char peer[64];
    peer_name(req->conn, peer, sizeof(peer));
    srl_log(status >= 500 ? SRL_LOG_WARN : SRL_LOG_INFO, "bridge",
            status >= 500 ? "request failed" : "request refused",
            "route=%s status=%u key=%s peer=%s reason=%s suppressed=%u",
            srl_metrics_route_name(req->route), status, req->key ? srl_log_q(req->key->name) : "-",
            peer, srl_log_q(msg), dropped);
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
    char *body = req->registry_style ? registry_error_json(req, status, msg, extra, &len)
                                     : error_json(msg, extra, &len);
    if (status >= 400)
        log_error_answer(req, status, msg);
    return srl__respond(req, status,
                        req->registry_style ? SRL_REGISTRY_MEDIA_TYPE : "application/json", body,
                        len);
}

void srl__ready_error(srl_req_t *req, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(req->ready_body);
    req->ready_body = req->registry_style
                          ? registry_error_json(req, status, msg, NULL, &req->ready_len)
                          : error_json(msg, NULL, &req->ready_len);
    req->ready_type = req->registry_style ? SRL_REGISTRY_MEDIA_TYPE : "application/json";
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

/* ---- the header deadline ----
 * libmicrohttpd's connection timeout is an idle timeout: a client sending
 * one header byte a second is never cut off. Every connection is tracked
 * from its opening (its socket context); until the access handler has seen
 * a request's whole header, a watchdog thread shuts the socket down once
 * bridge.header_timeout_ms has passed since the opening or the previous
 * answer, and libmicrohttpd closes it on the next read. The entry leaves
 * the list (under the lock) in the CLOSED notification, which libmicrohttpd
 * sends before it closes the descriptor, so a number reused by a new
 * connection is never shut down by mistake. */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    int64_t since_ms; /* opened, or its previous request answered */
    bool in_request;  /* a request's header is in: the request's limits apply */
    bool cut;         /* shut down by the watchdog */
} conn_track_t;

static struct {
    pthread_mutex_t lock;
    conn_track_t *head;
    int64_t timeout_ms;
    pthread_t thread;
    bool started;
    atomic_bool stop;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

static conn_track_t *conn_track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void conn_track_request(struct MHD_Connection *conn, bool in_request)
{
    conn_track_t *t = conn_track_of(conn);
    if (!t)
        return;
    pthread_mutex_lock(&watch.lock);
    t->in_request = in_request;
    t->since_ms = srl_clock_mono_ms();
    pthread_mutex_unlock(&watch.lock);
}

static void *header_watchdog(void *arg)
{
    (void)arg;
    int64_t period = watch.timeout_ms / 4;
    if (period > 250)
        period = 250;
    struct timespec nap = {0, (long)period * 1000000L};
    while (!atomic_load(&watch.stop)) {
        nanosleep(&nap, NULL);
        int64_t now = srl_clock_mono_ms();
        unsigned cut = 0;
        pthread_mutex_lock(&watch.lock);
        for (conn_track_t *t = watch.head; t; t = t->next)
            if (!t->in_request && !t->cut && now - t->since_ms > watch.timeout_ms) {
                shutdown(t->fd, SHUT_RDWR);
                t->cut = true;
                cut++;
            }
        pthread_mutex_unlock(&watch.lock);
        if (cut) {
            srl_metrics_header_timeouts(cut);
            srl_log(SRL_LOG_INFO, "bridge", "connections closed: no request header in time",
                    "count=%u header_timeout_ms=%" PRId64, cut, watch.timeout_ms);
        }
    }
    return NULL;
}

/* ---- what the library would let through ----
 * libmicrohttpd 0.9.75 parses the header block in place and hands out the
 * URL, arguments and header values as C strings, so a NUL byte cuts a
 * value short without a word (/state%00.json was /state; "X-ApiKey:
 * <key>\0junk" was <key>). It reads the body by Transfer-Encoding when
 * there is one and by the first Content-Length otherwise, so a request
 * framed two ways is read one way here and maybe the other way by a proxy
 * in front (request smuggling). Both are refused here, before any route. */

/* libmicrohttpd's URI hook: the request line as received, before it is
 * split and unescaped. The request context starts here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    srl_req_t *req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->b = cls;
    req->conn = conn;
    req->start_ms = srl_clock_mono_ms();
    req->ready_next = -1;
    req->partition = -1;
    req->route = SRL_ROUTE_OTHER;
    /* the URI is unescaped in place later: look for %00 now */
    req->uri_raw = uri;
    req->uri_raw_len = strlen(uri);
    req->uri_nul = strstr(uri, "%00") != NULL;
    return req;
}

/* The NUL bytes in [from, to) are what is left of one line break (CR LF or
 * a bare LF): the next line starts right there. */
static bool only_line_break(uintptr_t from, uintptr_t to, size_t most)
{
    if (to <= from || to - from > most)
        return false;
    for (const char *p = (const char *)from; p < (const char *)to; p++)
        if (*p)
            return false;
    return true;
}

typedef struct header_walk {
    uintptr_t line_end;      /* where the previous line's text stopped */
    const char *nul_in;      /* the header whose value held a NUL byte */
    const char *prev_key;    /* the previous header's name */
    unsigned content_length; /* Content-Length headers */
    unsigned transfer_encoding;
    const char *cl, *te; /* the first value of each */
} header_walk_t;

/* Each header line "Name: value" CR LF is left in place as "Name\0 value"
 * plus one or two NULs for the line break; the headers come in the order
 * received. A value whose string stops before its line does held a NUL
 * byte: the next header does not start right after it. (A folded header,
 * obsolete in HTTP/1.1, is moved by the library and refused the same way.) */
static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    header_walk_t *w = cls;
    (void)kind;
    (void)key_size;
    if (!w->nul_in && !only_line_break(w->line_end, (uintptr_t)key, 2))
        w->nul_in = w->prev_key ? w->prev_key : "the request line";
    w->prev_key = key;
    w->line_end = (uintptr_t)(value ? value + value_size : key + key_size);
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0 && !w->content_length++)
        w->cl = value;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0 && !w->transfer_encoding++)
        w->te = value;
    return MHD_YES;
}

/* Refuse a request whose URL or headers hold a NUL byte or whose body is
 * framed ambiguously: true with a response queued (*rc: what to return,
 * the connection closes after it); false when the request may go on. */
static bool refuse_malformed(srl_req_t *req, const char *method, const char *version,
                             enum MHD_Result *rc)
{
    struct MHD_Connection *conn = req->conn;
    header_walk_t w = {.line_end = (uintptr_t)version + strlen(version)};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, walk_header, &w);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci && !w.nul_in && !only_line_break(w.line_end, (uintptr_t)method + ci->header_size, 4))
        w.nul_in = w.prev_key ? w.prev_key : "the request line";
    req->close = true; /* for every refusal below */

    /* The request line: a %00 anywhere, or a literal NUL (the raw URI
     * stops before the space that precedes the version). */
    if (req->uri_nul ||
        (req->uri_raw && *version &&
         (uintptr_t)(req->uri_raw + req->uri_raw_len) != (uintptr_t)(version - 1))) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "a NUL byte (%%00) in the path or query");
        return true;
    }
    if (w.nul_in) {
        if (strcasecmp(w.nul_in, "X-ApiKey") == 0 ||
            strcasecmp(w.nul_in, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
            *rc = srl__respond_error(req, MHD_HTTP_UNAUTHORIZED, NULL,
                                     "the API key header %s holds a NUL byte", w.nul_in);
        else
            *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                     "a NUL byte in %.64s, or an obsolete folded header line",
                                     w.nul_in);
        return true;
    }
    if (w.content_length > 1) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "%u Content-Length headers: the body's length is ambiguous",
                                 w.content_length);
        return true;
    }
    if (w.transfer_encoding && w.content_length) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "Content-Length together with Transfer-Encoding: the body's "
                                 "length is ambiguous");
        return true;
    }
    if (w.transfer_encoding > 1 || (w.te && strcasecmp(w.te, "chunked") != 0)) {
        *rc = srl__respond_error(req, MHD_HTTP_BAD_REQUEST, NULL,
                                 "Transfer-Encoding \"%.40s\" not supported: only chunked, once",
                                 w.te);
        return true;
    }
    req->close = false;
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    srl_bridge_t *b = cls;
    srl_req_t *req = *con_cls;

    if (!req)
        return MHD_NO; /* out of memory in on_uri */
    if (!req->headers_in) {
        enum MHD_Result rc;
        req->headers_in = true;
        conn_track_request(conn, true);
        if (refuse_malformed(req, method, version, &rc))
            return rc;
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
    srl_req_t *req = *con_cls;
    if (!req)
        return;
    conn_track_request(conn, false); /* the next request's header deadline starts */
    if (!req->headers_in) {
        /* the header never came in whole (closed, timed out, or answered
         * by libmicrohttpd itself): not a request we saw */
        free(req);
        *con_cls = NULL;
        return;
    }
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
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&b->connections, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track_t *t = calloc(1, sizeof(*t));
        if (!t || !ci) {
            free(t); /* untracked: only the idle timeout applies */
            return;
        }
        t->fd = ci->connect_fd;
        t->since_ms = srl_clock_mono_ms();
        pthread_mutex_lock(&watch.lock);
        t->next = watch.head;
        if (watch.head)
            watch.head->prev = t;
        watch.head = t;
        pthread_mutex_unlock(&watch.lock);
        *socket_context = t;
        return;
    }
    atomic_fetch_sub(&b->connections, 1);
    conn_track_t *t = *socket_context;
    if (!t)
        return;
    pthread_mutex_lock(&watch.lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        watch.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&watch.lock);
    free(t);
    *socket_context = NULL;
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

/* Raise the soft open-files limit to the hard one (a limit of 1,024, the
 * systemd default, ran out at about 970 connections and then nobody was
 * answered, /health included), then keep max_connections, plus
 * libmicrohttpd's headroom, below it with FD_RESERVE to spare. */
static void fit_connections(srl_bridge_t *b)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            srl_log(SRL_LOG_WARN, "bridge", "cannot raise the open-files limit",
                    "soft=%llu hard=%llu reason=%s", (unsigned long long)was,
                    (unsigned long long)rl.rlim_max, srl_log_q(strerror(errno)));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    rlim_t spare = FD_RESERVE + CONNECTION_HEADROOM;
    unsigned room = rl.rlim_cur > spare + 1 ? (unsigned)(rl.rlim_cur - spare) : 1;
    if (b->max_connections > room) {
        srl_log(SRL_LOG_WARN, "bridge",
                "bridge.max_connections lowered to fit the open-files limit",
                "configured=%u effective=%u nofile=%llu reserved=%llu", b->max_connections, room,
                (unsigned long long)rl.rlim_cur, (unsigned long long)spare);
        b->max_connections = room;
    }
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
    fit_connections(b);
    if (plain)
        return true;
    const char *prio = srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_PRIORITIES);
    gnutls_priority_t pc;
    const char *err_pos = NULL;
    int gr = gnutls_priority_init(&pc, prio, &err_pos);
    if (gr < 0) {
        snprintf(errstr, errstr_size, "bridge.tls_priorities = \"%s\": %s at \"%.40s\"", prio,
                 gnutls_strerror(gr), err_pos ? err_pos : "");
        return false;
    }
    gnutls_priority_deinit(pc);
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
    unsigned per_ip = (unsigned)srl_config_int(b->cfg, SRL_KEY_BRIDGE_MAX_CONNECTIONS_PER_IP);
    struct MHD_OptionItem opts[20];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)(b->max_connections + CONNECTION_HEADROOM), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, b};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, b};
    if (per_ip)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)per_ip,
                                            NULL};
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
        opts[n++] = (struct MHD_OptionItem){
            MHD_OPTION_HTTPS_PRIORITIES, 0,
            (void *)(uintptr_t)srl_config_str(b->cfg, SRL_KEY_BRIDGE_TLS_PRIORITIES)};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    b->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, b, MHD_OPTION_ARRAY,
                                 opts, MHD_OPTION_END);
    if (!b->daemon) {
        snprintf(errstr, errstr_size,
                 "cannot serve on %s:%d (bridge.listen, bridge.port): address in use, no "
                 "permission, or a TLS certificate/key that does not load (bridge.tls_cert, "
                 "bridge.tls_key, bridge.tls_priorities)",
                 listen, port);
        goto cleanup;
    }
    watch.timeout_ms = srl_config_int(b->cfg, SRL_KEY_BRIDGE_HEADER_TIMEOUT_MS);
    atomic_store(&watch.stop, false);
    watch.started = pthread_create(&watch.thread, NULL, header_watchdog, NULL) == 0;
    if (!watch.started) {
        snprintf(errstr, errstr_size, "cannot start the header watchdog thread");
        MHD_stop_daemon(b->daemon);
        b->daemon = NULL;
        goto cleanup;
    }
    srl_log(SRL_LOG_INFO, "bridge", "listening",
            "address=%s port=%d tls=%s threads=%d max_connections=%u max_connections_per_ip=%u "
            "header_timeout_ms=%" PRId64,
            srl_log_q(listen), port, plain ? "off" : "on", threads, b->max_connections, per_ip,
            watch.timeout_ms);
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
    if (watch.started) {
        atomic_store(&watch.stop, true);
        pthread_join(watch.thread, NULL);
        watch.started = false;
    }
    if (b->daemon) {
        MHD_stop_daemon(b->daemon);
        b->daemon = NULL;
    }
    free(tls_cert_pem);
    free(tls_key_pem);
    tls_cert_pem = tls_key_pem = NULL;
}
