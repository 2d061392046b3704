/*
 * drain.c - where the outbox is drained: the pipeline of batches between
 * the outbox and the sink.
 *
 * Up to PIPELINE_DEPTH batches are in flight (a ring, oldest at its head).
 * Reads are asynchronous on the work session: as soon as a read's result
 * is taken, the next read is sent, so the server runs it while this batch
 * is encoded and published. A batch's outbox rows are deleted (one DELETE
 * at a time, asynchronously, on the lock session) once every record of it
 * was delivered, in ring order. Reads continue above the highest version
 * read; transactions commit out of version order, so once a
 * SWEEP_INTERVAL_MS (and after a batch failed) a read takes the rows below
 * the lowest version in flight instead: rows that committed late, or whose
 * delivery failed.
 *
 * Guarantees: a row is deleted only after its record was delivered (or it
 * needs none: superseded, kind not replicated); a failed batch's rows stay
 * and are read again with the content current by then (outbox.c), so a
 * late row never overwrites a newer record of its key. Memory is bounded
 * by PIPELINE_DEPTH batches of producer.batch_size rows.
 *
 * WAL capture (wal.h): on a store that captures through its WAL, the
 * outbox is drained first (rows written before the switch), then batches
 * come from the replication stream instead, through the same ring; a
 * delivered WAL batch moves the slot's confirmed position to the end of
 * the last transaction it completes instead of deleting rows. A failed WAL
 * batch restarts the stream at the confirmed position once the batches in
 * flight are settled: what follows it is published again, in order.
 */
#include "drain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"
#include "sysrepl/clock.h"
#include "sysrepl/config.h"
#include "sysrepl/log.h"

#define SWEEP_INTERVAL_MS 1000 /* read below the batches in flight this often */

static void ring_pop(producer_t *p)
{
    srl_outbox_batch_t *b = p->ring[p->ring_head];
    srl_outbox_batch_clear(b);
    free(b);
    p->ring[p->ring_head] = NULL;
    p->ring_head = (p->ring_head + 1) % PIPELINE_DEPTH;
    p->ring_count--;
}

/* A batch with failed records is not deleted: the next read below the
 * batches in flight takes its rows again. */
static void batch_failed(producer_t *p, const srl_outbox_batch_t *b)
{
    p->failed_batches++;
    p->sweep_now = true;
    if (b->wal)
        p->wal_failed = true;
    if (b->sink.failed_fatal)
        p->sink_broken = true;
    srl_log(SRL_LOG_ERROR, "producer", "batch not delivered; will publish again",
            "records=%zu failed=%zu reason=%s", b->sink.count, b->sink.failed,
            srl_log_q(b->sink.error));
    srl__stats_error(p, "delivery", b->sink.error);
}

/* --ack-log: "version wallclock_us" per record of a delivered batch. */
static void log_acks(const producer_t *p, const srl_outbox_batch_t *b)
{
    if (!p->ack_log)
        return;
    int64_t t = srl_clock_wall_us();
    for (size_t i = 0; i < b->sink.count; i++)
        fprintf(p->ack_log, "%" PRId64 " %" PRId64 "\n", b->sink.records[i].version, t);
}

/* Delete a delivered batch's rows on the lock session without waiting (the
 * next batch is read meanwhile): sends the DELETE the first time, then
 * polls it. true once it finished; false while it runs or when it failed
 * (then p->store_ok is cleared and it is sent again after a reconnect). */
static bool batch_deleted(producer_t *p, srl_outbox_batch_t *b)
{
    char err[512];
    PGconn *dconn = srl_store_conn(p->lock);
    srl_store_rc_t rc = SRL_STORE_OK;
    bool done = false;
    if (p->deleting != b) {
        log_acks(p, b);
        rc = srl_outbox_delete_send(dconn, b->versions, b->version_count, err, sizeof(err));
        p->deleting = b;
        p->delete_started_us = srl_clock_mono_us();
    }
    if (rc == SRL_STORE_OK)
        rc = srl_outbox_delete_poll(dconn, &done, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        srl_log(SRL_LOG_WARN, "producer", "deleting delivered outbox rows failed", "reason=%s",
                srl_log_q(err));
        srl__stats_error(p, "store", err);
        p->store_ok = false;
        p->deleting = NULL;
        return false;
    }
    if (done) {
        p->deleting = NULL;
        p->timing.delete_us += srl_clock_mono_us() - p->delete_started_us;
    }
    return done;
}

static void count_delivered(producer_t *p, const srl_outbox_batch_t *b)
{
    p->delivered += (int64_t)b->sink.count;
    p->superseded += (int64_t)b->superseded;
    p->not_replicated += (int64_t)b->not_replicated;
    p->tombstones += (int64_t)b->tombstones;
    p->batches++;
    if (b->max_published > p->last_delivered_version)
        p->last_delivered_version = b->max_published;
    if (b->wal && b->wal_commit_lsn > p->wal_acked)
        p->wal_acked = b->wal_commit_lsn;
    if (b->sink.count)
        p->state_dirty = true;
    if (b->not_replicated)
        srl_log(SRL_LOG_DEBUG, "producer", "outbox rows of kinds not replicated removed",
                "rows=%zu", b->not_replicated);
}

void srl__drain_retire(producer_t *p)
{
    while (p->ring_count > 0) {
        srl_outbox_batch_t *b = p->ring[p->ring_head];
        if (b->sink.pending > 0)
            break;
        if (b->wal && p->wal_failed) {
            /* settled after a failure: published again after the restart */
        } else if (b->sink.failed) {
            batch_failed(p, b);
        } else if (b->wal) {
            log_acks(p, b);
            count_delivered(p, b);
        } else {
            if (!p->store_ok || !batch_deleted(p, b))
                break;
            count_delivered(p, b);
        }
        ring_pop(p);
    }
    if (p->wal_failed && p->ring_count == 0 && p->wal) {
        srl_log(SRL_LOG_WARN, "producer", "restarting the WAL stream at the confirmed position",
                "slot=%s", p->slot);
        srl_wal_close(p->wal);
        p->wal = NULL;
        p->wal_failed = false;
        p->wal_retry_ms = srl_clock_mono_ms() + 1000;
    }
}

/* The range of the next read: 0 for "above the cursor", else the version
 * to read below (the lowest in flight). holding_min: the lowest version of
 * a result taken but not yet in the ring (0: none). */
static int64_t next_read_range(producer_t *p, int64_t holding_min, bool *from_start)
{
    int64_t now = srl_clock_mono_ms(), below = 0;
    size_t in_flight = p->ring_count + (holding_min ? 1 : 0);
    if (in_flight == 0) {
        p->cursor = 0; /* pipeline empty: read from the lowest version */
        p->last_sweep_ms = now;
        p->sweep_now = false;
    } else if (p->sweep_now || now - p->last_sweep_ms >= SWEEP_INTERVAL_MS) {
        below = holding_min ? holding_min : INT64_MAX;
        for (size_t i = 0; i < p->ring_count; i++) {
            const srl_outbox_batch_t *r = p->ring[(p->ring_head + i) % PIPELINE_DEPTH];
            if (r->min_version < below)
                below = r->min_version;
        }
        p->last_sweep_ms = now;
        p->sweep_now = false;
    }
    *from_start = p->cursor == 0 && below == 0;
    return below;
}

/* Whether a read may be sent now, with slots_used batches in flight. */
static bool may_read_with(producer_t *p, size_t slots_used, bool stopping)
{
    int64_t now = srl_clock_mono_ms();
    bool sweep_due = slots_used > 0 &&
                     (p->sweep_now || now - p->last_sweep_ms >= SWEEP_INTERVAL_MS);
    bool want = p->more || p->notified || now >= p->next_poll_ms || sweep_due;
    return p->store_ok && !p->read_pending && !stopping && slots_used < PIPELINE_DEPTH && want &&
           !p->sink_broken && !(p->once && p->idle_seen) && !p->wal_streaming;
}

static void read_failed(producer_t *p, srl_store_rc_t rc, const char *err)
{
    srl_log(SRL_LOG_WARN, "producer", "reading the outbox failed", "reason=%s", srl_log_q(err));
    srl__stats_error(p, "store", err);
    if (rc == SRL_STORE_FATAL)
        srl__producer_nap(p, 1000); /* a bug or a permission: do not spin */
    p->store_ok = false;
    p->read_pending = false;
}

/* Send the next read; the work session is idle before it, so the once-a-
 * second bookkeeping runs there first. */
static void issue_read(producer_t *p, int64_t holding_min)
{
    char err[512];
    srl__stats_bookkeeping(p, false);
    bool from_start;
    int64_t below = next_read_range(p, holding_min, &from_start);
    srl_store_rc_t rc = srl_outbox_read_send(srl_store_conn(p->st), p->cursor, below, p->batch_size,
                                             err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        read_failed(p, rc, err);
        return;
    }
    p->read_pending = true;
    p->read_below = below;
    p->read_from_start = from_start;
    p->read_sent_us = srl_clock_mono_us();
    p->notified = false;
}

/* The bookkeeping of a taken result (rows of it, versions lo..hi): the
 * cursor, whether to read again at once, when to poll next. */
static void note_read(producer_t *p, int rows, int64_t hi)
{
    if (p->read_below == 0) {
        p->more = rows == p->batch_size;
        /* --once: no waiting for a poll; the next read (from the start
         * once the pipeline is empty) decides whether the outbox is empty. */
        if (!p->more)
            p->next_poll_ms = srl_clock_mono_ms() + (p->once ? 0 : p->poll_interval_ms);
        if (rows > 0)
            p->cursor = hi;
    }
    if (rows == 0 && p->read_from_start) {
        if (p->wal_mode && !p->wal_streaming) {
            p->wal_streaming = true; /* the outbox is drained: the WAL next */
            p->more = false;
        } else {
            p->idle_seen = true;
        }
    }
}

/* Build a batch from res (taken), publish its records and queue it in the
 * ring. A result that cannot be built is read again (sweep). */
static srl_outbox_batch_t *publish_batch(producer_t *p, PGresult *res)
{
    char err[512];
    srl_outbox_batch_t *b = calloc(1, sizeof(*b));
    if (!b) {
        PQclear(res);
        return NULL;
    }
    srl_store_rc_t rc = srl_outbox_batch_build(res, p->reg, p->kind_mask, p->instance_id, b,
                                               &p->timing, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        free(b);
        srl_log(SRL_LOG_ERROR, "producer", "building a batch failed", "reason=%s", srl_log_q(err));
        srl__stats_error(p, "producer", err);
        p->sweep_now = true; /* its rows are read again */
        return NULL;
    }
    if (b->unpublishable)
        srl__stats_error(p, "codec", err);
    if (b->sink.count > 0) {
        int64_t t0 = srl_clock_mono_us();
        b->sink.published_us = t0;
        if (!p->sink->ops->publish(p->sink, &b->sink, err, sizeof(err)))
            srl_log(SRL_LOG_ERROR, "producer", "publishing a batch failed", "reason=%s",
                    srl_log_q(err));
        p->produce_us += srl_clock_mono_us() - t0;
    }
    p->ring[(p->ring_head + p->ring_count) % PIPELINE_DEPTH] = b;
    p->ring_count++;
    return b;
}

/* Take the pending read's result if it is there: send the next read at
 * once (the server runs it while this one is encoded and published), then
 * build, publish and queue the batch. */
static void take_read(producer_t *p, bool stopping)
{
    char err[512];
    PGresult *res = NULL;
    srl_store_rc_t rc = srl_outbox_read_take(srl_store_conn(p->st), false, &res, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        read_failed(p, rc, err);
        return;
    }
    if (!res)
        return; /* still running */
    p->read_pending = false;
    p->query_us += srl_clock_mono_us() - p->read_sent_us;
    if (stopping) {
        PQclear(res); /* not published: the rows stay for the next start */
        return;
    }
    int64_t lo, hi;
    int rows = PQntuples(res);
    srl_outbox_result_range(res, &lo, &hi);
    note_read(p, rows, hi);
    if (rows == 0) {
        PQclear(res);
        return;
    }
    if (may_read_with(p, p->ring_count + 1, stopping))
        issue_read(p, lo);
    publish_batch(p, res);
}

bool srl__drain_may_read(producer_t *p, bool stopping)
{
    return may_read_with(p, p->ring_count, stopping);
}

/* ---- WAL capture ---- */

bool srl__drain_capture_prepare(producer_t *p, int *exit_code)
{
    char err[512];
    PGconn *conn = srl_store_conn(p->st);
    p->wal_mode = p->wal_streaming = false;
    if (p->capture == SRL_CAPTURE_OUTBOX)
        return true;
    bool available = false;
    srl_store_rc_t rc = srl_store_wal_available(conn, &available, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        srl_log(SRL_LOG_WARN, "producer", "cannot read wal_level", "reason=%s", srl_log_q(err));
        return false;
    }
    if (!available) {
        if (p->capture == SRL_CAPTURE_WAL) {
            srl_log(SRL_LOG_ERROR, "producer", "config refused", "key=producer.capture reason=%s",
                    srl_log_q("wal needs the server's wal_level = logical (it needs a restart of"
                              " PostgreSQL); or set producer.capture = outbox"));
            *exit_code = EXIT_CONFIG;
            return false;
        }
        if (!p->outbox_warned)
            srl_log(SRL_LOG_WARN, "producer",
                    "the server's wal_level is not logical: capturing through the outbox"
                    " triggers, which costs every writer; set wal_level = logical and restart"
                    " PostgreSQL to capture from the WAL (docs/producer.md, Capture)",
                    "producer.capture=auto");
        p->outbox_warned = true;
        return true;
    }
    bool created = false, lost = false;
    rc = srl_store_wal_engage(conn, p->slot, sizeof(p->slot), &created, &lost, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        if (rc == SRL_STORE_FATAL) {
            srl_log(SRL_LOG_ERROR, "producer", "cannot capture from the WAL", "reason=%s hint=%s",
                    srl_log_q(err),
                    srl_log_q("the store role needs REPLICATION and must own the content tables;"
                              " or set producer.capture = outbox"));
            *exit_code = EXIT_STORE;
        } else {
            srl_log(SRL_LOG_WARN, "producer", "cannot prepare WAL capture, retrying", "reason=%s",
                    srl_log_q(err));
        }
        return false;
    }
    if (created)
        srl_log(SRL_LOG_INFO, "producer", "replication slot created", "slot=%s", p->slot);
    if (lost) {
        srl_log(SRL_LOG_ERROR, "producer",
                "the replication slot had lost WAL it needed (max_slot_wal_keep_size): made it"
                " again; publishing the full state",
                "slot=%s", p->slot);
        srl__stats_error(p, "capture", "replication slot lost; snapshot published");
        p->snapshot_due = true;
    }
    p->wal_mode = true;
    return true;
}

static bool wal_open(producer_t *p)
{
    char err[512];
    int64_t now = srl_clock_mono_ms();
    if (now < p->wal_retry_ms)
        return false;
    srl_store_rc_t rc;
    p->wal = srl_wal_open(srl_config_str(p->cfg, SRL_KEY_STORE_DSN), p->slot, &rc, err,
                          sizeof(err));
    if (!p->wal) {
        srl_log(SRL_LOG_WARN, "producer", "cannot read the WAL, retrying", "slot=%s reason=%s",
                p->slot, srl_log_q(err));
        srl__stats_error(p, "store", err);
        p->wal_retry_ms = now + 2000;
        return false;
    }
    srl_log(SRL_LOG_INFO, "producer", "reading changes from the WAL", "slot=%s", p->slot);
    p->wal_mark = 0;
    if (p->once) {
        /* --once stops when the stream has passed this mark with nothing
         * in flight: everything committed before now is delivered. */
        PGresult *res = PQexec(srl_store_conn(p->st),
                               "SELECT pg_logical_emit_message(false, '" SRL_WAL_MARK_PREFIX
                               "', '')");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            srl_wal_parse_lsn(PQgetvalue(res, 0, 0), &p->wal_mark);
        PQclear(res);
    }
    return true;
}

static void wal_lost(producer_t *p, srl_store_rc_t rc, const char *err)
{
    srl_log(SRL_LOG_WARN, "producer", "reading the WAL failed", "slot=%s reason=%s", p->slot,
            srl_log_q(err));
    srl__stats_error(p, "store", err);
    srl_wal_close(p->wal);
    p->wal = NULL;
    p->wal_retry_ms = srl_clock_mono_ms() + (rc == SRL_STORE_FATAL ? 5000 : 1000);
    p->store_ok = false; /* reconnect the sessions too: the server may be gone */
}

/* Whether the stream may be read now. Batches pipeline (up to
 * PIPELINE_DEPTH in flight) while they come full (a backlog); a small one
 * waits until the batches in flight are delivered, and then takes all that
 * arrived meanwhile: at a steady trickle one batch per Kafka round trip,
 * not one per transaction, which costs the broker and this process less
 * CPU (on a hub's own machine, CPU its writers need) for at most one round
 * trip of latency. */
static bool wal_may_read(const producer_t *p)
{
    return !p->wal_failed && !p->sink_broken && p->ring_count < PIPELINE_DEPTH &&
           (p->ring_count == 0 || p->wal_last_full);
}

static void wal_step(producer_t *p, bool stopping)
{
    char err[512];
    if (!p->wal && (p->wal_failed || !wal_open(p)))
        return;
    while (!stopping && wal_may_read(p)) {
        PGresult *res = NULL;
        uint64_t commit = 0;
        int64_t t0 = srl_clock_mono_us();
        srl_store_rc_t rc = srl_wal_read(p->wal, p->batch_size, &res, &commit, err, sizeof(err));
        if (rc == SRL_STORE_OK && res)
            rc = srl_wal_complete(srl_store_conn(p->st), res, err, sizeof(err));
        p->query_us += srl_clock_mono_us() - t0;
        if (rc != SRL_STORE_OK) {
            PQclear(res);
            wal_lost(p, rc, err);
            return;
        }
        if (!res) {
            /* Transactions without rows of ours end with the batches in
             * flight, or at once when there are none. */
            if (p->ring_count > 0) {
                srl_outbox_batch_t *tail =
                    p->ring[(p->ring_head + p->ring_count - 1) % PIPELINE_DEPTH];
                if (commit > tail->wal_commit_lsn)
                    tail->wal_commit_lsn = commit;
            } else if (commit > p->wal_acked) {
                p->wal_acked = commit;
            }
            break;
        }
        bool full = PQntuples(res) >= p->batch_size;
        p->wal_last_full = full;
        srl_outbox_batch_t *b = publish_batch(p, res);
        if (b) {
            b->wal = true;
            b->wal_commit_lsn = commit;
        }
        if (!full)
            break;
    }
    if (!p->wal)
        return;
    uint64_t sent = 0, confirm = p->wal_acked;
    bool between = srl_wal_between_transactions(p->wal, &sent);
    if (p->ring_count == 0 && between && !p->wal_failed && sent > confirm)
        confirm = sent; /* everything the server sent is delivered or not ours */
    /* Idle: ask the server where it is once a second, so the confirmed
     * position follows the end of the WAL (and the slot holds none). */
    bool ping = p->ring_count == 0 && between && srl_clock_mono_ms() - p->wal_ping_ms >= 1000;
    if (ping)
        p->wal_ping_ms = srl_clock_mono_ms();
    srl_store_rc_t rc = srl_wal_confirm(p->wal, confirm, ping, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        wal_lost(p, rc, err);
        return;
    }
    if (p->once && p->wal_mark && p->ring_count == 0 && between &&
        srl_wal_mark_seen(p->wal) >= p->wal_mark) {
        srl_wal_confirm(p->wal, confirm, true, err, sizeof(err));
        p->idle_seen = true;
    }
}

int srl__drain_wal_socket(const producer_t *p)
{
    /* Only while a read could be taken: with the ring full the stream's
     * data waits in the socket, which would wake poll() at once, again
     * and again, until a batch is delivered. */
    return p->wal_streaming && p->wal && wal_may_read(p) ? srl_wal_socket(p->wal) : -1;
}

void srl__drain_wal_close(producer_t *p)
{
    if (p->wal) {
        char err[256];
        uint64_t sent;
        if (p->ring_count == 0 && srl_wal_between_transactions(p->wal, &sent))
            srl_wal_confirm(p->wal, p->wal_acked, true, err, sizeof(err));
        srl_wal_close(p->wal);
    }
    p->wal = NULL;
    p->wal_streaming = false;
}

void srl__drain_step(producer_t *p, bool stopping)
{
    if (p->wal_streaming) {
        if (p->store_ok)
            wal_step(p, stopping);
        return;
    }
    if (p->store_ok && p->read_pending)
        take_read(p, stopping);
    if (srl__drain_may_read(p, stopping))
        issue_read(p, 0);
}

bool srl__drain_idle(const producer_t *p)
{
    return p->ring_count == 0 && !p->read_pending;
}

void srl__drain_finish(producer_t *p)
{
    char err[512];
    if (p->read_pending && p->store_ok) {
        PGresult *res = NULL;
        if (srl_outbox_read_take(srl_store_conn(p->st), true, &res, err, sizeof(err)) ==
            SRL_STORE_OK)
            PQclear(res);
    }
    p->read_pending = false;
}

void srl__drain_free(producer_t *p)
{
    srl__drain_wal_close(p);
    for (size_t i = 0; i < PIPELINE_DEPTH; i++) {
        srl_outbox_batch_clear(p->ring[i]);
        free(p->ring[i]);
        p->ring[i] = NULL;
    }
    p->ring_count = 0;
}
