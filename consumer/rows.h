/*
 * rows.h - private to sysrepl-consumer: content rows in PostgreSQL's COPY
 * text format, and the column lists they follow. Apply and rebuild both
 * stream entities into the store through COPY; this is the one place that
 * knows how a model.h struct maps onto the columns of 001_init.sql.
 */
#ifndef SRL_CONSUMER_ROWS_H
#define SRL_CONSUMER_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include "sysrepl/buf.h"
#include "sysrepl/model.h"

/* The content table of a kind, and its key column ("name" or "key"). */
const char *srl_rows_table(srl_kind_t kind);
const char *srl_rows_key_column(srl_kind_t kind);

/* The columns a row carries, comma-separated, in row order. For
 * assessments this leaves out the generated "key" column (the content
 * table computes it); the staging tables carry it in front. */
const char *srl_rows_columns(srl_kind_t kind);

/* Append e as one COPY text line (ending in '\n') in the column order of
 * srl_rows_columns(e->kind); with_key puts the record key (key, NUL-
 * terminated) in front, for the staging tables of assessments. False on
 * out of memory or an entity that cannot be formatted (errstr says why). */
bool srl_rows_format(srl_buf_t *out, const srl_entity_t *e, bool with_key, const char *key,
                     char *errstr, size_t errstr_size);

#endif
