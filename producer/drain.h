/*
 * drain.h - the drain pipeline: outbox -> batches in flight -> sink,
 * delivered rows deleted (drain.c).
 * This file is private to sysrepl-producer.
 */
#ifndef SRL_PRODUCER_DRAIN_H
#define SRL_PRODUCER_DRAIN_H

#include <stdbool.h>

#include "producer.h"

/* Retire the completed batches at the head of the ring, in order: delete
 * a delivered batch's rows (asynchronously; it stays at the head while
 * its DELETE runs), keep a failed batch's rows for a later read. */
void srl__drain_retire(producer_t *p);

/* Take the pending read's result when it is there (build, publish, queue
 * the batch; the next read is sent first) and send a read when one may be
 * sent. stopping: results are dropped and no read is sent. */
void srl__drain_step(producer_t *p, bool stopping);

/* Whether a read may be sent now (a slot is free, the store is up, and
 * there is reason to read: a full last read, a NOTIFY, the poll interval,
 * a sweep due). The loop does not sleep when it may. */
bool srl__drain_may_read(producer_t *p, bool stopping);

/* No batch in flight and no read pending. */
bool srl__drain_idle(const producer_t *p);

/* At the end: wait for a pending read and drop its result (its rows stay
 * in the outbox). */
void srl__drain_finish(producer_t *p);

/* Free the batches still in the ring (not delivered: published again on
 * the next start). */
void srl__drain_free(producer_t *p);

/* WAL capture. After the sessions connect: decide where changes are read
 * (producer.capture, wal_level), and on a WAL store make the slot and
 * switch the outbox triggers off (srl_store_wal_engage). false: not now
 * (retry), or never when *exit_code is set. */
bool srl__drain_capture_prepare(producer_t *p, int *exit_code);
/* The replication stream's descriptor while it is the source, else -1. */
int srl__drain_wal_socket(const producer_t *p);
/* Close the stream (confirming what is delivered); the next capture
 * prepare and outbox drain open it again. */
void srl__drain_wal_close(producer_t *p);

#endif
