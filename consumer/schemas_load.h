/*
 * schemas_load.h - private to sysrepl-consumer: writer schemas learned at
 * run time. The hub publishes every writer schema to <prefix>.schemas
 * (key: fingerprint as 16 hex digits, value: the schema JSON) before the
 * first record that uses it; when the consumer meets a fingerprint its
 * registry does not know, it reads that topic to its end and adds every
 * schema (srl_registry_add), then decodes again.
 *
 * A value in the Confluent framing names its schema by id. The ids every
 * sysrepl writer uses without a registry are derived from the
 * fingerprints (srl_schema_id_derive), so reading the topic resolves them
 * too; an id still unknown then is asked of schema.registry.url (when
 * set): its schema is added and the id made an alias of it.
 */
#ifndef SRL_CONSUMER_SCHEMAS_LOAD_H
#define SRL_CONSUMER_SCHEMAS_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/codec.h"
#include "sysrepl/config.h"

#include "source.h"

typedef struct srl_schemas_loader srl_schemas_loader_t;

/* A loader reading topic through src (borrowed; it must outlive the
 * loader). NULL when out of memory. */
srl_schemas_loader_t *srl_schemas_loader_new(srl_source_t *src, const char *topic);
void srl_schemas_loader_free(srl_schemas_loader_t *l); /* NULL accepted */
/* Ask schema.registry.url of cfg (when set) for ids not on the topic. false
 * with errstr when the key's value is not a usable URL. */
bool srl_schemas_loader_use_registry(srl_schemas_loader_t *l, const srl_config_t *cfg, char *errstr,
                                     size_t errstr_size);
/* Make schema id known to reg: read the topic (srl_schemas_load), then ask
 * the registry. false with errstr saying where it was looked for. */
bool srl_schemas_resolve_id(srl_schemas_loader_t *l, srl_registry_t *reg, int32_t id, char *errstr,
                            size_t errstr_size);

/* Read the schema topic to its current end and add every schema to reg.
 * Skips the read when the topic has not grown since the last one (so a
 * stream of records with a fingerprint nobody published costs one
 * watermark query each, not a topic read). *added (may be NULL) gets the
 * number of new schemas. False with errstr when the topic cannot be read
 * (the caller dead-letters the record with that reason). */
bool srl_schemas_load(srl_schemas_loader_t *l, srl_registry_t *reg, int *added, char *errstr,
                      size_t errstr_size);

#endif
