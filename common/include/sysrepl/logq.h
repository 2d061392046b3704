/*
 * logq.h - the replication-log queue: a daemon's important log lines, kept
 * for the store's replication_log table.
 *
 * A log sink (srl_log_set_sink) may run on any thread, librdkafka's too,
 * and under the log mutex, so it must not touch the store: it only queues.
 * The daemon's loop, on the thread that owns the store session, takes the
 * queued lines as INSERT statements (to send with its next transaction) or
 * writes them at once.
 *
 * Guarantees: lines of the queue's component at or above its level,
 * except the periodic "stats" line, are queued in log order; at most
 * SRL_LOGQ_MAX wait, and lines beyond that are counted and reported as one
 * warn line when the queue is next taken. A line longer than about 1 KB is
 * cut. Lines taken but not committed (a failed transaction) are lost from
 * the table, never from the process log.
 *
 *     srl_logq_t *q = srl_logq_new("producer", SRL_LOG_INFO);
 *     srl_log_set_sink(srl_logq_sink, q);
 *     ...  srl_logq_flush(q, conn, err, sizeof(err));   (in the loop)
 *     srl_log_set_sink(NULL, NULL);
 *     srl_logq_free(q);
 */
#ifndef SRL_LOGQ_H
#define SRL_LOGQ_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "sysrepl/buf.h"
#include "sysrepl/log.h"
#include "sysrepl/store.h"

#define SRL_LOGQ_MAX 256

typedef struct srl_logq srl_logq_t;

/* A queue for the lines of component (e.g. "consumer": lowercase letters,
 * '_' and '-') at min_level or above. NULL when out of memory or for a
 * component that is not such a word. */
srl_logq_t *srl_logq_new(const char *component, srl_log_level_t min_level);

/* Free the queue and its unwritten lines; NULL accepted. Remove the sink
 * (srl_log_set_sink(NULL, NULL)) first. */
void srl_logq_free(srl_logq_t *q);

/* The srl_log_sink_fn: ctx is the srl_logq_t. Queues only (never blocks on
 * the store); callable from any thread. */
void srl_logq_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                   const char *kv);

/* Whether lines are waiting (or were dropped and not yet reported). */
bool srl_logq_pending(srl_logq_t *q);

/* Take and flush from one thread (the loop's) at a time. A NULL queue
 * has nothing pending and takes nothing. */

/* Take every queued line and append it to sql as "INSERT INTO
 * sysrepl.replication_log ...;" statements, one per line (values escaped
 * for conn), for the
 * caller to send, e.g. inside its own transaction. The queue is emptied
 * even when this fails; false only when out of memory (sql then holds a
 * prefix of whole statements). */
bool srl_logq_take_sql(srl_logq_t *q, PGconn *conn, srl_buf_t *sql);

/* Take the queued lines and run their INSERTs on conn now, in one round
 * trip. OK when none were queued. On failure the class as srl_store_exec
 * and errstr names replication_log; the taken lines are not kept. */
srl_store_rc_t srl_logq_flush(srl_logq_t *q, PGconn *conn, char *errstr, size_t errstr_size);

#endif
