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

#include <jansson.h>

#include "sysrepl/model.h"

/* New reference the caller owns, or NULL with errstr set. */
json_t *srl_json_from_entity(const srl_entity_t *e, char *errstr, size_t errstr_size);

/* Fill *e (kind given by the caller) from a JSON object. On failure *e is
 * left cleared and errstr names the field. */
bool srl_json_to_entity(const json_t *obj, srl_kind_t kind, srl_entity_t *e,
                        char *errstr, size_t errstr_size);

#endif
