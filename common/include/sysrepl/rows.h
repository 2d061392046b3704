/*
 * rows.h - content rows of the store <-> model.h entities: the one place
 * that knows how a model.h struct maps onto the columns of 001_init.sql.
 *
 * Writing (rows_copy.c): entities as rows in PostgreSQL's COPY text format,
 * in the column order of srl_rows_columns(); the consumer's apply and
 * rebuild stream them into the store.
 *
 * Reading (rows_parse.c): the producer's drain (outbox.c) and snapshot
 * select the columns of a content table with the SRL_ROWS_*_COLS lists
 * below (each under a table alias) and turn each row, in libpq's text
 * format, into an srl_entity_t. Column order is the contract between the
 * SELECT and the parser: SRL_ROWS_<KIND>_NCOLS columns starting at col0,
 * version first. A NULL version column means "no such row" (LEFT JOIN).
 *
 * The table and key column of a kind are srl_kind_table() and
 * srl_kind_key_column() (model.h).
 */
#ifndef SRL_ROWS_H
#define SRL_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "sysrepl/buf.h"
#include "sysrepl/model.h"

/* ---- writing: COPY text rows (rows_copy.c) ---- */

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

/* ---- reading: result rows -> entities (rows_parse.c) ---- */

#define SRL_ROWS_TYPE_COLS(a)                                                                    \
    a ".version, " a ".origin, " a ".changed_at, " a ".name, " a ".description, " a ".color, " a \
      ".severity_class, " a ".emitted_severity, " a ".auto_rule, " a ".cvss_min, " a             \
      ".cvss_max, array_to_json(" a ".pvrs_categories), " a ".default_expiry_days, " a           \
      ".inactive, " a ".built_in"
#define SRL_ROWS_TYPE_NCOLS 15

#define SRL_ROWS_ASSESSMENT_COLS(a)                                                       \
    a ".version, " a ".origin, " a ".changed_at, " a ".vulnerability_id, " a              \
      ".assessment_type, " a ".comment, " a ".scope_kind, " a ".scope_name, " a           \
      ".package_name, " a ".package_version_range, " a ".expires_at, " a ".automatic, " a \
      ".assessed_by, " a ".assessed_at"
#define SRL_ROWS_ASSESSMENT_NCOLS 14

#define SRL_ROWS_POLICY_COLS(a)                                                          \
    a ".version, " a ".origin, " a ".changed_at, " a ".name, " a ".description, "        \
      "array_to_json(" a ".feeds), " a ".unassessed, " a ".by_assessment_type, " a       \
      ".license_undetected, " a ".license_other, " a ".by_license, " a ".deprecated, " a \
      ".unlisted, " a ".exceptions, " a ".risk_profile"
#define SRL_ROWS_POLICY_NCOLS 15

/* Number of columns of a kind's list above. */
int srl_rows_ncols(srl_kind_t kind);

/* Whether the row's entity of this kind is present (version not NULL). */
bool srl_rows_present(const PGresult *res, int row, int col0);

/* Parse the columns [col0, col0 + ncols) of a row into *e (kind set,
 * cleared first). On failure *e is left cleared and errstr names the
 * column and the value. */
bool srl_rows_parse(const PGresult *res, int row, int col0, srl_kind_t kind, srl_entity_t *e,
                    char *errstr, size_t errstr_size);

#endif
