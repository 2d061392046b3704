/*
 * connect.c - what sysrepl-consumer waits for before it can replicate: its
 * store (reconnected with backoff while away; a wrong DSN or schema is
 * fatal) and the partitions of the replicated topics (waited for while
 * the hub has not created them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

#include "consumer.h"

bool srl__consumer_store_connect(consumer_t *c)
{
    char err[512];
    int64_t backoff = SRL_CONSUMER_BACKOFF_MIN_MS;
    bool warned = false;
    srl_store_close(c->st);
    c->st = NULL;
    if (c->apply)
        srl_apply_drop_sessions(c->apply);
    while (!srl__consumer_stop) {
        srl_store_rc_t rc;
        c->st = srl_store_connect(c->dsn, &rc, err, sizeof(err));
        if (c->st) {
            rc = srl_store_check_version(c->st, err, sizeof(err));
            if (rc == SRL_STORE_OK)
                rc = srl_apply_prepare(srl_store_conn(c->st), err, sizeof(err));
            if (rc == SRL_STORE_OK)
                break;
            srl_store_close(c->st);
            c->st = NULL;
        }
        if (rc != SRL_STORE_UNREACHABLE && rc != SRL_STORE_RETRY) {
            srl_log(SRL_LOG_ERROR, "consumer", "store unusable", "reason=%s", srl_log_q(err));
            return false;
        }
        if (!warned)
            srl_log(SRL_LOG_WARN, "consumer", "store unreachable, waiting", "reason=%s",
                    srl_log_q(err));
        warned = true;
        srl__consumer_nap(backoff);
        backoff = backoff * 2 > SRL_CONSUMER_BACKOFF_MAX_MS ? SRL_CONSUMER_BACKOFF_MAX_MS
                                                            : backoff * 2;
    }
    if (!c->st)
        return false;
    if (warned)
        srl_log(SRL_LOG_INFO, "consumer", "store reachable again", "where=%s",
                srl_log_q(srl_store_where(c->st)));
    c->lag_columns = srl_offsets_have_lag_columns(srl_store_conn(c->st));
    srl_store_settings_t s;
    if (srl_store_get_settings(c->st, &s, err, sizeof(err)) == SRL_STORE_OK && s.instance_id[0])
        snprintf(c->local_origin, sizeof(c->local_origin), "%s", s.instance_id);
    else
        snprintf(c->local_origin, sizeof(c->local_origin), "%s", c->instance_id);
    return true;
}

bool srl__consumer_find_partitions(consumer_t *c)
{
    char err[512];
    int64_t last_warn = 0;
    for (size_t t = 0; t < c->ntopics; t++) {
        while (!srl__consumer_stop) {
            int n = 0;
            srl_source_rc_t rc = c->src->ops->partitions(c->src, c->topics[t].name, &n,
                                                         SRL_CONSUMER_META_TIMEOUT_MS, err,
                                                         sizeof(err));
            if (rc == SRL_SOURCE_OK) {
                c->topics[t].partitions = n;
                break;
            }
            if (rc == SRL_SOURCE_FATAL) {
                c->kafka_denied = strstr(err, SRL_KAFKA_DENIED_MARK) != NULL;
                srl_log(SRL_LOG_ERROR, "consumer", "cannot read topic", "topic=%s reason=%s",
                        srl_log_q(c->topics[t].name), srl_log_q(err));
                return false;
            }
            if (srl_clock_mono_ms() - last_warn > 30000) {
                srl_log(SRL_LOG_WARN, "consumer", "waiting for topic", "topic=%s reason=%s",
                        srl_log_q(c->topics[t].name), srl_log_q(err));
                last_warn = srl_clock_mono_ms();
            }
            srl__consumer_nap(1000);
        }
    }
    if (srl__consumer_stop)
        return false;
    size_t total = 0;
    for (size_t t = 0; t < c->ntopics; t++)
        total += (size_t)c->topics[t].partitions;
    free(c->pos);
    free(c->pos_topic);
    free(c->pos_last_ts);
    free(c->ev);
    c->pos = calloc(total ? total : 1, sizeof(*c->pos));
    c->pos_topic = calloc(total ? total : 1, sizeof(*c->pos_topic));
    c->pos_last_ts = calloc(total ? total : 1, sizeof(*c->pos_last_ts));
    c->ev = calloc(total ? total : 1, sizeof(*c->ev));
    if (!c->pos || !c->pos_topic || !c->pos_last_ts || !c->ev)
        return false;
    c->npos = 0;
    for (size_t t = 0; t < c->ntopics; t++) {
        for (int p = 0; p < c->topics[t].partitions; p++) {
            c->pos_topic[c->npos] = t;
            c->ev[c->npos].probe_high = -1;
            c->pos[c->npos++] = (srl_source_pos_t){c->topics[t].name, c->topics[t].kind, p, 0};
        }
    }
    return true;
}
