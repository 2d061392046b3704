/*
 * bridge.h - This file is private to sysrepl-bridge: the parts of the
 * bridge and how they meet.
 *
 *   main.c          config, start-up checks, signals, the producer poll loop
 *   http.c          the libmicrohttpd server: routing, limits, TLS, replies
 *   auth.c          API keys (bridge.keys_file) and srl_bridge_authorize
 *   tail.c          one consumer tailing every replicated partition into a
 *                   bounded in-memory window, and the long-poll waiters
 *   readers.c       a small pool of consumers for reads below the window
 *                   (rebuilds) and for blocking broker calls
 *   routes_pull.c   GET  .../topics/{kind}/partitions/{p}/records
 *   routes_push.c   POST .../topics/{kind}/records
 *   routes_state.c  GET  .../state, .../schemas/{fp}, /health
 *   metrics.c       counters and GET /metrics (Prometheus text)
 *
 * Threads: libmicrohttpd's pool (bridge.http_threads, epoll) runs every
 * request handler and never blocks on the broker: a request that must wait
 * (a long poll, a read below the window, a push waiting for acks, a broker
 * query) is suspended with MHD_suspend_connection and resumed by the thread
 * that completes it (tail, reader, or the producer's delivery reports on
 * the main thread). No thread per waiting request.
 */
#ifndef SRL_BRIDGE_H
#define SRL_BRIDGE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/framing.h"
#include "sysrepl/model.h"

#define SRL_BRIDGE_API_PREFIX "/api/replication/v1"
#define SRL_BRIDGE_TOPIC_MAX 250
/* The schema topic, served by the pull route under the name "schemas"
 * (key: fingerprint hex, value: schema JSON) so an http spoke reads it like
 * a Kafka spoke does. Used as a kind index into topics[]. */
#define SRL_BRIDGE_SCHEMAS ((srl_kind_t)SRL_KIND_COUNT)

typedef struct srl_bridge_keys srl_bridge_keys_t;
typedef struct srl_bridge_tail srl_bridge_tail_t;
typedef struct srl_bridge_readers srl_bridge_readers_t;
typedef struct srl_req srl_req_t;

/* ---- auth.c ---- */

#define SRL_PERM_PULL 0x1u
#define SRL_PERM_PUSH 0x2u
#define SRL_PERM_METRICS 0x4u /* GET /metrics, nothing else (monitoring) */

typedef struct srl_bridge_key {
    char name[64];
    uint8_t hash[32];   /* SHA-256 of the key */
    unsigned perms;     /* SRL_PERM_* */
    unsigned kinds;     /* bit (1 << kind) per allowed kind */
} srl_bridge_key_t;

typedef enum {
    SRL_AUTH_OK = 0,
    SRL_AUTH_UNAUTHENTICATED, /* 401: no key, or a key we do not know */
    SRL_AUTH_FORBIDDEN        /* 403: known key without the permission or kind */
} srl_auth_result_t;

/* Parse one line of the keys file ("name sha256-hex perms [kinds]", '#'
 * starts a comment) into *k; line is modified. 1: a key; 0: a blank or
 * comment line; -1: refused, errstr says why (without file and line). */
int srl_bridge_key_parse_line(char *line, srl_bridge_key_t *k, char *errstr, size_t errstr_size);
/* Load the keys file. NULL with errstr naming the file and line. */
srl_bridge_keys_t *srl_bridge_keys_load(const char *path, char *errstr, size_t errstr_size);
void srl_bridge_keys_free(srl_bridge_keys_t *keys); /* NULL accepted */
/* Chain keys onto *list (retired tables, freed together by
 * srl_bridge_keys_free_list). */
void srl_bridge_keys_retire(srl_bridge_keys_t **list, srl_bridge_keys_t *keys);
void srl_bridge_keys_free_list(srl_bridge_keys_t *list);
size_t srl_bridge_keys_count(const srl_bridge_keys_t *keys);

/* Authorise a request: x_apikey / authorization are the X-ApiKey and
 * Authorization header values (either may be NULL). perm: SRL_PERM_* bits,
 * any one of which is enough (0: any known key will do); kind: the kind asked for, or -1 for none.
 * On OK and FORBIDDEN *key_out is the matched key (never log the key
 * itself, log key_out->name); errstr says why a request was refused. */
srl_auth_result_t srl_bridge_authorize(const srl_bridge_keys_t *keys, const char *x_apikey,
                                       const char *authorization, unsigned perm, int kind,
                                       const srl_bridge_key_t **key_out, char *errstr,
                                       size_t errstr_size);

/* SHA-256 of buf as 64 lowercase hex digits plus NUL into hex[65]. */
void srl_bridge_sha256_hex(const void *buf, size_t len, char hex[65]);

/* ---- the bridge ---- */

typedef struct srl_bridge {
    srl_config_t *cfg;
    const char *prefix;
    unsigned kinds;                        /* replicated kinds: bit (1 << kind) */
    char topics[SRL_KIND_COUNT + 1][SRL_BRIDGE_TOPIC_MAX + 1]; /* + SRL_BRIDGE_SCHEMAS */
    char schemas_topic[SRL_BRIDGE_TOPIC_MAX + 1];

    /* The keys in use, replaced whole on SIGHUP (bridge.keys_file read
     * again). Requests keep pointing into the table they were checked
     * against, so replaced tables are kept (retired) until exit. */
    _Atomic(srl_bridge_keys_t *) keys;
    srl_bridge_keys_t *retired_keys;
    volatile sig_atomic_t reload;          /* SIGHUP: read the keys file again */
    rd_kafka_t *rk;                        /* the producer (push, admin, metadata) */
    srl_registry_t *reg;                   /* guarded by reg_lock */
    pthread_mutex_t reg_lock;
    bool schemas_published;                /* ours are on <prefix>.schemas (reg_lock) */

    srl_bridge_tail_t *tail;
    srl_bridge_readers_t *readers;
    struct MHD_Daemon *daemon;

    /* limits, read once at start */
    size_t max_body_bytes;
    size_t max_batch_records;
    unsigned max_connections;
    int64_t request_timeout_ms;
    int64_t long_poll_max_ms;

    atomic_int connections;                /* open HTTP connections */
    volatile sig_atomic_t stop;            /* set by signals */
    atomic_bool fatal;                     /* a worker hit an unrecoverable error */
    atomic_bool stopping;                  /* new requests get 503 */
} srl_bridge_t;

/* Register/lookup the kind of a topic of ours; -1 when not ours. */
int srl__bridge_topic_kind(const srl_bridge_t *b, const char *topic);

/* ---- http.c: requests ---- */

typedef enum {
    SRL_ROUTE_PULL = 0,
    SRL_ROUTE_PUSH,
    SRL_ROUTE_STATE,
    SRL_ROUTE_SCHEMAS,
    SRL_ROUTE_HEALTH,
    SRL_ROUTE_METRICS,
    SRL_ROUTE_OTHER,
    SRL_ROUTE_COUNT
} srl_route_t;

const char *srl__route_name(srl_route_t route);

/* What a suspended request is waiting for, and what resumed it. */
typedef enum {
    SRL_WAIT_NONE = 0,
    SRL_WAIT_DATA,     /* long poll on a partition (tail.c) */
    SRL_WAIT_JOB,      /* a reader job (readers.c) */
    SRL_WAIT_ACKS      /* push delivery reports (routes_push.c) */
} srl_wait_t;

/* One HTTP request (libmicrohttpd's per-request context). */
struct srl_req {
    srl_bridge_t *b;
    struct MHD_Connection *conn;
    srl_route_t route;
    int64_t start_ms;
    unsigned status;          /* of the response queued, for metrics/logs */
    const srl_bridge_key_t *key;
    bool head;                /* HEAD: headers only */

    /* path parameters */
    srl_kind_t kind;
    int32_t partition;
    char fingerprint[17];

    /* the body, up to max_body_bytes */
    srl_framing_buf_t body;
    bool body_too_large;
    bool headers_done;        /* first call (headers) handled */

    /* suspension */
    srl_wait_t wait;
    bool resumed;             /* set (under the owner's lock) before resume */
    bool suspended;

    /* pull */
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
    char *ready_body;          /* malloc'd; ownership passes to the response */
    size_t ready_len;
    const char *ready_type;
    int64_t ready_next, ready_high; /* pull: header values (-1: none) */
    size_t ready_count;

    void *route_state;         /* a route's own state (push job); freed by it */
    void (*route_free)(srl_req_t *req);
};

/* Monotonic milliseconds. */
int64_t srl__now_ms(void);

/* Queue a response. body: malloc'd, ownership passes (NULL for none).
 * Returns what the access handler must return. */
enum MHD_Result srl__respond(srl_req_t *req, unsigned status, const char *content_type,
                             char *body, size_t len);
/* {"error": "<message>"} with the status; extra: a JSON object whose fields
 * are added (ownership passes; NULL for none). */
enum MHD_Result srl__respond_error(srl_req_t *req, unsigned status, void *extra,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Queue a ready_* response computed elsewhere (after a resume). */
enum MHD_Result srl__respond_ready(srl_req_t *req);
/* Prepare a JSON error as the ready_* response (for a worker thread). */
void srl__ready_error(srl_req_t *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Suspend/resume: the caller holds the lock that orders them for this
 * request (tail lock, readers lock, push job lock). */
void srl__suspend(srl_req_t *req, srl_wait_t why);
void srl__resume(srl_req_t *req);

/* The TLS/plain choice and the PEM files, checked before anything starts. */
bool srl_bridge_http_check(srl_bridge_t *b, char *errstr, size_t errstr_size);
bool srl_bridge_http_start(srl_bridge_t *b, char *errstr, size_t errstr_size);
void srl_bridge_http_stop(srl_bridge_t *b);

/* ---- routes ---- */

enum MHD_Result srl__route_pull(srl_req_t *req);
enum MHD_Result srl__route_push(srl_req_t *req);
enum MHD_Result srl__route_state(srl_req_t *req);
enum MHD_Result srl__route_schemas(srl_req_t *req);
enum MHD_Result srl__route_health(srl_req_t *req);
enum MHD_Result srl__route_metrics(srl_req_t *req);

/* Producer delivery report (routes_push.c), set on the producer's conf. */
void srl__push_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* Publish our writer schemas to <prefix>.schemas, once (blocking). */
bool srl__bridge_publish_schemas(srl_bridge_t *b, char *errstr, size_t errstr_size);

/* Encode records as a pull response body into req->ready_* (binary
 * framing or JSON per req->want_json). Locks the registry for JSON. */
bool srl__pull_encode(srl_req_t *req, const srl_record_t *records, size_t count,
                      int64_t next_offset, int64_t high);

/* ---- tail.c ---- */

typedef enum {
    SRL_TAIL_SERVED,     /* ready_* filled from the window */
    SRL_TAIL_WAITING,    /* registered as a waiter and suspended */
    SRL_TAIL_BELOW,      /* offset is below the window: ask the readers */
    SRL_TAIL_NOT_READY,  /* partition not tailed yet (broker away at start) */
    SRL_TAIL_BEYOND      /* offset beyond the high watermark */
} srl_tail_rc_t;

srl_bridge_tail_t *srl_bridge_tail_start(srl_bridge_t *b, size_t window_bytes, char *errstr,
                                         size_t errstr_size);
void srl_bridge_tail_stop(srl_bridge_tail_t *t); /* resumes every waiter first; NULL ok */
/* Resume every waiter now and take no new ones (shutdown). */
void srl_bridge_tail_wake_all(srl_bridge_tail_t *t);
/* Serve req (offset, max, wait) from the window, or make it wait. */
srl_tail_rc_t srl_bridge_tail_pull(srl_bridge_tail_t *t, srl_req_t *req, bool may_wait,
                                   int64_t *high_out);
/* Partition count of a kind's topic as tailed (0 until known). */
int srl_bridge_tail_partitions(srl_bridge_tail_t *t, srl_kind_t kind);
/* High watermark last seen (-1 unknown). */
int64_t srl_bridge_tail_high(srl_bridge_tail_t *t, srl_kind_t kind, int32_t partition);
bool srl_bridge_tail_ready(srl_bridge_tail_t *t);
void srl_bridge_tail_stats(srl_bridge_tail_t *t, size_t *records, size_t *bytes,
                           size_t *waiters);

/* ---- readers.c ---- */

typedef void (*srl_job_fn)(srl_bridge_t *b, rd_kafka_t *rk, srl_req_t *req);

srl_bridge_readers_t *srl_bridge_readers_start(srl_bridge_t *b, int count, char *errstr,
                                               size_t errstr_size);
/* Stop: queued jobs are answered 503, running ones finish, threads end;
 * later submissions are answered 503 at once. Idempotent; NULL ok. */
void srl_bridge_readers_stop(srl_bridge_readers_t *r);
void srl_bridge_readers_free(srl_bridge_readers_t *r); /* after stop; NULL ok */
/* Suspend req and run a read of (req->kind, req->partition, req->offset,
 * req->max) on a reader; the reader fills req->ready_* and resumes req. */
void srl_bridge_readers_pull(srl_bridge_readers_t *r, srl_req_t *req);
/* Suspend req and run fn(b, rk, req) on a reader (fn fills ready_*). */
void srl_bridge_readers_call(srl_bridge_readers_t *r, srl_req_t *req, srl_job_fn fn);
size_t srl_bridge_readers_queued(srl_bridge_readers_t *r);

/* ---- metrics.c ---- */

void srl_metrics_request(srl_route_t route, unsigned status, int64_t elapsed_ms);
void srl_metrics_records_served(srl_kind_t kind, size_t n);
void srl_metrics_records_accepted(srl_kind_t kind, size_t n);
void srl_metrics_push_rejected(void);
void srl_metrics_kafka_error(void);
/* The Prometheus text of every metric; malloc'd, *len set. */
char *srl_metrics_render(srl_bridge_t *b, size_t *len);
/* One logfmt stats line. */
void srl_metrics_log_stats(srl_bridge_t *b);

#endif
