/*
 * http.h - This file is private to sysrepl-bridge: the HTTP(S) server
 * (http.c) - one request's context, replies, suspend/resume, start/stop.
 * The bottom of the request path: it knows no route. The route layer
 * (routes.c) is handed in at start as the function that sees each
 * request's headers; it picks the handler that runs once the body is in.
 */
#ifndef SRL_BRIDGE_HTTP_H
#define SRL_BRIDGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "bridge.h"
#include "metrics.h"
#include "sysrepl/framing.h"

struct srl_bridge_key;
typedef struct srl_req srl_req_t;

/* A route's handler: it queues a response or suspends the request, and
 * returns what libmicrohttpd's access handler must return. */
typedef enum MHD_Result (*srl_http_handler_fn)(srl_req_t *req);
/* The route layer's look at a request whose headers are in: it queues a
 * response (a refusal), or sets req->route, allow and handler and returns
 * MHD_YES to read the body and run the handler. */
typedef enum MHD_Result (*srl_http_headers_fn)(srl_req_t *req, const char *url, const char *method);

/* What a suspended request is waiting for, and what resumed it. */
typedef enum {
    SRL_WAIT_NONE = 0,
    SRL_WAIT_DATA, /* long poll on a partition (tail.c): the handler runs again */
    SRL_WAIT_JOB,  /* a reader job (readers.c): its ready_* answer is sent */
    SRL_WAIT_ACKS  /* push delivery reports (routes_push.c): likewise */
} srl_wait_t;

/* One HTTP request (libmicrohttpd's per-request context). */
struct srl_req {
    srl_bridge_t *b;
    struct MHD_Connection *conn;
    int64_t start_ms;
    unsigned status; /* of the response queued, for metrics/logs */
    bool head;       /* HEAD: headers only */
    bool close;      /* answer with Connection: close (ambiguous framing) */

    /* the request line as received, before libmicrohttpd unescapes it
     * (http.c's URI hook): a NUL byte in it, literal or %00, is refused */
    const char *uri_raw;
    size_t uri_raw_len;
    bool uri_nul;    /* %00 in it */
    bool headers_in; /* the access handler has seen the whole header */

    /* set by the route layer when the headers are in */
    srl_route_t route;                /* metrics/log label (SRL_ROUTE_OTHER: none) */
    const char *allow;                /* Allow header of a 405 */
    srl_http_handler_fn handler;      /* runs when the body is in; NULL: 404 */
    const struct srl_bridge_key *key; /* the caller's key (log its name only) */

    /* path parameters (routes.c) */
    srl_kind_t kind;
    int32_t partition;
    char fingerprint[17];
    int32_t schema_id;   /* {id} */
    char subject[256];   /* {subject}, as given */
    int32_t version;     /* {version}: 1.., or -1 for "latest" */
    bool registry_style; /* errors in the Schema Registry's JSON form */
    int registry_code;   /* its error_code for the next error (0: status) */

    /* the body, up to max_body_bytes */
    srl_framing_buf_t body;
    bool body_too_large;

    /* suspension */
    srl_wait_t wait;
    bool resumed; /* set (under the owner's lock) before resume */
    bool suspended;

    /* pull (routes_pull.c, tail.c, readers.c) */
    int64_t offset;
    size_t max;
    int64_t wait_ms;
    bool want_json;
    int64_t deadline_ms;      /* long poll */
    srl_req_t *wprev, *wnext; /* waiter list of the partition (tail.c) */
    int attempts;             /* window/reader passes taken */

    /* a response computed off the handler thread (reader jobs, push):
     * queued when the request is resumed */
    unsigned ready_status;
    char *ready_body; /* malloc'd; ownership passes to the response */
    size_t ready_len;
    const char *ready_type;
    int64_t ready_next, ready_high; /* pull: header values (-1: none) */
    size_t ready_count;

    void *route_state; /* a route's own state (push job); freed by it */
    void (*route_free)(srl_req_t *req);
};

/* Parse a whole decimal number in [lo, hi]; no sign, no spaces (path
 * parameters, header values). */
bool srl__parse_num(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Queue a response. body: malloc'd, ownership passes (NULL for none).
 * Returns what the access handler must return. */
enum MHD_Result srl__respond(srl_req_t *req, unsigned status, const char *content_type, char *body,
                             size_t len);
/* {"error": "<message>"} with the status; extra: a JSON object whose fields
 * are added (ownership passes; NULL for none). With req->registry_style:
 * {"error_code": registry_code or status, "message": "<message>"} as
 * application/vnd.schemaregistry.v1+json (the Schema Registry's errors). */
enum MHD_Result srl__respond_error(srl_req_t *req, unsigned status, void *extra, const char *fmt,
                                   ...) __attribute__((format(printf, 4, 5)));
/* Queue a ready_* response computed elsewhere (after a resume). */
enum MHD_Result srl__respond_ready(srl_req_t *req);
/* The Schema Registry API's media type. */
#define SRL_REGISTRY_MEDIA_TYPE "application/vnd.schemaregistry.v1+json"

/* Prepare a JSON error as the ready_* response (for a worker thread). */
void srl__ready_error(srl_req_t *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Suspend/resume: the caller holds the lock that orders them for this
 * request (tail lock, readers lock, push job lock). */
void srl__suspend(srl_req_t *req, srl_wait_t why);
void srl__resume(srl_req_t *req);

/* The server's own refusals, for the header function to place in its
 * order of checks. Each returns true with a response queued (*rc: what to
 * return), false when the request may go on.
 *   busy:      503 shutting down, or over bridge.max_connections
 *   too_large: 413, Content-Length over bridge.max_body_bytes */
bool srl__http_refuse_busy(srl_req_t *req, enum MHD_Result *rc);
bool srl__http_refuse_too_large(srl_req_t *req, enum MHD_Result *rc);

/* Before anything starts: the TLS/plain choice, the PEM files and
 * bridge.tls_priorities are checked; the open-files limit (RLIMIT_NOFILE)
 * is raised to its hard limit, and b->max_connections lowered (logged) to
 * what it leaves room for. */
bool srl_bridge_http_check(srl_bridge_t *b, char *errstr, size_t errstr_size);
/* Serve; on_headers (the route layer) sees every request first. */
bool srl_bridge_http_start(srl_bridge_t *b, srl_http_headers_fn on_headers, char *errstr,
                           size_t errstr_size);
void srl_bridge_http_stop(srl_bridge_t *b);

#endif
