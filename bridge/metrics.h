/*
 * metrics.h - This file is private to sysrepl-bridge: the bridge's
 * counters, their Prometheus text and the periodic stats line (metrics.c).
 * At the bottom: it calls no other part of the bridge; the gauges it shows
 * (connections, windows, long polls, reader queue) come from a function
 * main.c registers.
 */
#ifndef SRL_BRIDGE_METRICS_H
#define SRL_BRIDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sysrepl/model.h"

/* The route label of a request in /metrics and in logs. The route table
 * (routes.c) gives each route one; a request matching none is OTHER. */
typedef enum {
    SRL_ROUTE_PULL = 0,
    SRL_ROUTE_PUSH,
    SRL_ROUTE_STATE,
    SRL_ROUTE_SCHEMAS,
    SRL_ROUTE_HEALTH,
    SRL_ROUTE_METRICS,
    SRL_ROUTE_REGISTRY, /* the Schema Registry API (routes_registry.c) */
    SRL_ROUTE_OTHER,
    SRL_ROUTE_COUNT
} srl_route_t;

/* "pull", "push", ...; "other" for anything out of range. */
const char *srl_metrics_route_name(srl_route_t route);

/* What the bridge holds right now, read when /metrics or the stats line
 * is written. */
typedef struct srl_metrics_gauges {
    int connections;       /* open HTTP connections */
    size_t long_polls;     /* requests waiting for new records */
    size_t window_records; /* records held in the in-memory windows */
    size_t window_bytes;
    size_t reader_queue; /* reads waiting for a reader thread */
} srl_metrics_gauges_t;

typedef void (*srl_metrics_gauges_fn)(void *arg, srl_metrics_gauges_t *out);

/* Where the gauges come from (set once, before the server starts; until
 * then they read 0). */
void srl_metrics_set_gauges(srl_metrics_gauges_fn fn, void *arg);

void srl_metrics_request(srl_route_t route, unsigned status, int64_t elapsed_ms);
void srl_metrics_records_served(srl_kind_t kind, size_t n);
void srl_metrics_records_accepted(srl_kind_t kind, size_t n);
void srl_metrics_push_rejected(void);
void srl_metrics_kafka_error(void);
/* n connections closed for not sending a request header in time
 * (bridge.header_timeout_ms). */
void srl_metrics_header_timeouts(unsigned n);
/* The Prometheus text of every metric; malloc'd, *len set; NULL when out
 * of memory. */
char *srl_metrics_render(size_t *len);
/* One logfmt stats line. */
void srl_metrics_log_stats(void);

#endif
