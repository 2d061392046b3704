/*
 * rebuild.h - private to sysrepl-consumer: make the spoke an exact mirror
 * of the topics. Used for the first sync (no offsets in the store), for
 * `--replay`, and when the spoke was away longer than the topics keep
 * tombstones (delete.retention.ms), so it may have missed deletes.
 *
 * Each topic is read from its start to the high watermark taken when the
 * rebuild begins, and streamed (COPY) into the store; within ONE
 * transaction the content tables of the rebuilt kinds are emptied (with
 * sysrepl.applying on, so nothing is captured), refilled with the latest
 * version of every key whose last record is not a tombstone, the
 * tombstones table is refilled from the tombstones still on the topics, and
 * the offsets are set to where the read ended. A reader sees the old
 * content or the new, never a mix; a crash or a stop leaves the old.
 *
 * Memory stays bounded whatever the topic size: rows stream to the server;
 * the only per-record state is a 64-bit hash per key (to spot the rare key
 * seen twice, whose records go through the version-guarded apply path
 * instead), and those records and the tombstones wait in a temporary file.
 */
#ifndef SRL_CONSUMER_REBUILD_H
#define SRL_CONSUMER_REBUILD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sysrepl/codec.h"

#include "schemas_load.h"
#include "source.h"

typedef struct srl_rebuild_topic {
    srl_kind_t kind;
    const char *topic;
    int partitions;
} srl_rebuild_topic_t;

typedef enum srl_rebuild_rc {
    SRL_REBUILD_OK = 0,
    SRL_REBUILD_STOPPED,      /* *stop was set: rolled back, nothing changed */
    SRL_REBUILD_SOURCE_RETRY, /* the transport is away: try again later */
    SRL_REBUILD_STORE_RETRY,  /* the store is away: reconnect, try again */
    SRL_REBUILD_FATAL
} srl_rebuild_rc_t;

typedef struct srl_rebuild_stats {
    int64_t records;    /* records read */
    int64_t rows;       /* rows in the content tables afterwards */
    int64_t tombstones; /* tombstones read */
    int64_t diverted;   /* records applied through the version guard */
    int64_t dead_letters;
    int64_t fetch_ms; /* time spent waiting for the transport */
    int64_t store_ms; /* time spent handing rows to the store */
} srl_rebuild_stats_t;

/* Rebuild the kinds of topics[0..n) (in that order: types first) on conn,
 * which must have been through srl_apply_prepare. batch_size: records per
 * fetch. lag_columns: consumer_offsets has the lag columns. */
srl_rebuild_rc_t srl_rebuild(srl_source_t *src, PGconn *conn, srl_registry_t *reg,
                             srl_schemas_loader_t *loader, const srl_rebuild_topic_t *topics,
                             size_t n, const char *local_origin, bool lag_columns,
                             size_t batch_size, volatile sig_atomic_t *stop,
                             srl_rebuild_stats_t *stats, char *errstr, size_t errstr_size);

#endif
