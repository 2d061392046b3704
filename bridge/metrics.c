/*
 * metrics.c - the bridge's counters, GET /metrics in Prometheus text, and
 * the periodic one-line stats summary that reads the same numbers.
 *
 * Counters are process-wide atomics (one bridge per process), updated from
 * any thread without locks. The gauges are read through the function
 * main.c registers, so this file calls no other part of the bridge.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sysrepl/log.h"

#define STATUS_MIN 100
#define STATUS_MAX 599
#define NBUCKETS 12

static const double bucket_s[NBUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                          1,     2.5,   5,    10,   30,  60};

static atomic_ulong requests[SRL_ROUTE_COUNT][STATUS_MAX - STATUS_MIN + 1];
static atomic_ulong latency_bucket[SRL_ROUTE_COUNT][NBUCKETS];
static atomic_ulong latency_count[SRL_ROUTE_COUNT];
static atomic_ulong latency_sum_ms[SRL_ROUTE_COUNT];
static atomic_ulong served[SRL_KIND_COUNT];
static atomic_ulong accepted[SRL_KIND_COUNT];
static atomic_ulong push_rejected;
static atomic_ulong kafka_errors;
static atomic_ulong header_timeouts;

static srl_metrics_gauges_fn gauges_fn;
static void *gauges_arg;

const char *srl_metrics_route_name(srl_route_t route)
{
    static const char *const names[SRL_ROUTE_COUNT] = {"pull",   "push",    "state",    "schemas",
                                                       "health", "metrics", "registry", "other"};
    return route < SRL_ROUTE_COUNT ? names[route] : "other";
}

void srl_metrics_set_gauges(srl_metrics_gauges_fn fn, void *arg)
{
    gauges_fn = fn;
    gauges_arg = arg;
}

static void read_gauges(srl_metrics_gauges_t *g)
{
    memset(g, 0, sizeof(*g));
    if (gauges_fn)
        gauges_fn(gauges_arg, g);
}

void srl_metrics_request(srl_route_t route, unsigned status, int64_t elapsed_ms)
{
    if (route >= SRL_ROUTE_COUNT)
        route = SRL_ROUTE_OTHER;
    if (status < STATUS_MIN || status > STATUS_MAX)
        status = 500;
    atomic_fetch_add(&requests[route][status - STATUS_MIN], 1);
    if (elapsed_ms < 0)
        elapsed_ms = 0;
    for (int i = 0; i < NBUCKETS; i++)
        if ((double)elapsed_ms / 1000.0 <= bucket_s[i])
            atomic_fetch_add(&latency_bucket[route][i], 1);
    atomic_fetch_add(&latency_count[route], 1);
    atomic_fetch_add(&latency_sum_ms[route], (unsigned long)elapsed_ms);
}

void srl_metrics_records_served(srl_kind_t kind, size_t n)
{
    if ((unsigned)kind < SRL_KIND_COUNT)
        atomic_fetch_add(&served[kind], n);
}

void srl_metrics_records_accepted(srl_kind_t kind, size_t n)
{
    if ((unsigned)kind < SRL_KIND_COUNT)
        atomic_fetch_add(&accepted[kind], n);
}

void srl_metrics_header_timeouts(unsigned n)
{
    atomic_fetch_add(&header_timeouts, n);
}

void srl_metrics_push_rejected(void)
{
    atomic_fetch_add(&push_rejected, 1);
}

void srl_metrics_kafka_error(void)
{
    atomic_fetch_add(&kafka_errors, 1);
}

char *srl_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    fprintf(f, "# HELP sysrepl_bridge_requests_total HTTP requests by route and status.\n"
               "# TYPE sysrepl_bridge_requests_total counter\n");
    for (int r = 0; r < SRL_ROUTE_COUNT; r++)
        for (int s = 0; s <= STATUS_MAX - STATUS_MIN; s++) {
            unsigned long v = atomic_load(&requests[r][s]);
            if (v)
                fprintf(f, "sysrepl_bridge_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
                        srl_metrics_route_name((srl_route_t)r), s + STATUS_MIN, v);
        }
    fprintf(f, "# HELP sysrepl_bridge_request_duration_seconds Time from request headers to "
               "response, long polls included.\n"
               "# TYPE sysrepl_bridge_request_duration_seconds histogram\n");
    for (int r = 0; r < SRL_ROUTE_COUNT; r++) {
        unsigned long count = atomic_load(&latency_count[r]);
        if (!count)
            continue;
        const char *rn = srl_metrics_route_name((srl_route_t)r);
        for (int i = 0; i < NBUCKETS; i++)
            fprintf(f,
                    "sysrepl_bridge_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lu\n",
                    rn, bucket_s[i], atomic_load(&latency_bucket[r][i]));
        fprintf(f, "sysrepl_bridge_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lu\n",
                rn, count);
        fprintf(f, "sysrepl_bridge_request_duration_seconds_sum{route=\"%s\"} %.3f\n", rn,
                (double)atomic_load(&latency_sum_ms[r]) / 1000.0);
        fprintf(f, "sysrepl_bridge_request_duration_seconds_count{route=\"%s\"} %lu\n", rn, count);
    }
    fprintf(f, "# HELP sysrepl_bridge_records_served_total Records sent to pulling clients.\n"
               "# TYPE sysrepl_bridge_records_served_total counter\n");
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        fprintf(f, "sysrepl_bridge_records_served_total{kind=\"%s\"} %lu\n",
                srl_kind_name((srl_kind_t)k), atomic_load(&served[k]));
    fprintf(f, "# HELP sysrepl_bridge_records_accepted_total Pushed records the broker "
               "acknowledged.\n"
               "# TYPE sysrepl_bridge_records_accepted_total counter\n");
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        fprintf(f, "sysrepl_bridge_records_accepted_total{kind=\"%s\"} %lu\n",
                srl_kind_name((srl_kind_t)k), atomic_load(&accepted[k]));
    fprintf(f,
            "# HELP sysrepl_bridge_push_rejected_total Push batches rejected as invalid.\n"
            "# TYPE sysrepl_bridge_push_rejected_total counter\n"
            "sysrepl_bridge_push_rejected_total %lu\n",
            atomic_load(&push_rejected));
    fprintf(f,
            "# HELP sysrepl_bridge_kafka_errors_total Errors reported by librdkafka.\n"
            "# TYPE sysrepl_bridge_kafka_errors_total counter\n"
            "sysrepl_bridge_kafka_errors_total %lu\n",
            atomic_load(&kafka_errors));
    fprintf(f,
            "# HELP sysrepl_bridge_header_timeouts_total Connections closed for not sending a "
            "request header within bridge.header_timeout_ms.\n"
            "# TYPE sysrepl_bridge_header_timeouts_total counter\n"
            "sysrepl_bridge_header_timeouts_total %lu\n",
            atomic_load(&header_timeouts));
    srl_metrics_gauges_t g;
    read_gauges(&g);
    fprintf(f,
            "# HELP sysrepl_bridge_connections Open HTTP connections.\n"
            "# TYPE sysrepl_bridge_connections gauge\n"
            "sysrepl_bridge_connections %d\n"
            "# HELP sysrepl_bridge_long_polls Requests waiting for new records.\n"
            "# TYPE sysrepl_bridge_long_polls gauge\n"
            "sysrepl_bridge_long_polls %zu\n"
            "# HELP sysrepl_bridge_window_records Records held in the in-memory windows.\n"
            "# TYPE sysrepl_bridge_window_records gauge\n"
            "sysrepl_bridge_window_records %zu\n"
            "# HELP sysrepl_bridge_window_bytes Bytes held in the in-memory windows.\n"
            "# TYPE sysrepl_bridge_window_bytes gauge\n"
            "sysrepl_bridge_window_bytes %zu\n"
            "# HELP sysrepl_bridge_reader_queue Reads waiting for a reader thread.\n"
            "# TYPE sysrepl_bridge_reader_queue gauge\n"
            "sysrepl_bridge_reader_queue %zu\n",
            g.connections, g.long_polls, g.window_records, g.window_bytes, g.reader_queue);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

void srl_metrics_log_stats(void)
{
    unsigned long reqs = 0, errs = 0, sv = 0, ac = 0;
    for (int r = 0; r < SRL_ROUTE_COUNT; r++)
        for (int s = 0; s <= STATUS_MAX - STATUS_MIN; s++) {
            unsigned long v = atomic_load(&requests[r][s]);
            reqs += v;
            if (s + STATUS_MIN >= 500)
                errs += v;
        }
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        sv += atomic_load(&served[k]);
        ac += atomic_load(&accepted[k]);
    }
    srl_metrics_gauges_t g;
    read_gauges(&g);
    srl_log(SRL_LOG_INFO, "bridge", "stats",
            "requests=%lu server_errors=%lu records_served=%lu records_accepted=%lu "
            "push_rejected=%lu kafka_errors=%lu header_timeouts=%lu connections=%d long_polls=%zu "
            "window_records=%zu window_bytes=%zu",
            reqs, errs, sv, ac, atomic_load(&push_rejected), atomic_load(&kafka_errors),
            atomic_load(&header_timeouts), g.connections, g.long_polls, g.window_records,
            g.window_bytes);
}
