/*
 * instance.h - one instance's replication state (schemas/instance.avsc), as
 * published on <prefix>.instances and shown by `sysrepl fleet`, the
 * bridge's /overview and /api/replication/v1/instances.
 *
 * The record is keyed by the instance id. Value framing is the content
 * records' (codec.h: single-object C3 01 + fingerprint); the schema is
 * published to <prefix>.schemas like the content schemas. A tombstone
 * forgets an instance (`sysrepl fleet forget ID`).
 *
 * Errors: functions returning bool write a reason into errstr.
 */
#ifndef SRL_INSTANCE_H
#define SRL_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/buf.h"
#include "sysrepl/model.h"

typedef enum srl_instance_role {
    SRL_INSTANCE_ROLE_UNKNOWN = 0,
    SRL_INSTANCE_ROLE_HUB = 1,
    SRL_INSTANCE_ROLE_SPOKE = 2
} srl_instance_role_t;

typedef enum srl_instance_transport {
    SRL_INSTANCE_TRANSPORT_UNKNOWN = 0,
    SRL_INSTANCE_TRANSPORT_KAFKA = 1,
    SRL_INSTANCE_TRANSPORT_HTTP = 2
} srl_instance_transport_t;

typedef struct srl_partition_state {
    int32_t partition;
    int64_t next_offset;
    int64_t high_watermark; /* -1: unknown */
} srl_partition_state_t;

typedef struct srl_kind_state {
    srl_kind_t kind; /* SRL_KIND_COUNT: a kind this version does not know */
    int64_t rows;
    uint64_t digest;
    int64_t position;
    bool has_delivered_version;
    int64_t delivered_version;
    srl_partition_state_t *partitions; /* owned */
    size_t n_partitions;
    int64_t lag_records;
    double lag_seconds;
    int64_t caught_up_at; /* ms; 0: never / absent */
} srl_kind_state_t;

typedef struct srl_instance {
    char *id; /* owned, never NULL once decoded */
    srl_instance_role_t role;
    srl_instance_transport_t transport;
    char *sysrepl_version; /* owned */
    char *host;            /* owned */
    int64_t started_at;    /* ms */
    int64_t heartbeat_at;  /* ms */
    int64_t interval_ms;
    bool running;
    bool paused;
    int64_t epoch;
    bool has_undelivered;
    int64_t undelivered;
    int64_t undelivered_oldest_at;          /* ms; 0: absent */
    srl_kind_state_t kinds[SRL_KIND_COUNT]; /* indexed by srl_kind_t */
    bool has_kind[SRL_KIND_COUNT];
    int64_t dead_letters;
    char *dead_letter_reason; /* owned; NULL: none */
    int64_t dead_letter_at;   /* ms; 0: none */
    char *last_error;         /* owned; NULL: none */
    int64_t last_error_at;    /* ms; 0: none */
    char **log;               /* owned; newest first, at most SRL_INSTANCE_LOG_MAX */
    size_t n_log;
} srl_instance_t;

#define SRL_INSTANCE_LOG_MAX 10

void srl_instance_init(srl_instance_t *inst);
void srl_instance_clear(srl_instance_t *inst); /* frees, then as init */

/* The whole value (framing included) for <prefix>.instances. */
bool srl_instance_encode(const srl_instance_t *inst, srl_buf_t *out, char *errstr,
                         size_t errstr_size);
/* A value written by any compatible schema version (resolved by field name,
 * defaults filled, as codec.h does for content). */
bool srl_instance_decode(const void *value, size_t len, srl_instance_t *out, char *errstr,
                         size_t errstr_size);

/* What an operator is told about one instance, worst first in severity
 * order of the checks (fleet.c decides; docs/operations.md, "The fleet"). */
typedef enum srl_fleet_state {
    SRL_FLEET_IN_SYNC = 0,
    SRL_FLEET_CATCHING_UP,
    SRL_FLEET_PAUSED,
    SRL_FLEET_DRIFT,
    SRL_FLEET_STALE,
    SRL_FLEET_ERROR,
    SRL_FLEET_STOPPED
} srl_fleet_state_t;

const char *srl_fleet_state_name(srl_fleet_state_t s); /* "in sync", ... */
bool srl_fleet_state_healthy(srl_fleet_state_t s);

/* One instance's state judged against the hub's record (hub may be NULL:
 * no hub known) at now_ms. *drift_kind gets the first kind whose digest
 * differs at an equal position (SRL_KIND_COUNT: none). */
srl_fleet_state_t srl_fleet_judge(const srl_instance_t *inst, const srl_instance_t *hub,
                                  int64_t now_ms, srl_kind_t *drift_kind);

/* One instance as a JSON object (the /api/replication/v1/instances item and
 * `sysrepl fleet --json` row), state and digest match included. */
bool srl_instance_to_json(const srl_instance_t *inst, srl_fleet_state_t state,
                          srl_kind_t drift_kind, srl_buf_t *out);

#endif
