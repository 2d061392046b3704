/*
 * rows.h - content rows of the store -> entities, for the producer.
 * This file is private to sysrepl-producer.
 *
 * The drain (outbox.c) and the snapshot (snapshot.c) select the columns of
 * a content table with the lists below (each under a table alias) and turn
 * each row into an srl_entity_t. Column order is the contract between the
 * SELECT and the parser: ROWS_<KIND>_NCOLS columns starting at col0,
 * version first. A NULL version column means "no such row" (LEFT JOIN).
 */
#ifndef SRL_PRODUCER_ROWS_H
#define SRL_PRODUCER_ROWS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "sysrepl/model.h"

#define ROWS_TYPE_COLS(a)                                                                      \
    a ".version, " a ".origin, " a ".changed_at, " a ".name, " a ".description, " a ".color, " \
    a ".severity_class, " a ".emitted_severity, " a ".auto_rule, " a ".cvss_min, " a           \
    ".cvss_max, array_to_json(" a ".pvrs_categories), " a ".default_expiry_days, " a          \
    ".inactive, " a ".built_in"
#define ROWS_TYPE_NCOLS 15

#define ROWS_ASSESSMENT_COLS(a)                                                                \
    a ".version, " a ".origin, " a ".changed_at, " a ".vulnerability_id, " a                   \
    ".assessment_type, " a ".comment, " a ".scope_kind, " a ".scope_name, " a                  \
    ".package_name, " a ".package_version_range, " a ".expires_at, " a ".automatic, " a       \
    ".assessed_by, " a ".assessed_at"
#define ROWS_ASSESSMENT_NCOLS 14

#define ROWS_POLICY_COLS(a)                                                                    \
    a ".version, " a ".origin, " a ".changed_at, " a ".name, " a ".description, "             \
    "array_to_json(" a ".feeds), " a ".unassessed, " a ".by_assessment_type, " a              \
    ".license_undetected, " a ".license_other, " a ".by_license, " a ".deprecated, " a        \
    ".unlisted, " a ".exceptions, " a ".risk_profile"
#define ROWS_POLICY_NCOLS 15

/* Number of columns of a kind's list above. */
int srl_rows_ncols(srl_kind_t kind);

/* The table of a kind and its key column ("name" or "key"). */
const char *srl_rows_table(srl_kind_t kind);
const char *srl_rows_key_column(srl_kind_t kind);

/* Whether the row's entity of this kind is present (version not NULL). */
bool srl_rows_present(const PGresult *res, int row, int col0);

/* Parse the columns [col0, col0 + ncols) of a row into *e (kind set,
 * cleared first). On failure *e is left cleared and errstr names the
 * column and the value. */
bool srl_rows_parse(const PGresult *res, int row, int col0, srl_kind_t kind, srl_entity_t *e,
                    char *errstr, size_t errstr_size);

#endif
