/*
 * startup.c - what the producer does before it drains: make the sink
 * (transport kafka or http) and publish the writer schemas, refuse topics
 * another hub writes, and run the snapshot when asked or when every
 * content topic is empty. Also remakes the sink after a fatal delivery
 * error.
 *
 * Guarantees: the drain starts only once the schemas are published and
 * the topics checked; a broker that does not answer is retried with
 * backoff (never an exit), a check that cannot be made is retried, and a
 * refusal exits with EXIT_REFUSED naming the topic and the other hub.
 */
#include "startup.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sink_http.h"
#include "snapshot.h"
#include "stats.h"
#include "sysrepl/clock.h"
#include "sysrepl/kafka.h"
#include "sysrepl/log.h"

bool srl__startup_sink(producer_t *p, int *exit_code)
{
    char err[512];
    int64_t backoff = 1000;
    *exit_code = EXIT_OK;
    while (!*p->stop) {
        bool retriable = false;
        if (srl_config_enum(p->cfg, SRL_KEY_TRANSPORT) == SRL_TRANSPORT_HTTP) {
            /* The bridge is retried by the sink itself; a config that
             * cannot work (no bridge.url, no key) is refused here. */
            p->sink = srl_sink_http_new(p->cfg, err, sizeof(err));
            if (!p->sink) {
                srl_log(SRL_LOG_ERROR, "producer", "config refused", "reason=%s", srl_log_q(err));
                *exit_code = EXIT_CONFIG;
                return false;
            }
        } else {
            p->sink = srl_sink_kafka_new(p->cfg, 30000, &retriable, err, sizeof(err));
        }
        if (p->sink) {
            bool ok = true, refused = false;
            for (int k = 0; k < SRL_KIND_COUNT && ok; k++) {
                if (!p->sink->ops->publish_schema)
                    break;
                ok = p->sink->ops->publish_schema(p->sink,
                                                  srl_registry_writer_fingerprint(p->reg,
                                                                                  (srl_kind_t)k),
                                                  srl_registry_writer_json(p->reg, (srl_kind_t)k),
                                                  30000, &refused, err, sizeof(err));
            }
            if (ok)
                return true;
            /* A schema registry that refuses our schema stops the hub:
             * its records could not be written with an id. */
            retriable = !refused;
            p->sink->ops->close(p->sink);
            p->sink = NULL;
        }
        if (!retriable) {
            srl_log(SRL_LOG_ERROR, "producer", "refused to start", "reason=%s", srl_log_q(err));
            *exit_code = EXIT_REFUSED;
            return false;
        }
        srl_log(SRL_LOG_WARN, "producer", "Kafka unavailable, retrying",
                "reason=%s retry_in_ms=%" PRId64, srl_log_q(err), backoff);
        srl__stats_error(p, "kafka", err);
        srl__producer_nap(p, backoff);
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
    return false;
}

/* Whether every replicated content topic is empty. Topics another hub
 * writes are refused (*exit_code EXIT_REFUSED); a check that cannot be
 * made (broker away) is retried. false on a refusal or a stop. */
static bool check_topics(producer_t *p, bool *all_empty, int *exit_code)
{
    char err[512];
    *all_empty = true;
    for (int k = 0; k < SRL_KIND_COUNT && !*p->stop; k++) {
        if (!(p->kind_mask & (1u << k)))
            continue;
        bool empty = false, refused = false;
        bool ok = !p->sink->ops->check_origin ||
                  p->sink->ops->check_origin(p->sink, (srl_kind_t)k, p->instance_id, &refused, err,
                                             sizeof(err));
        if (!ok && refused) {
            srl_log(SRL_LOG_ERROR, "producer", "refused to start", "reason=%s", srl_log_q(err));
            fprintf(stderr, "sysrepl-producer: %s\n", err);
            *exit_code = EXIT_REFUSED;
            return false;
        }
        if (ok && p->sink->ops->topic_empty)
            ok = p->sink->ops->topic_empty(p->sink, (srl_kind_t)k, &empty, err, sizeof(err));
        if (!ok) {
            srl_log(SRL_LOG_WARN, "producer", "checking the topics failed, retrying", "reason=%s",
                    srl_log_q(err));
            srl__stats_error(p, "kafka", err);
            srl__producer_nap(p, 2000);
            k--;
            continue;
        }
        if (!p->sink->ops->topic_empty || !empty)
            *all_empty = false;
    }
    return !*p->stop;
}

/* Publish the full state (srl_snapshot_run). false with *exit_code on a
 * failure (EXIT_FATAL; EXIT_OK when it stopped for a stop request). */
static bool run_snapshot(producer_t *p, bool requested, bool all_empty, int *exit_code)
{
    char err[512];
    srl_snapshot_stats_t ss;
    int64_t t0 = srl_clock_mono_ms();
    srl_store_rc_t rc = srl_snapshot_run(p->st, p->sink, p->reg, p->kind_mask, p->instance_id,
                                         p->batch_size, all_empty, p->stop, &ss, err, sizeof(err));
    if (rc != SRL_STORE_OK) {
        srl_log(SRL_LOG_ERROR, "producer", "snapshot failed", "reason=%s", srl_log_q(err));
        srl__stats_error(p, "snapshot", err);
        srl__stats_bookkeeping(p, true);
        *exit_code = *p->stop ? EXIT_OK : EXIT_FATAL;
        return false;
    }
    int64_t pub = 0, tomb = 0;
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        pub += ss.published[k];
        tomb += ss.tombstoned[k];
    }
    srl_log(SRL_LOG_INFO, "producer", "snapshot done",
            "reason=%s published=%" PRId64 " tombstoned=%" PRId64 " ms=%" PRId64,
            requested ? "requested" : "empty-topics", pub, tomb, srl_clock_mono_ms() - t0);
    return true;
}

bool srl__startup_topics(producer_t *p, bool snapshot, int *exit_code)
{
    bool all_empty;
    *exit_code = EXIT_OK;
    if (!check_topics(p, &all_empty, exit_code))
        return false;
    if (snapshot || all_empty)
        return run_snapshot(p, snapshot, all_empty, exit_code);
    return true;
}

bool srl__startup_sink_again(producer_t *p, int *exit_code)
{
    if (strcmp(p->sink->ops->name, "http") == 0) {
        /* The bridge refused the batch for good (401/403, a record it
         * rejects): retrying cannot fix it. The rows stay in the outbox;
         * stop and let the operator (or systemd) act. */
        srl_log(SRL_LOG_ERROR, "producer", "stopping: the bridge refused delivery", "reason=%s",
                srl_log_q(p->last_error));
        *exit_code = EXIT_FATAL;
        return false;
    }
    srl_log(SRL_LOG_WARN, "producer", "recreating the Kafka producer after a fatal error", NULL);
    p->sink->ops->close(p->sink);
    p->sink = NULL;
    p->sink_broken = false;
    return srl__startup_sink(p, exit_code);
}
