/*
 * bridge.h - This file is private to sysrepl-bridge: the bridge's shared
 * context (config, topics, the producer, the parts it started) and the map
 * of its parts, bottom layer first. A file calls only into the layers below
 * its own, and includes only the headers of what it uses:
 *
 *   auth.c          API keys (bridge.keys_file) and srl_bridge_authorize
 *   metrics.c       counters, the Prometheus text and the stats line
 *   push_decode.c   decoding and checking a push body (no HTTP in it)
 *   http.c          the libmicrohttpd server: requests, limits, TLS,
 *                   suspend/resume, replies (JSON errors); no routes in it
 *   pull_encode.c   records as a pull answer (binary framing or JSON)
 *   tail.c          one consumer tailing every replicated partition into a
 *                   bounded in-memory window, and the long-poll waiters
 *   readers.c       a small pool of consumers for reads below the window
 *                   (rebuilds) and for blocking broker calls (beside tail.c)
 *   routes.c        the route table: path, method, permission, handler;
 *                   matching, authorisation, path parameters
 *   routes_pull.c   GET  .../topics/{kind}/partitions/{p}/records
 *   routes_push.c   POST .../topics/{kind}/records
 *   routes_state.c  GET  .../state, .../schemas/{fp}, /health, /metrics
 *   routes_registry.c  the Confluent Schema Registry API (/schemas/ids/...,
 *                   /subjects..., /config) from <prefix>.schemas
 *   main.c          config, start-up checks, signals, the producer poll
 *                   loop; wires the parts together
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

#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/model.h"

#define SRL_BRIDGE_API_PREFIX "/api/replication/v1"
#define SRL_BRIDGE_TOPIC_MAX 250
/* The schema topic, served by the pull route under the name "schemas"
 * (key: fingerprint hex, value: schema JSON) so an http spoke reads it like
 * a Kafka spoke does. Used as a kind index into topics[]. */
#define SRL_BRIDGE_SCHEMAS ((srl_kind_t)SRL_KIND_COUNT)

typedef struct srl_bridge_keys srl_bridge_keys_t;       /* auth.h */
typedef struct srl_bridge_tail srl_bridge_tail_t;       /* tail.h */
typedef struct srl_bridge_readers srl_bridge_readers_t; /* readers.h */
struct MHD_Daemon;

typedef struct srl_bridge {
    srl_config_t *cfg;
    const char *prefix;
    unsigned kinds; /* replicated kinds: bit (1 << kind) */
    char topics[SRL_KIND_COUNT + 1][SRL_BRIDGE_TOPIC_MAX + 1]; /* + SRL_BRIDGE_SCHEMAS */
    char schemas_topic[SRL_BRIDGE_TOPIC_MAX + 1];

    /* The keys in use, replaced whole on SIGHUP (bridge.keys_file read
     * again). Requests keep pointing into the table they were checked
     * against, so replaced tables are kept (retired) until exit. */
    _Atomic(srl_bridge_keys_t *) keys;
    srl_bridge_keys_t *retired_keys;
    volatile sig_atomic_t reload; /* SIGHUP: read the keys file again */
    rd_kafka_t *rk;               /* the producer (push, admin, metadata) */
    srl_registry_t *reg;          /* guarded by reg_lock */
    pthread_mutex_t reg_lock;
    bool schemas_published; /* ours are on <prefix>.schemas (reg_lock) */

    srl_bridge_tail_t *tail;
    srl_bridge_readers_t *readers;
    struct MHD_Daemon *daemon;

    /* limits: the reloadable ones are atomics, stored again on SIGHUP by
     * the main thread (srl_config_reload) while the HTTP threads read them;
     * max_connections is read once at start */
    _Atomic size_t max_body_bytes;
    _Atomic size_t max_batch_records;
    unsigned max_connections;
    bool confluent; /* value.format = confluent: pushes written so (read once) */
    _Atomic int64_t request_timeout_ms; /* per request; the server's idle
                                         * connection timeout keeps the
                                         * value it started with */
    _Atomic int64_t long_poll_max_ms;

    atomic_int connections;     /* open HTTP connections */
    volatile sig_atomic_t stop; /* set by signals */
    atomic_bool fatal;          /* a worker hit an unrecoverable error */
    atomic_bool stopping;       /* new requests get 503 */
} srl_bridge_t;

#endif
