/*
 * sync.c - when sysrepl-consumer rebuilds, and the rebuild run.
 *
 * A topic is rebuilt (rebuild.c: the store made an exact mirror of the
 * topic, atomically) when the store has no offsets for it (first sync), on
 * --replay (once), or when the tombstone horizon was crossed (horizon.c),
 * whether that is found at start, after a store outage, or in the main
 * loop after any gap. Each reason is logged before the rebuild starts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"

#include "consumer.h"
#include "rebuild.h"

#define REBUILD_BATCH_MAX 5000 /* records per read during a rebuild */

/* Positions and evidence from the store. has_rows: bit t when the store
 * holds offsets for topics[t]. */
static srl_store_rc_t read_positions(consumer_t *c, unsigned *has_rows, char *err, size_t errsize)
{
    srl_offset_row_t *rows = NULL;
    size_t n = 0;
    srl_store_rc_t rc = srl_offsets_read(srl_store_conn(c->st), &rows, &n, err, errsize);
    if (rc != SRL_STORE_OK)
        return rc;
    *has_rows = 0;
    for (size_t r = 0; r < n; r++)
        for (size_t t = 0; t < c->ntopics; t++)
            if (strcmp(rows[r].topic, c->topics[t].name) == 0)
                *has_rows |= 1u << t;
    srl__horizon_load(c, rows, n);
    free(rows);
    return SRL_STORE_OK;
}

static int run_rebuild(consumer_t *c, const srl_rebuild_topic_t *todo, size_t ntodo)
{
    char err[1024];
    srl_rebuild_stats_t rs;
    int64_t t0 = srl_clock_mono_ms();
    /* A rebuild streams its rows through COPY: bigger reads buy it
     * nothing, and its memory stays bounded by REBUILD_BATCH_MAX. */
    size_t batch = (size_t)srl_config_int(c->cfg, SRL_KEY_CONSUMER_BATCH_SIZE);
    if (batch > REBUILD_BATCH_MAX)
        batch = REBUILD_BATCH_MAX;
    srl_rebuild_rc_t rc = srl_rebuild(c->src, srl_store_conn(c->st), c->reg, c->loader, todo, ntodo,
                                      c->local_origin, c->lag_columns, batch, &srl__consumer_stop,
                                      &rs, err, sizeof(err));
    switch (rc) {
    case SRL_REBUILD_OK:
        break;
    case SRL_REBUILD_STOPPED:
        srl_log(SRL_LOG_INFO, "consumer", "rebuild stopped, nothing changed", NULL);
        return -1;
    case SRL_REBUILD_SOURCE_RETRY:
    case SRL_REBUILD_STORE_RETRY:
        srl_log(SRL_LOG_WARN, "consumer", "rebuild interrupted, will retry", "reason=%s",
                srl_log_q(err));
        return 1;
    default:
        srl_log(SRL_LOG_ERROR, "consumer", "rebuild failed", "reason=%s", srl_log_q(err));
        return -1;
    }
    int64_t ms = srl_clock_mono_ms() - t0;
    srl_log(SRL_LOG_INFO, "consumer", "rebuild finished",
            "topics=%zu records=%" PRId64 " rows=%" PRId64 " tombstones=%" PRId64
            " repeated_keys=%" PRId64 " dead_letters=%" PRId64 " ms=%" PRId64
            " records_per_s=%.0f fetch_wait_ms=%" PRId64 " store_wait_ms=%" PRId64,
            ntodo, rs.records, rs.rows, rs.tombstones, rs.diverted, rs.dead_letters, ms,
            ms > 0 ? rs.records * 1000.0 / ms : 0.0, rs.fetch_ms, rs.store_ms);
    c->total_dead += rs.dead_letters;
    c->total_rebuilds++;
    return 0;
}

int srl__consumer_sync(consumer_t *c, unsigned force_mask)
{
    char err[1024];
    unsigned has_rows = 0;
    srl_rebuild_topic_t todo[SRL_KIND_COUNT];
    size_t ntodo = 0;

    srl_store_rc_t src = read_positions(c, &has_rows, err, sizeof(err));
    if (src != SRL_STORE_OK)
        return src == SRL_STORE_UNREACHABLE || src == SRL_STORE_RETRY ? 1 : -1;
    unsigned need = force_mask;
    /* At start and after a store outage every topic is checked against the
     * stored evidence. A rebuild the loop asks for (force_mask) is about
     * the topics its batch would move; the others are left to the probes,
     * which find a quiet topic at its end and need no rebuild for it. */
    if (!c->replay && force_mask == 0) {
        srl__horizon_read_retention(c, true);
        need |= srl__horizon_crossed(c, has_rows);
    }
    for (size_t t = 0; t < c->ntopics; t++) {
        const topic_state_t *ts = &c->topics[t];
        if (c->replay) {
            need |= 1u << t;
            srl_log(SRL_LOG_INFO, "consumer", "rebuilding: replay requested", "topic=%s",
                    srl_log_q(ts->name));
        } else if (!(has_rows & (1u << t))) {
            need |= 1u << t;
            srl_log(SRL_LOG_INFO, "consumer", "rebuilding: first sync", "topic=%s",
                    srl_log_q(ts->name));
        }
        if (need & (1u << t))
            todo[ntodo++] = (srl_rebuild_topic_t){ts->kind, ts->name, ts->partitions};
    }
    if (ntodo == 0)
        return 0;
    int r = run_rebuild(c, todo, ntodo);
    if (r != 0)
        return r;
    c->replay = false;
    src = read_positions(c, &has_rows, err, sizeof(err));
    if (src != SRL_STORE_OK)
        return src == SRL_STORE_UNREACHABLE || src == SRL_STORE_RETRY ? 1 : -1;
    return 0;
}
