/*
 * snapshot.h - publish the hub's full state and tombstone what the topics
 * hold beyond it. This file is private to sysrepl-producer.
 *
 * For each replicated kind: every content row is published with its own
 * version; then the topic is read from its beginning to its end, and every
 * key whose last record there is not a tombstone and that the store does
 * not hold gets a tombstone with a fresh version (nextval of
 * sysrepl_version, taken while the table is locked against writers so no
 * concurrent insert of that key can carry a lower version).
 * Runs before the drain loop, under the producer lock, so nothing else
 * publishes meanwhile; outbox rows are left for the drain (republishing
 * them is harmless).
 */
#ifndef SRL_PRODUCER_SNAPSHOT_H
#define SRL_PRODUCER_SNAPSHOT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "sink.h"
#include "sysrepl/codec.h"
#include "sysrepl/store.h"

typedef struct srl_snapshot_stats {
    int64_t published[SRL_KIND_COUNT];
    int64_t tombstoned[SRL_KIND_COUNT];
} srl_snapshot_stats_t;

/* Returns the store's class of error (OK on success; FATAL for a sink or
 * codec failure, with errstr). Stops early, with RETRY, when *stop is set.
 * topics_empty: the caller saw every replicated topic empty, so there is
 * nothing to tombstone and the read-back is skipped (a sink without
 * scan_keys, such as http, can only snapshot in that case). */
srl_store_rc_t srl_snapshot_run(srl_store_t *st, srl_sink_t *sink, srl_registry_t *reg,
                                unsigned kind_mask, const char *origin, int batch_size,
                                bool topics_empty, volatile sig_atomic_t *stop,
                                srl_snapshot_stats_t *stats, char *errstr, size_t errstr_size);

#endif
