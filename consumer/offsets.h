/*
 * offsets.h - private to sysrepl-consumer: the spoke's positions in the
 * topics, table consumer_offsets. Every statement that reads or writes it
 * is built here; the writes always run inside the transaction that applies
 * the rows the offsets produced (apply.c, rebuild.c), so a spoke's store
 * never holds rows without their offsets or offsets without their rows.
 *
 * caught_up_at is the wall-clock time of the newest *evidence* that the
 * partition was caught up: a high watermark asked of the broker (or the
 * bridge) at that time which the spoke's position had reached. It never
 * goes backwards, and nothing else moves it (horizon.c).
 */
#ifndef SRL_CONSUMER_OFFSETS_H
#define SRL_CONSUMER_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "sysrepl/buf.h"
#include "sysrepl/store.h"

/* Where a partition stands after a batch. caught_up_ms > 0: evidence that
 * the partition was caught up at that wall-clock time (ms since the epoch);
 * 0 leaves caught_up_at as it is. high_watermark -1 and lag_seconds < 0:
 * unknown. */
typedef struct srl_offset_update {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
    int64_t caught_up_ms;
    int64_t high_watermark;
    double lag_seconds;
} srl_offset_update_t;

/* One row of consumer_offsets as read back. caught_up_ms 0: never. */
typedef struct srl_offset_row {
    char topic[256];
    int32_t partition;
    int64_t next_offset;
    int64_t caught_up_ms;
} srl_offset_row_t;

/* Append to sql the upsert of offs[0..n) (one statement; nothing when n is
 * 0). lag_columns: the table has high_watermark and lag_seconds (schema 3
 * and later). False when out of memory. */
bool srl_offsets_upsert_sql(srl_buf_t *sql, PGconn *conn, const srl_offset_update_t *offs, size_t n,
                            bool lag_columns);

/* Append to sql a statement deleting every offset of topic (a rebuild
 * replaces them all). False when out of memory. */
bool srl_offsets_forget_topic_sql(srl_buf_t *sql, PGconn *conn, const char *topic);

/* Read every row into *rows (malloc'd, caller frees) and *n. */
srl_store_rc_t srl_offsets_read(PGconn *conn, srl_offset_row_t **rows, size_t *n, char *errstr,
                                size_t errstr_size);

/* Whether consumer_offsets has the lag columns (high_watermark,
 * lag_seconds) in this store. */
bool srl_offsets_have_lag_columns(PGconn *conn);

#endif
