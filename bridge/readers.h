/*
 * readers.h - This file is private to sysrepl-bridge: the reader pool
 * (readers.c), consumers for reads below the tail's window and threads for
 * the broker calls a request handler must not block on.
 */
#ifndef SRL_BRIDGE_READERS_H
#define SRL_BRIDGE_READERS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "bridge.h"
#include "http.h"

typedef void (*srl_job_fn)(srl_bridge_t *b, rd_kafka_t *rk, srl_req_t *req);

srl_bridge_readers_t *srl_bridge_readers_start(srl_bridge_t *b, int count, char *errstr,
                                               size_t errstr_size);
/* Stop: queued jobs are answered 503, running ones finish, threads end;
 * later submissions are answered 503 at once. Idempotent; NULL ok. */
void srl_bridge_readers_stop(srl_bridge_readers_t *r);
void srl_bridge_readers_free(srl_bridge_readers_t *r); /* after stop; NULL ok */
/* Suspend req and run a read of (req->kind, req->partition, req->offset,
 * req->max) on a reader; the reader fills req->ready_* and resumes req. */
void srl_bridge_readers_pull(srl_bridge_readers_t *r, srl_req_t *req);
/* Suspend req and run fn(b, rk, req) on a reader (fn fills ready_*). */
void srl_bridge_readers_call(srl_bridge_readers_t *r, srl_req_t *req, srl_job_fn fn);
size_t srl_bridge_readers_queued(srl_bridge_readers_t *r);

#endif
