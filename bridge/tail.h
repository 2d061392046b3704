/*
 * tail.h - This file is private to sysrepl-bridge: the tail (tail.c), one
 * consumer keeping the newest records of every replicated partition in
 * memory and holding the long polls that wait for more.
 */
#ifndef SRL_BRIDGE_TAIL_H
#define SRL_BRIDGE_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge.h"
#include "http.h"

typedef enum {
    SRL_TAIL_SERVED,    /* ready_* filled from the window */
    SRL_TAIL_WAITING,   /* registered as a waiter and suspended */
    SRL_TAIL_BELOW,     /* offset is below the window: ask the readers */
    SRL_TAIL_NOT_READY, /* partition not tailed yet (broker away at start) */
    SRL_TAIL_BEYOND     /* offset beyond the high watermark */
} srl_tail_rc_t;

srl_bridge_tail_t *srl_bridge_tail_start(srl_bridge_t *b, size_t window_bytes, char *errstr,
                                         size_t errstr_size);
void srl_bridge_tail_stop(srl_bridge_tail_t *t); /* resumes every waiter first; NULL ok */
/* Resume every waiter now and take no new ones (shutdown). */
void srl_bridge_tail_wake_all(srl_bridge_tail_t *t);
/* Serve req (offset, max, wait) from the window, or make it wait. */
srl_tail_rc_t srl_bridge_tail_pull(srl_bridge_tail_t *t, srl_req_t *req, bool may_wait,
                                   int64_t *high_out);
/* Partition count of a kind's topic as tailed (0 until known). */
int srl_bridge_tail_partitions(srl_bridge_tail_t *t, srl_kind_t kind);
/* High watermark last seen (-1 unknown). */
int64_t srl_bridge_tail_high(srl_bridge_tail_t *t, srl_kind_t kind, int32_t partition);
bool srl_bridge_tail_ready(srl_bridge_tail_t *t);
void srl_bridge_tail_stats(srl_bridge_tail_t *t, size_t *records, size_t *bytes, size_t *waiters);

#endif
