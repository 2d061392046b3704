/*
 * stats.c - sysrepl-consumer's periodic one-line summary (stats.interval_ms):
 * totals since start, the rate since the last line, lag, and where the
 * loop's time went; and the retention of replication_log (log.retention),
 * once a minute.
 */
#include <inttypes.h>

#include "sysrepl/log.h"

#include "consumer.h"

void srl__consumer_stats(consumer_t *c, bool force)
{
    int64_t interval = srl_config_int(c->cfg, SRL_KEY_STATS_INTERVAL_MS);
    int64_t now = srl_clock_mono_ms();
    if (!force && (interval <= 0 || now - c->last_stats_ms < interval))
        return;
    if (force && c->window_records == 0 && now - c->last_stats_ms < 1000)
        return; /* the periodic line just said it all */
    double secs = (now - c->window_start_ms) / 1000.0;
    srl_log(SRL_LOG_INFO, "consumer", "stats",
            "records=%" PRId64 " upserted=%" PRId64 " deleted=%" PRId64 " stale=%" PRId64
            " dead_letters=%" PRId64 " rate=%.0f lag_records=%" PRId64 " lag_seconds=%.3f"
            " fetch_ms=%" PRId64 " decode_ms=%" PRId64 " store_ms=%" PRId64
            " split_batches=%" PRId64 " rebuilds=%" PRId64 " source_away=%s",
            c->total_records, c->total_upserted, c->total_deleted, c->total_stale, c->total_dead,
            secs > 0 ? c->window_records / secs : 0.0, c->lag_records, c->lag_seconds, c->fetch_ms,
            c->decode_ms, c->store_ms, c->total_split, c->total_rebuilds,
            c->source_away ? "true" : "false");
    c->last_stats_ms = now;
    c->window_start_ms = now;
    c->window_records = 0;
}

#define LOG_PURGE_INTERVAL_MS 60000
#define LOG_PURGE_MAX_ROWS 20000 /* rows one purge deletes; a full one runs again soon */

void srl__consumer_purge_log(consumer_t *c)
{
    int64_t now = srl_clock_mono_ms();
    if (!c->st || now < c->log_purge_at_ms)
        return;
    char err[512];
    int64_t deleted = 0;
    srl_store_rc_t rc =
        srl_store_purge_replication_log(c->st, srl_config_int(c->cfg, SRL_KEY_LOG_RETENTION),
                                        LOG_PURGE_MAX_ROWS, &deleted, err, sizeof(err));
    if (rc != SRL_STORE_OK)
        srl_log(SRL_LOG_WARN, "consumer", "replication_log retention failed", "reason=%s",
                srl_log_q(err));
    c->log_purge_at_ms = rc == SRL_STORE_OK && deleted == LOG_PURGE_MAX_ROWS
                             ? now + 1000
                             : now + LOG_PURGE_INTERVAL_MS;
}
