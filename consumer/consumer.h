/*
 * consumer.h - private to the sysrepl-consumer daemon (not to its core
 * library): the daemon's state, and the rooms that share it.
 *
 *   main.c     arguments, setup, and the main loop
 *   signals.c  what each signal means (flags), and the naps that heed them
 *   connect.c  the store connection and the topics' partitions, waited for
 *   sync.c     rebuilds: which topics need one (first sync, --replay, the
 *              tombstone horizon) and running them
 *   horizon.c  the tombstone horizon: evidence of being caught up, each
 *              topic's delete.retention.ms, the decision to rebuild
 *   batch.c    a fetched batch into the store: stage, commit with the
 *              offsets, bisect rows the store refuses
 *   stats.c    the periodic stats line
 *
 * The core library below (apply.c, rebuild.c, offsets.c, source_*.c, ...)
 * knows nothing of this struct.
 */
#ifndef SRL_CONSUMER_CONSUMER_H
#define SRL_CONSUMER_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/buf.h"
#include "sysrepl/clock.h"
#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/logq.h"
#include "sysrepl/store.h"

#include "apply.h"
#include "deadletter.h"
#include "offsets.h"
#include "schemas_load.h"
#include "source.h"

#define SRL_CONSUMER_META_TIMEOUT_MS 10000
#define SRL_CONSUMER_BACKOFF_MIN_MS 100
#define SRL_CONSUMER_BACKOFF_MAX_MS 5000

/* signals.c: set by SIGTERM/SIGINT (every wait in the daemon checks it)
 * and by SIGHUP (the main loop reloads the config). */
extern volatile sig_atomic_t srl__consumer_stop;
extern volatile sig_atomic_t srl__consumer_reload;
void srl__consumer_signals_install(void);

typedef struct topic_state {
    srl_kind_t kind;
    char name[256];
    int partitions;
    int64_t retention_ms;      /* delete.retention.ms; -1: not known yet */
    int64_t retention_read_at; /* boot-clock ms of the last successful read; 0: never */
} topic_state_t;

/* What the horizon knows of one position (horizon.c). Times are wall
 * clock (ms since the epoch, comparable with the store's caught_up_at) and
 * CLOCK_BOOTTIME (keeps counting while the machine sleeps; immune to
 * wall-clock jumps; 0 when this process did not see the moment). */
typedef struct evidence {
    int64_t caught_wall, caught_boot; /* newest committed evidence; wall 0: never */
    int64_t probe_high;               /* pending probe: high watermark asked ... */
    int64_t probe_wall, probe_boot;   /* ... at this moment; probe_high -1: none */
    uint64_t probe_gen;               /* which probe round set the pending probe */
    uint64_t done_gen;                /* the newest probe round this position met */
} evidence_t;

typedef struct consumer {
    srl_config_t *cfg; /* reloaded on SIGHUP (main.c) */
    bool replay;
    bool until_caught_up;
    char instance_id[128];
    char local_origin[128];
    const char *dsn;
    srl_store_t *st;
    bool lag_columns;
    srl_registry_t *reg;
    srl_source_t *src;
    const char *source_name; /* "the broker" or "the bridge", for messages */
    bool kafka_denied;       /* a topic was refused by the broker's authorizer */
    srl_schemas_loader_t *loader;
    srl_apply_t *apply;
    topic_state_t topics[SRL_KIND_COUNT];
    size_t ntopics;
    /* one position per partition of every topic, topic by topic */
    srl_source_pos_t *pos;
    size_t *pos_topic;    /* index into topics[] of each position */
    int64_t *pos_last_ts; /* timestamp of the newest record applied (ms) */
    evidence_t *ev;
    size_t npos;
    /* probes of the high watermarks (horizon.c) */
    uint64_t probe_gen;      /* successful probe rounds so far */
    int64_t last_probe_boot; /* when the last probe was tried */
    int64_t last_probe_ok_boot;
    /* the source (broker or bridge) unreachable: since when, last warning */
    bool source_away;
    int64_t source_away_boot, source_warned_boot;
    srl_logq_t *logq; /* the lines for replication_log, written with the next commit */
    srl_deadletters_t dl;
    srl_source_batch_t batch;
    srl_buf_t extra;
    /* stats since start and since the last stats line */
    int64_t total_records, total_upserted, total_deleted, total_stale, total_dead;
    int64_t total_split; /* batches applied on more than one session */
    int64_t total_rebuilds;
    int64_t window_records, window_start_ms, last_stats_ms;
    int64_t log_purge_at_ms; /* next replication_log purge (mono ms); 0: at once */
    int64_t lag_records;
    double lag_seconds;
    /* where the loop's time goes since start: waiting for records
     * (fetch), decoding and formatting them (decode), the apply
     * transaction (store) */
    int64_t fetch_ms, decode_ms, store_ms;
} consumer_t;

/* Sleep up to ms, waking early on a stop signal. */
void srl__consumer_nap(int64_t ms);

/* connect.c */
bool srl__consumer_store_connect(consumer_t *c);
bool srl__consumer_find_partitions(consumer_t *c);

/* sync.c: read the offsets and rebuild the topics that need it: no offsets
 * (first sync), --replay (once), beyond the tombstone horizon, or in
 * force_mask (bit t: topics[t], decided by the caller). 0 on success, 1 to
 * retry (something is away), -1 fatal or stopped. */
int srl__consumer_sync(consumer_t *c, unsigned force_mask);

/* horizon.c */
/* Take the store's offsets as the positions and the committed evidence. */
void srl__horizon_load(consumer_t *c, const srl_offset_row_t *rows, size_t n);
/* Read delete.retention.ms of topics not read within the last minute (all
 * when force). Failures keep the last value and are logged. */
void srl__horizon_read_retention(consumer_t *c, bool force);
/* The topics (bit t: topics[t]) among mask whose last evidence of being
 * caught up is older than their delete.retention.ms: deletes may have been
 * compacted away unseen. Logs why for each. */
unsigned srl__horizon_crossed(consumer_t *c, unsigned mask);
/* Ask the source for every high watermark now, if one is due. */
void srl__horizon_probe_if_due(consumer_t *c, bool cached_caught_up);
/* Evidence time (wall ms, 0: none) that position i, having reached
 * offset, was caught up; does not change the state. */
int64_t srl__horizon_stamp(const consumer_t *c, size_t i, int64_t offset);
/* The positions work[] are committed: pending probes they met become
 * evidence. */
void srl__horizon_committed(consumer_t *c, const srl_source_pos_t *work);
/* A pending probe met by the committed positions but not yet written. */
bool srl__horizon_unwritten(const consumer_t *c);
/* Every position met the newest probe round, and that round is recent. */
bool srl__horizon_caught_up(const consumer_t *c, size_t i);
/* The source answered (records came, or a probe): say so if it was away. */
void srl__horizon_source_back(consumer_t *c);
/* The source failed (fetch or probe): say so, rate-limited. */
void srl__horizon_source_failed(consumer_t *c, const char *err);

/* batch.c */
/* Apply records[lo, hi) of b from positions work[] (advanced on success),
 * bisecting rows the store refuses down to the one record, dead-lettered.
 * advance_next: the range ends the batch, so positions may also pass the
 * offsets the source vouches for (b->next). */
srl_store_rc_t srl__batch_apply(consumer_t *c, const srl_source_batch_t *b, size_t lo, size_t hi,
                                srl_source_pos_t *work, srl_offset_update_t *offs,
                                bool *all_caught_up, char *err, size_t errsize);
/* The offset updates (out[0..npos)) from work[], b's cached watermarks and
 * the horizon's evidence; also sets the lag figures. *all_caught_up: the
 * cached view says every position is at its end (a hint for when to
 * probe, never evidence of being caught up). */
size_t srl__batch_offsets(consumer_t *c, const srl_source_pos_t *work, const srl_source_batch_t *b,
                          srl_offset_update_t *out, bool *all_caught_up);
/* Whether b would move a position (records, or b->next). */
bool srl__batch_moves(const consumer_t *c, const srl_source_batch_t *b);
/* The topics (bit t) that b has records or moves for. */
unsigned srl__batch_topics(const consumer_t *c, const srl_source_batch_t *b);

/* stats.c */
void srl__consumer_stats(consumer_t *c, bool force);
/* Delete replication_log rows older than log.retention, when due (between
 * transactions). */
void srl__consumer_purge_log(consumer_t *c);

#endif
