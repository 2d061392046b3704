/*
 * producer.h - the state of one sysrepl-producer, shared by its files.
 * This file is private to sysrepl-producer.
 *
 * One thread owns a producer_t: main.c's loop, which calls into
 *   sessions.c  the two store sessions (work, lock): connect, the producer
 *               lock, LISTEN, liveness
 *   drain.c     the drain pipeline: reads, batches in flight, retire, DELETE
 *   stats.c     the numbers: stats line, producer_state, replication_log
 *   startup.c   the sink, the topics' checks at start, the snapshot
 * Only the log sink (sysrepl/logq.h) runs on other threads, and it touches
 * nothing here but the queue.
 */
#ifndef SRL_PRODUCER_PRODUCER_H
#define SRL_PRODUCER_PRODUCER_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox.h"
#include "sink.h"
#include "wal.h"
#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/logq.h"
#include "sysrepl/store.h"

/* Exit codes (docs/producer.md). */
enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_REFUSED = 2, EXIT_STORE = 3, EXIT_FATAL = 4 };

#define PIPELINE_DEPTH 3   /* batches in flight */
#define LOCK_CHECK_MS 1000 /* the lock session is checked this often */

typedef struct producer {
    srl_config_t *cfg;
    volatile sig_atomic_t *stop; /* set by a signal: stop cleanly (main.c) */
    char instance_id[128];
    unsigned kind_mask; /* (1u << kind) for each replicated kind */
    int batch_size;
    int64_t poll_interval_ms;
    int64_t stats_interval_ms;
    bool once;        /* exit 0 when the outbox is empty */
    FILE *ack_log;    /* --ack-log: "version wallclock_us" per delivered record */
    srl_logq_t *logq; /* lines for replication_log, written by stats.c */

    /* sessions.c */
    srl_store_t *st;   /* work session: outbox reads, bookkeeping, LISTEN */
    srl_store_t *lock; /* the session holding the producer lock; also runs the
                        * DELETEs, asynchronously, while st reads on */
    bool store_ok;
    bool notified; /* a NOTIFY arrived: read now */
    int64_t lock_check_ms;

    /* startup.c */
    srl_registry_t *reg;
    srl_sink_t *sink;
    bool sink_broken; /* a fatal delivery error: make a new sink when idle */

    /* drain.c */
    srl_outbox_batch_t *ring[PIPELINE_DEPTH];
    size_t ring_head, ring_count;
    srl_outbox_batch_t *deleting; /* the ring's head while its DELETE runs */
    int64_t delete_started_us;
    int64_t cursor;     /* next read: versions above this */
    bool read_pending;  /* a read was sent on st and not taken yet */
    int64_t read_below; /* its range (see next_read_range) */
    bool read_from_start;
    int64_t read_sent_us;
    int64_t last_sweep_ms;
    bool sweep_now; /* after a failed batch: read below the batches in flight */
    bool more;      /* the last read was full: read again at once */
    int64_t next_poll_ms;
    bool idle_seen; /* --once: a read from the start found nothing */

    /* drain.c, WAL capture (wal.h; docs/producer.md, "Capture") */
    int capture;        /* producer.capture: SRL_CAPTURE_* */
    bool wal_mode;      /* the store captures through the WAL */
    bool wal_streaming; /* the outbox is drained: the WAL is the source */
    bool wal_failed;    /* a WAL batch failed: restart the stream */
    bool outbox_warned; /* auto without wal_level = logical: said once */
    bool snapshot_due;  /* the slot was lost: publish the full state */
    char slot[64];
    srl_wal_t *wal;
    uint64_t wal_acked; /* every change up to here is delivered */
    uint64_t wal_mark;  /* --once: the stream has passed this mark */
    bool wal_mark_seen;
    int64_t wal_retry_ms; /* next attempt to open the stream (mono ms) */
    int64_t wal_ping_ms;  /* last keepalive asked for while idle */
    bool wal_last_full;   /* the last WAL batch was full: keep pipelining */

    /* stats.c: numbers for the stats line and producer_state */
    int64_t delivered, superseded, not_replicated, tombstones, batches, failed_batches;
    int64_t last_delivered_version;
    int64_t produce_us;
    int64_t wait_us;  /* asleep in poll(): Kafka acks, DELETEs, no work */
    int64_t query_us; /* reads on the server: sent to taken (overlapping) */
    srl_outbox_timing_t timing;
    int64_t stats_at_ms, stats_delivered;
    int64_t state_at_ms, state_delivered;
    int64_t log_retention_ms; /* log.retention */
    int64_t log_purge_at_ms;  /* next replication_log purge (mono ms); 0: at once */
    bool state_dirty;
    char last_error[512];
    bool error_dirty;
} producer_t;

/* Sleep up to ms, waking early when a stop is requested. */
static inline void srl__producer_nap(const producer_t *p, int64_t ms)
{
    while (ms > 0 && !*p->stop) {
        int step = ms > 200 ? 200 : (int)ms;
        poll(NULL, 0, step);
        ms -= step;
    }
}

#endif
