/*
 * decode.h - private to sysrepl-consumer: one record from a topic to what
 * the store applies, or to a dead letter with the reason it cannot be.
 *
 * A record is an upsert (Avro single-object value, or the Confluent framing:
 * 00 + schema id) or a tombstone (no value, version in the sysrepl.version
 * header). It is dead-lettered when its writer schema is unknown and not
 * on <prefix>.schemas (nor, for a schema id, at schema.registry.url), its bytes are
 * not our format or do not decode, its values are impossible, it is of
 * another kind than its topic, its key is not the key of its content, or
 * it is a tombstone without a version.
 */
#ifndef SRL_CONSUMER_DECODE_H
#define SRL_CONSUMER_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "sysrepl/codec.h"
#include "sysrepl/record.h"

#include "schemas_load.h"

typedef enum srl_decoded {
    SRL_DECODED_UPSERT,    /* *e filled (the caller clears it) */
    SRL_DECODED_TOMBSTONE, /* delete of r->key at r->version */
    SRL_DECODED_DEAD       /* reason says why */
} srl_decoded_t;

/* Decode r. On an unknown fingerprint or schema id, asks loader (may be NULL) to read
 * the schema topic, then tries again. The key of an upsert is written to
 * key (NUL-terminated) and checked against r->key. */
srl_decoded_t srl_decode_record(srl_registry_t *reg, srl_schemas_loader_t *loader,
                                const srl_record_t *r, srl_entity_t *e, char *key, size_t key_size,
                                char *reason, size_t reason_size);

#endif
