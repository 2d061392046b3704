/*
 * keys.h - the record key of each entity: plain UTF-8 bytes, readable in
 * any Kafka tool. The same entity always gives the same bytes (compaction
 * depends on it).
 *   assessment type:  its name as given                  "Blocked"
 *   assessment:       vulnerability id, '|', scope        "CVE-2021-44228|global"
 *                     scope is "global" or <kind>:<name>  "PGV-1234567|feed:nuget.org"
 *   policy:           its name as given                  "Global"
 */
#ifndef SRL_KEYS_H
#define SRL_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "sysrepl/model.h"

/* Write the key of e into buf (NUL-terminated); returns its length, or -1
 * if it does not fit or a key field is missing. */
int srl_key_build(const srl_entity_t *e, char *buf, size_t buf_size);

/* Malloc'd key, or NULL when a key field is missing. */
char *srl_key_dup(const srl_entity_t *e);

#endif
