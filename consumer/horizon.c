/*
 * horizon.c - the tombstone horizon: where sysrepl-consumer decides that a
 * spoke may have missed deletes and must rebuild.
 *
 * Compaction keeps a tombstone for the topic's delete.retention.ms, then
 * drops it. A spoke that reads a partition through to its end at least once
 * every delete.retention.ms sees every delete; one that does not may have
 * lost some, and only a rebuild (sync.c) makes it a mirror again. So the
 * rule is about time since the spoke was last *truly* caught up, whatever
 * kept it away: a stopped or frozen process, a broker or bridge it could
 * not reach, a store that was down, a suspended machine, a clock jump.
 *
 * Evidence: a probe asks the source for every high watermark *now* (the
 * broker, or the bridge which asks the broker); a position that has reached
 * the high watermark a probe returned was caught up as of the moment the
 * probe was sent. Nothing else counts - not librdkafka's cached watermarks,
 * not an end-of-partition event that may have waited in a queue while the
 * process was frozen. The evidence is written with the offsets
 * (consumer_offsets.caught_up_at), so it survives a restart.
 *
 * The check runs at start (sync.c) and before any batch moves a position
 * (main.c): when the newest evidence for a topic is older than its
 * delete.retention.ms, the topic is rebuilt instead, and the log says why.
 * "Older" takes the larger of the wall-clock age and, for evidence seen by
 * this process, the CLOCK_BOOTTIME age, so neither a wall clock set back
 * nor a suspended machine hides a gap.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"

#include "consumer.h"

#define HEARTBEAT_MS 5000            /* probe at least this often */
#define UNTIL_CAUGHT_UP_PROBE_MS 100 /* --until-caught-up probes this often at the end */
#define PROBE_TIMEOUT_MS 2000
#define RETENTION_REFRESH_MS 60000
#define SOURCE_WARN_EVERY_MS 60000

static void format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms >= 86400000LL && ms % 86400000LL == 0)
        snprintf(buf, size, "%" PRId64 "d", ms / (int64_t)86400000);
    else if (ms >= 86400000LL)
        snprintf(buf, size, "%.1fd", ms / 86400000.0);
    else if (ms >= 3600000LL)
        snprintf(buf, size, "%.1fh", ms / 3600000.0);
    else if (ms >= 60000LL)
        snprintf(buf, size, "%.1fm", ms / 60000.0);
    else if (ms >= 1000LL)
        snprintf(buf, size, "%.1fs", ms / 1000.0);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
}

void srl__horizon_load(consumer_t *c, const srl_offset_row_t *rows, size_t n)
{
    for (size_t i = 0; i < c->npos; i++) {
        int64_t wall = 0;
        c->pos[i].offset = 0;
        for (size_t r = 0; r < n; r++) {
            if (rows[r].partition == c->pos[i].partition &&
                strcmp(rows[r].topic, c->pos[i].topic) == 0) {
                c->pos[i].offset = rows[r].next_offset;
                wall = rows[r].caught_up_ms;
            }
        }
        evidence_t *e = &c->ev[i];
        /* The store is the authority; a boot-clock reading stays only for
         * the very evidence it was taken with. */
        if (e->caught_wall != wall)
            e->caught_boot = 0;
        e->caught_wall = wall;
        e->probe_high = -1;
    }
}

void srl__horizon_read_retention(consumer_t *c, bool force)
{
    char err[512];
    int64_t now = srl_clock_boot_ms();
    for (size_t t = 0; t < c->ntopics; t++) {
        topic_state_t *ts = &c->topics[t];
        if (!force && ts->retention_read_at && now - ts->retention_read_at < RETENTION_REFRESH_MS)
            continue;
        int64_t ms = -1;
        srl_source_rc_t rc = c->src->ops->tombstone_retention_ms(c->src, ts->name, &ms,
                                                                 PROBE_TIMEOUT_MS, err,
                                                                 sizeof(err));
        if (rc == SRL_SOURCE_OK && ms >= 0) {
            if (ts->retention_ms != ms && ts->retention_ms >= 0)
                srl_log(SRL_LOG_INFO, "consumer", "delete.retention.ms changed",
                        "topic=%s from_ms=%" PRId64 " to_ms=%" PRId64, srl_log_q(ts->name),
                        ts->retention_ms, ms);
            ts->retention_ms = ms;
            ts->retention_read_at = now;
        } else if (ts->retention_ms < 0 || force) {
            /* Not known: the horizon cannot be checked for this topic. A
             * permission or broker-side matter, said loudly, but not worth
             * stopping replication over. */
            srl_log(SRL_LOG_WARN, "consumer",
                    "tombstone horizon not checked: cannot read delete.retention.ms",
                    "topic=%s reason=%s", srl_log_q(ts->name), srl_log_q(err));
        }
    }
}

/* How long ago topic t was last caught up (its oldest partition); -1 when
 * it never was (no evidence: nothing to compare). */
static int64_t away_ms(const consumer_t *c, size_t t)
{
    int64_t wall = srl_clock_wall_ms(), boot = srl_clock_boot_ms(), away = -1;
    for (size_t i = 0; i < c->npos; i++) {
        if (c->pos_topic[i] != t)
            continue;
        const evidence_t *e = &c->ev[i];
        if (e->caught_wall <= 0)
            return -1;
        int64_t a = wall - e->caught_wall;
        if (e->caught_boot > 0 && boot - e->caught_boot > a)
            a = boot - e->caught_boot;
        if (a > away)
            away = a;
    }
    return away;
}

unsigned srl__horizon_crossed(consumer_t *c, unsigned mask)
{
    unsigned crossed = 0;
    for (size_t t = 0; t < c->ntopics; t++) {
        const topic_state_t *ts = &c->topics[t];
        if (!(mask & (1u << t)) || ts->retention_ms < 0)
            continue;
        int64_t away = away_ms(c, t);
        if (away < 0 || away <= ts->retention_ms)
            continue;
        char a[32], r[32], msg[512];
        format_duration(away, a, sizeof(a));
        format_duration(ts->retention_ms, r, sizeof(r));
        snprintf(msg, sizeof(msg),
                 "rebuilding: last caught up %s ago, beyond delete.retention.ms=%s of topic %s", a,
                 r, ts->name);
        srl_log(SRL_LOG_WARN, "consumer", msg, "topic=%s", srl_log_q(ts->name));
        crossed |= 1u << t;
    }
    return crossed;
}

void srl__horizon_source_failed(consumer_t *c, const char *err)
{
    int64_t now = srl_clock_boot_ms();
    if (!c->source_away) {
        c->source_away = true;
        c->source_away_boot = now;
        c->source_warned_boot = 0;
    }
    if (c->source_warned_boot && now - c->source_warned_boot < SOURCE_WARN_EVERY_MS)
        return;
    char d[32], msg[128];
    format_duration(now - c->source_away_boot, d, sizeof(d));
    snprintf(msg, sizeof(msg), "cannot reach %s, not caught up", c->source_name);
    srl_log(SRL_LOG_WARN, "consumer", msg, "for=%s reason=%s", srl_log_q(d), srl_log_q(err));
    c->source_warned_boot = now;
}

void srl__horizon_source_back(consumer_t *c)
{
    if (!c->source_away)
        return;
    char d[32], msg[128];
    format_duration(srl_clock_boot_ms() - c->source_away_boot, d, sizeof(d));
    snprintf(msg, sizeof(msg), "%s reachable again", c->source_name);
    srl_log(SRL_LOG_INFO, "consumer", msg, "after=%s", srl_log_q(d));
    c->source_away = false;
}

void srl__horizon_probe_if_due(consumer_t *c, bool cached_caught_up)
{
    int64_t now = srl_clock_boot_ms();
    int64_t every = c->until_caught_up && cached_caught_up ? UNTIL_CAUGHT_UP_PROBE_MS
                                                           : HEARTBEAT_MS;
    if (c->last_probe_boot && now - c->last_probe_boot < every)
        return;
    c->last_probe_boot = now;
    int64_t *highs = calloc(c->npos ? c->npos : 1, sizeof(*highs));
    if (!highs)
        return;
    char err[512] = "";
    int64_t wall = srl_clock_wall_ms(); /* before asking: the evidence's moment */
    srl_source_rc_t rc = c->src->ops->highs(c->src, c->pos, c->npos, highs, PROBE_TIMEOUT_MS, err,
                                            sizeof(err));
    if (rc != SRL_SOURCE_OK) {
        srl__horizon_source_failed(c, err);
        free(highs);
        return;
    }
    srl__horizon_source_back(c);
    c->probe_gen++;
    c->last_probe_ok_boot = now;
    for (size_t i = 0; i < c->npos; i++) {
        evidence_t *e = &c->ev[i];
        /* An older probe not met yet stays: it will be met first, and
         * replacing it would push the evidence further away. */
        if (e->probe_high >= 0)
            continue;
        e->probe_high = highs[i];
        e->probe_wall = wall;
        e->probe_boot = now;
        e->probe_gen = c->probe_gen;
    }
    free(highs);
    srl__horizon_read_retention(c, false);
}

int64_t srl__horizon_stamp(const consumer_t *c, size_t i, int64_t offset)
{
    const evidence_t *e = &c->ev[i];
    return e->probe_high >= 0 && offset >= e->probe_high ? e->probe_wall : 0;
}

void srl__horizon_committed(consumer_t *c, const srl_source_pos_t *work)
{
    for (size_t i = 0; i < c->npos; i++) {
        evidence_t *e = &c->ev[i];
        if (e->probe_high < 0 || work[i].offset < e->probe_high)
            continue;
        if (e->probe_wall > e->caught_wall) {
            e->caught_wall = e->probe_wall;
            e->caught_boot = e->probe_boot;
        }
        e->done_gen = e->probe_gen;
        e->probe_high = -1;
    }
}

bool srl__horizon_unwritten(const consumer_t *c)
{
    for (size_t i = 0; i < c->npos; i++)
        if (srl__horizon_stamp(c, i, c->pos[i].offset) > 0)
            return true;
    return false;
}

bool srl__horizon_caught_up(const consumer_t *c, size_t i)
{
    return c->probe_gen > 0 && c->ev[i].done_gen == c->probe_gen && c->ev[i].probe_high < 0 &&
           srl_clock_boot_ms() - c->last_probe_ok_boot <= 3 * HEARTBEAT_MS;
}
