/*
 * stats.h - what the producer reports (stats.c).
 * This file is private to sysrepl-producer.
 */
#ifndef SRL_PRODUCER_STATS_H
#define SRL_PRODUCER_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "producer.h"

/* Remember "what: why" as producer_state.last_error (written by the next
 * bookkeeping). */
void srl__stats_error(producer_t *p, const char *what, const char *why);

/* Log the counters and the time split as one line with message msg
 * ("stats", or "stopped" at the end) and start a new interval. */
void srl__stats_log(producer_t *p, const char *msg);

/* Write the queued replication_log lines, the last error and (at most once
 * a STATE_INTERVAL_MS, or now when force) producer_state on the work
 * session. Does nothing while the store is down or a read runs there.
 * Failures are ignored: the lines stay in the process log, and the state
 * is written again with the next change. */
void srl__stats_bookkeeping(producer_t *p, bool force);

/* Once per loop turn: the stats line when stats.interval_ms has passed,
 * bookkeeping when the work session is idle. */
void srl__stats_tick(producer_t *p, int64_t now_ms);

#endif
