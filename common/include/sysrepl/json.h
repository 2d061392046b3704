/*
 * json.h - the JSON form of each kind, for people, the CLI and HTTP.
 *
 * Field names are the schema's. Times are RFC 3339 UTC strings
 * ("2026-11-26T12:00:00.000Z") on output; input also accepts integer
 * milliseconds. Decoding validates types and enum symbols; an error names
 * the offending field ("scope.kind: unknown value \"galaxy\"").
 * Meta fields (origin, version, changed_at) are optional on input.
 */
#ifndef SRL_JSON_H
#define SRL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sysrepl/model.h"

/* New reference the caller owns, or NULL with errstr set. */
json_t *srl_json_from_entity(const srl_entity_t *e, char *errstr, size_t errstr_size);

/* Fill *e (kind given by the caller) from a JSON object. On failure *e is
 * left cleared and errstr names the field. */
bool srl_json_to_entity(const json_t *obj, srl_kind_t kind, srl_entity_t *e, char *errstr,
                        size_t errstr_size);

/* The rules every entity must pass before it is stored or replicated
 * (srl_json_to_entity runs them): the table of rules.h, the same rules as
 * the store's CHECK constraints, with the same text. false with errstr
 * "<field>: <rule>[, got <value>]". */
bool srl_entity_validate(const srl_entity_t *e, char *errstr, size_t errstr_size);

/* A vulnerability id is PREFIX-REST: PREFIX is an upper-case letter then
 * upper-case letters or digits, REST is letters, digits and '-' (so never
 * '|', which separates key parts), at most SRL_VULNERABILITY_ID_MAX bytes.
 * Known prefixes are held to their own form: CVE-yyyy-nnnn (4+ digits),
 * PGV-n (digits), GHSA-xxxx-xxxx-xxxx (lower-case letters and digits). */
#define SRL_VULNERABILITY_ID_MAX 128
bool srl_vulnerability_id_valid(const char *id);

/* ms since the epoch <-> "2026-11-26T12:00:00.000Z". Formatting fails for
 * times outside years 0000..9999 (JSON output then carries integer ms).
 * Parsing accepts RFC 3339 with 'Z' or a +hh:mm/-hh:mm offset and any
 * number of fraction digits (truncated to ms); it rejects anything else. */
bool srl_json_format_time(int64_t ms, char *buf, size_t buf_size);
bool srl_json_parse_time(const char *s, int64_t *ms_out);

#endif
