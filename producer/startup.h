/*
 * startup.h - the sink and the checks before the drain (startup.c).
 * This file is private to sysrepl-producer.
 */
#ifndef SRL_PRODUCER_STARTUP_H
#define SRL_PRODUCER_STARTUP_H

#include <stdbool.h>

#include "producer.h"

/* Make p->sink by `transport`, retrying a broker that does not answer,
 * and publish the writer schemas (waiting for their delivery). false with
 * *exit_code: EXIT_CONFIG (an http config that cannot work), EXIT_REFUSED
 * (a fatal Kafka error), EXIT_OK (a stop was requested). */
bool srl__startup_sink(producer_t *p, int *exit_code);

/* Check the replicated topics (another hub's: refused) and run the
 * snapshot when snapshot is set or every content topic is empty. false
 * with *exit_code (EXIT_REFUSED, EXIT_FATAL; EXIT_OK on a stop). */
bool srl__startup_topics(producer_t *p, bool snapshot, int *exit_code);

/* After a fatal delivery error, with nothing in flight: an http sink
 * stops the producer (EXIT_FATAL: the bridge refused for good); a Kafka
 * sink is closed and made again (as srl__startup_sink). */
bool srl__startup_sink_again(producer_t *p, int *exit_code);

#endif
