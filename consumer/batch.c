/*
 * batch.c - a fetched batch into the spoke's store (sysrepl-consumer).
 *
 * Records are decoded and staged (decode.c, apply.c), then applied in one
 * transaction together with the offsets they move to and the evidence of
 * being caught up they bring (offsets.c, horizon.c), the batch's dead
 * letters and the queued replication_log lines. A batch the store refuses
 * (a check constraint, bad UTF-8) is bisected down to the one record,
 * which is dead-lettered with the store's reason, so one bad record never
 * stops replication and is never silently dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"
#include "sysrepl/rules.h"

#include "consumer.h"
#include "decode.h"

static size_t position_of(const consumer_t *c, const srl_source_pos_t *work, const srl_record_t *r)
{
    size_t pi = 0;
    for (; pi < c->npos; pi++)
        if (work[pi].kind == r->kind && work[pi].partition == r->partition)
            break;
    return pi;
}

/* Decode records[lo, hi) into the apply set and dead letters, and advance
 * work[] past them. force_dead_reason: dead-letter them all with it. */
static void stage_range(consumer_t *c, const srl_record_t *records, size_t lo, size_t hi,
                        srl_source_pos_t *work, const char *force_dead_reason)
{
    char key[SRL_KEY_MAX + 1], reason[1024], err[512];
    for (size_t i = lo; i < hi; i++) {
        const srl_record_t *r = &records[i];
        size_t pi = position_of(c, work, r);
        const char *topic = pi < c->npos ? work[pi].topic : "?";
        if (force_dead_reason) {
            srl_deadletter_add(&c->dl, topic, r, force_dead_reason);
        } else {
            srl_entity_t e;
            srl_decoded_t d = srl_decode_record(c->reg, c->loader, r, &e, key, sizeof(key), reason,
                                                sizeof(reason));
            if (d == SRL_DECODED_DEAD) {
                srl_deadletter_add(&c->dl, topic, r, reason);
            } else if (d == SRL_DECODED_TOMBSTONE) {
                if (!srl_apply_add_tombstone(c->apply, r->kind, key, r->version, r->origin,
                                             r->timestamp_ms))
                    srl_deadletter_add(&c->dl, topic, r, "out of memory staging the tombstone");
            } else {
                if (!srl_apply_add_upsert(c->apply, &e, key, err, sizeof(err)))
                    srl_deadletter_add(&c->dl, topic, r, err);
                srl_entity_clear(&e);
            }
        }
        if (pi < c->npos && r->offset >= work[pi].offset) {
            work[pi].offset = r->offset + 1;
            if (r->timestamp_ms > c->pos_last_ts[pi])
                c->pos_last_ts[pi] = r->timestamp_ms;
        }
    }
}

/* Past the offsets the source vouches for (a compacted gap at the end). */
static void advance_next(const consumer_t *c, const srl_source_batch_t *b, srl_source_pos_t *work)
{
    for (size_t i = 0; i < c->npos && i < b->npos; i++)
        if (b->next[i] > work[i].offset)
            work[i].offset = b->next[i];
}

bool srl__batch_moves(const consumer_t *c, const srl_source_batch_t *b)
{
    if (b->count > 0)
        return true;
    for (size_t i = 0; i < c->npos && i < b->npos; i++)
        if (b->next[i] > c->pos[i].offset)
            return true;
    return false;
}

unsigned srl__batch_topics(const consumer_t *c, const srl_source_batch_t *b)
{
    /* One topic per kind: a record's kind names its topic, no position
     * search per record (this runs on every batch). */
    unsigned mask = 0, kinds = 0;
    for (size_t k = 0; k < b->count; k++)
        kinds |= 1u << b->records[k].kind;
    for (size_t t = 0; t < c->ntopics; t++)
        if (kinds & (1u << c->topics[t].kind))
            mask |= 1u << t;
    for (size_t i = 0; i < c->npos && i < b->npos; i++)
        if (b->next[i] > c->pos[i].offset)
            mask |= 1u << c->pos_topic[i];
    return mask;
}

size_t srl__batch_offsets(consumer_t *c, const srl_source_pos_t *work, const srl_source_batch_t *b,
                          srl_offset_update_t *out, bool *all_caught_up)
{
    int64_t now = srl_clock_wall_ms();
    *all_caught_up = true;
    c->lag_records = 0;
    c->lag_seconds = 0;
    for (size_t i = 0; i < c->npos; i++) {
        int64_t high = i < b->npos ? b->high[i] : -1;
        bool cached = (i < b->npos && b->eof[i] && work[i].offset >= c->pos[i].offset) ||
                      (high >= 0 && work[i].offset >= high);
        int64_t stamp = srl__horizon_stamp(c, i, work[i].offset);
        double lag_s = -1;
        if (stamp > 0 || (cached && srl__horizon_caught_up(c, i)))
            lag_s = 0;
        else if (!cached && c->pos_last_ts[i] > 0)
            lag_s = (now - c->pos_last_ts[i]) / 1000.0;
        else if (c->ev[i].caught_wall > 0)
            lag_s = (now - c->ev[i].caught_wall) / 1000.0; /* no news: time since evidence */
        if (!cached)
            *all_caught_up = false;
        if (high >= 0 && high > work[i].offset)
            c->lag_records += high - work[i].offset;
        if (lag_s > c->lag_seconds)
            c->lag_seconds = lag_s;
        out[i] = (srl_offset_update_t){work[i].topic,  work[i].partition,
                                       work[i].offset, stamp,
                                       high,           lag_s};
    }
    return c->npos;
}

/* Commit what is staged. On INVALID (a row the store refuses), the caller
 * bisects. */
static srl_store_rc_t commit_staged(consumer_t *c, const srl_offset_update_t *offs, size_t noffs,
                                    char *err, size_t errsize)
{
    srl_apply_stats_t s = {0};
    PGconn *conn = srl_store_conn(c->st);
    c->extra.len = 0;
    if (!srl_logq_take_sql(c->logq, conn, &c->extra) || !srl_buf_add(&c->extra, "", 1)) {
        snprintf(err, errsize, "out of memory");
        return SRL_STORE_FATAL;
    }
    int64_t t0 = srl_clock_mono_ms();
    srl_store_rc_t rc = srl_apply_commit(c->apply, conn, offs, noffs, c->lag_columns, &c->dl,
                                         c->extra.data, &s, err, errsize);
    c->store_ms += srl_clock_mono_ms() - t0;
    if (rc == SRL_STORE_OK) {
        c->total_records += s.records + (int64_t)c->dl.count;
        c->window_records += s.records + (int64_t)c->dl.count;
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            c->total_upserted += s.upserted[k];
            c->total_deleted += s.deleted[k];
        }
        c->total_stale += s.stale;
        c->total_split += s.sessions > 1;
        c->total_dead += (int64_t)c->dl.count;
    }
    srl_apply_reset(c->apply);
    srl_deadletter_reset(&c->dl);
    return rc;
}

srl_store_rc_t srl__batch_apply(consumer_t *c, const srl_source_batch_t *b, size_t lo, size_t hi,
                                srl_source_pos_t *work, srl_offset_update_t *offs,
                                bool *all_caught_up, char *err, size_t errsize)
{
    srl_source_pos_t *trial = malloc(c->npos * sizeof(*trial));
    if (!trial) {
        snprintf(err, errsize, "out of memory");
        return SRL_STORE_FATAL;
    }
    memcpy(trial, work, c->npos * sizeof(*trial));
    int64_t t0 = srl_clock_mono_ms();
    stage_range(c, b->records, lo, hi, trial, NULL);
    if (hi == b->count)
        advance_next(c, b, trial);
    c->decode_ms += srl_clock_mono_ms() - t0;
    size_t n = srl__batch_offsets(c, trial, b, offs, all_caught_up);
    srl_store_rc_t rc = commit_staged(c, offs, n, err, errsize);
    if (rc == SRL_STORE_INVALID) {
        if (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            rc = srl__batch_apply(c, b, lo, mid, work, offs, all_caught_up, err, errsize);
            if (rc == SRL_STORE_OK)
                rc = srl__batch_apply(c, b, mid, hi, work, offs, all_caught_up, err, errsize);
            free(trial);
            return rc;
        }
        /* One record the store refuses: dead-letter it with the reason. */
        char reason[600];
        snprintf(reason, sizeof(reason), "refused by the store: %s", err);
        memcpy(trial, work, c->npos * sizeof(*trial));
        stage_range(c, b->records, lo, hi, trial, reason);
        if (hi == b->count)
            advance_next(c, b, trial);
        n = srl__batch_offsets(c, trial, b, offs, all_caught_up);
        rc = commit_staged(c, offs, n, err, errsize);
    }
    if (rc == SRL_STORE_OK) {
        memcpy(work, trial, c->npos * sizeof(*trial));
        srl__horizon_committed(c, work);
    }
    free(trial);
    return rc;
}
