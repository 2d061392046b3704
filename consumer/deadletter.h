/*
 * deadletter.h - private to sysrepl-consumer: records that cannot be
 * applied go to the dead_letters table with their reason, in the same
 * transaction as the offset advance past them, so a poison record is never
 * silently dropped and never stops replication.
 */
#ifndef SRL_CONSUMER_DEADLETTER_H
#define SRL_CONSUMER_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "sysrepl/record.h"
#include "sysrepl/store.h"

#include "sysrepl/rows.h"

/* Dead letters collected for the transaction being built. */
typedef struct srl_deadletters {
    srl_buf_t rows; /* COPY text rows for dead_letters */
    size_t count;
} srl_deadletters_t;

/* Log the record (level warn, with topic, partition, offset, reason) and
 * keep it for srl_deadletter_write. False only when out of memory. */
bool srl_deadletter_add(srl_deadletters_t *dl, const char *topic, const srl_record_t *r,
                        const char *reason);

/* COPY the collected rows into dead_letters on conn, inside the caller's
 * open transaction. Does not reset the list (the caller does, after its
 * commit succeeded, so a retried transaction writes them again). */
srl_store_rc_t srl_deadletter_write(srl_deadletters_t *dl, PGconn *conn, char *errstr,
                                    size_t errstr_size);

void srl_deadletter_reset(srl_deadletters_t *dl);
void srl_deadletter_free(srl_deadletters_t *dl); /* NULL accepted */

#endif
