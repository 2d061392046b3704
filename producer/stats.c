/*
 * stats.c - what the producer reports: the periodic stats line, the
 * producer_state row (last delivered version, rate, last error) and the
 * replication_log lines queued by the log sink (sysrepl/logq.h).
 *
 * Guarantees: everything here is written on the work session between two
 * reads, never while a read runs there; producer_state is written at most
 * once a STATE_INTERVAL_MS while records flow, at once on an error and on
 * a forced write (start, stop).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdio.h>

#include "sysrepl/clock.h"
#include "sysrepl/log.h"

#define STATE_INTERVAL_MS 1000      /* producer_state updates at most this often */
#define LOG_PURGE_INTERVAL_MS 60000 /* replication_log retention runs this often */
#define LOG_PURGE_MAX_ROWS 20000    /* rows one purge deletes; a full one runs again */

void srl__stats_error(producer_t *p, const char *what, const char *why)
{
    snprintf(p->last_error, sizeof(p->last_error), "%s: %.480s", what, why);
    p->error_dirty = true;
}

void srl__stats_bookkeeping(producer_t *p, bool force)
{
    int64_t now = srl_clock_mono_ms();
    if (!p->store_ok || p->read_pending)
        return; /* the work session is busy with a read */
    PGconn *conn = srl_store_conn(p->st);
    char err[512];
    (void)srl_logq_flush(p->logq, conn, err, sizeof(err)); /* see stats.h */
    if (p->error_dirty) {
        const char *params[1] = {p->last_error};
        PQclear(
            PQexecParams(conn,
                         "UPDATE sysrepl.producer_state SET last_error = $1, last_error_at = now(),"
                         " updated_at = now()",
                         1, NULL, params, NULL, NULL, 0));
        p->error_dirty = false;
    }
    if ((p->state_dirty && now - p->state_at_ms >= STATE_INTERVAL_MS) ||
        (force && p->state_dirty)) {
        char v[32], rate[32];
        double secs = (now - p->state_at_ms) / 1000.0;
        snprintf(v, sizeof(v), "%" PRId64, p->last_delivered_version);
        snprintf(rate, sizeof(rate), "%.1f",
                 secs > 0 ? (double)(p->delivered - p->state_delivered) / secs : 0.0);
        const char *params[2] = {v, rate};
        PQclear(PQexecParams(conn,
                             "UPDATE sysrepl.producer_state SET last_delivered_version ="
                             " greatest(last_delivered_version, $1::bigint), delivered_at = now(),"
                             " rate = $2, updated_at = now()",
                             2, NULL, params, NULL, NULL, 0));
        p->state_at_ms = now;
        p->state_delivered = p->delivered;
        p->state_dirty = false;
    }
    if (now >= p->log_purge_at_ms) {
        int64_t deleted = 0;
        srl_store_rc_t rc = srl_store_purge_replication_log(p->st, p->log_retention_ms,
                                                            LOG_PURGE_MAX_ROWS, &deleted, err,
                                                            sizeof(err));
        if (rc != SRL_STORE_OK)
            srl_log(SRL_LOG_WARN, "producer", "replication_log retention failed", "reason=%s",
                    srl_log_q(err));
        else if (deleted)
            srl_log(SRL_LOG_DEBUG, "producer", "replication_log rows past log.retention deleted",
                    "deleted=%" PRId64, deleted);
        /* A full purge leaves more: go on at the next turn of the loop. */
        p->log_purge_at_ms = deleted == LOG_PURGE_MAX_ROWS ? now : now + LOG_PURGE_INTERVAL_MS;
    }
}

void srl__stats_log(producer_t *p, const char *msg)
{
    int64_t now = srl_clock_mono_ms();
    double secs = (now - p->stats_at_ms) / 1000.0;
    srl_log(SRL_LOG_INFO, "producer", msg,
            "delivered=%" PRId64 " rate=%.0f superseded=%" PRId64 " not_replicated=%" PRId64
            " tombstones=%" PRId64 " batches=%" PRId64 " failed_batches=%" PRId64
            " in_flight=%zu last_version=%" PRId64 " read_ms=%" PRId64 " encode_ms=%" PRId64
            " produce_ms=%" PRId64 " delete_ms=%" PRId64 " wait_ms=%" PRId64 " query_ms=%" PRId64,
            p->delivered, secs > 0 ? (double)(p->delivered - p->stats_delivered) / secs : 0.0,
            p->superseded, p->not_replicated, p->tombstones, p->batches, p->failed_batches,
            p->sink ? p->sink->ops->in_flight(p->sink) : 0, p->last_delivered_version,
            p->timing.read_us / 1000, p->timing.encode_us / 1000, p->produce_us / 1000,
            p->timing.delete_us / 1000, p->wait_us / 1000, p->query_us / 1000);
    p->stats_at_ms = now;
    p->stats_delivered = p->delivered;
}

void srl__stats_tick(producer_t *p, int64_t now_ms)
{
    if (p->stats_interval_ms > 0 && now_ms - p->stats_at_ms >= p->stats_interval_ms)
        srl__stats_log(p, "stats");
    if (!p->read_pending)
        srl__stats_bookkeeping(p, false);
}
