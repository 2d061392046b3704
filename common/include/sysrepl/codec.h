/*
 * codec.h - entities <-> Avro single-object encoding, with schema resolution.
 *
 * Wire form of a record value: C3 01, the 8-byte little-endian CRC-64-AVRO
 * fingerprint of the writer schema's parsing canonical form, then the Avro
 * binary body (single-object encoding); or, with value.format = confluent,
 * a zero byte, the 4-byte big-endian schema id, then the same body (the
 * Confluent Schema Registry framing). Both are decoded everywhere. The registry knows writer
 * schemas by fingerprint: ours are compiled in (from the .avsc files in schemas/); others are added
 * at run time (loaded from the <prefix>.schemas topic). Decoding resolves by field name against our
 * schema of the same kind: defaults filled, unknown fields ignored. avro-c's own resolver is never
 * used (it aborts on schemas that do not resolve).
 *
 * Errors: every function returning bool writes a reason into errstr
 * (caller-owned, errstr_size bytes) on failure; an output struct is left
 * cleared (never half-filled) on failure.
 */
#ifndef SRL_CODEC_H
#define SRL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/model.h"

#define SRL_CODEC_MAGIC0 0xC3
#define SRL_CODEC_MAGIC1 0x01
#define SRL_CODEC_HEADER_SIZE 10
/* The Confluent Schema Registry framing: a zero byte, the schema id as 4
 * bytes big-endian, then the same Avro body. */
#define SRL_CODEC_CONFLUENT_MAGIC 0x00
#define SRL_CODEC_CONFLUENT_HEADER_SIZE 5

/* How a record value is framed (config value.format, in its order). */
typedef enum srl_value_format {
    SRL_VALUE_FORMAT_SINGLE_OBJECT = 0, /* C3 01 + fingerprint */
    SRL_VALUE_FORMAT_CONFLUENT = 1      /* 00 + schema id */
} srl_value_format_t;

/* What a value's header names: its framing and the fingerprint
 * (single-object) or the schema id (confluent). */
typedef struct srl_value_ref {
    srl_value_format_t format;
    uint64_t fingerprint; /* single-object */
    int32_t id;           /* confluent */
} srl_value_ref_t;

typedef struct srl_registry srl_registry_t;

/* CRC-64-AVRO (Rabin) of bytes; "int" canonical gives 0x7275d51a3f395c8f. */
uint64_t srl_fingerprint64(const void *buf, size_t len);

/* The schema id every sysrepl program derives from a fingerprint, with no
 * registry and no coordination: the 64-bit fingerprint folded (xor of its
 * 31-bit pieces) into 1..2^31-1. Two schemas with the same derived id
 * cannot both be known to one registry (srl_registry_add refuses the
 * second, naming both). */
int32_t srl_schema_id_derive(uint64_t fingerprint);

/* Parsing canonical form of a schema given as JSON text. Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL with errstr set. */
char *srl_schema_canonical(const char *schema_json, char *errstr, size_t errstr_size);

/* A registry holding our compiled-in schemas (one current writer schema per
 * kind). Thread-compatible: use one per thread or lock around it. */
srl_registry_t *srl_registry_new(char *errstr, size_t errstr_size);
void srl_registry_free(srl_registry_t *reg); /* NULL accepted */

/* Add a writer schema (JSON text) learned at run time. The schema's record
 * full name tells its kind. Adding a known fingerprint is a no-op. */
bool srl_registry_add(srl_registry_t *reg, const char *schema_json, uint64_t *fingerprint_out,
                      char *errstr, size_t errstr_size);
bool srl_registry_has(const srl_registry_t *reg, uint64_t fingerprint);
/* A schema of one of our record types that cannot be read as ours (say, a
 * field without default was added) is still added, so that its records
 * fail to decode with the reason rather than as "unknown". This returns
 * that reason, or NULL when the schema is readable (or unknown). */
const char *srl_registry_unreadable_reason(const srl_registry_t *reg, uint64_t fingerprint);
/* Schema ids. Every known schema has its derived id; an external
 * registry's id for a known schema is added as an alias. */
bool srl_registry_has_id(const srl_registry_t *reg, int32_t id);
/* The fingerprint an id names; false when the id is unknown. */
bool srl_registry_id_fingerprint(const srl_registry_t *reg, int32_t id, uint64_t *fingerprint);
/* Make id (given by an external registry) name the known schema
 * fingerprint. false with errstr when the fingerprint is unknown or the id
 * already names another schema. */
bool srl_registry_alias_id(srl_registry_t *reg, int32_t id, uint64_t fingerprint, char *errstr,
                           size_t errstr_size);
/* The known schemas in the order they were added (ours first): index
 * 0..count-1; false past the end. kind, fingerprint, derived id and JSON
 * (owned by the registry) are written to the non-NULL pointers. */
bool srl_registry_entry(const srl_registry_t *reg, size_t index, srl_kind_t *kind,
                        uint64_t *fingerprint, int32_t *id, const char **json);
/* The kind of a known fingerprint; false when unknown. */
bool srl_registry_kind(const srl_registry_t *reg, uint64_t fingerprint, srl_kind_t *kind);
/* The JSON text of a known schema (owned by the registry), or NULL. */
const char *srl_registry_schema_json(const srl_registry_t *reg, uint64_t fingerprint);
/* Our current writer schema of a kind: its fingerprint, JSON and
 * canonical form (owned by the registry). */
uint64_t srl_registry_writer_fingerprint(const srl_registry_t *reg, srl_kind_t kind);
const char *srl_registry_writer_json(const srl_registry_t *reg, srl_kind_t kind);
const char *srl_registry_writer_canonical(const srl_registry_t *reg, srl_kind_t kind);

/* Encode an entity with our writer schema of its kind. On success *out is
 * a malloc'd buffer the caller frees, *out_len its length. */
bool srl_codec_encode(srl_registry_t *reg, const srl_entity_t *e, uint8_t **out, size_t *out_len,
                      char *errstr, size_t errstr_size);

/* Read the fingerprint from a single-object header without decoding. */
bool srl_codec_peek_fingerprint(const void *buf, size_t len, uint64_t *fp, char *errstr,
                                size_t errstr_size);
/* Read either header (single-object or confluent) without decoding. */
bool srl_codec_peek(const void *buf, size_t len, srl_value_ref_t *ref, char *errstr,
                    size_t errstr_size);
/* A value re-framed with the Confluent header: a single-object value (its
 * body unchanged) gets 00 + id; a value already in the Confluent framing is
 * copied. out must hold len bytes (the new header is shorter); *out_len
 * gets the new length. false with errstr when value is neither framing. */
bool srl_codec_to_confluent(const void *value, size_t len, int32_t id, uint8_t *out,
                            size_t *out_len, char *errstr, size_t errstr_size);

/* Decode a value in either framing into *e (kind from the writer schema).
 * An unknown fingerprint or schema id, wrong marker, truncated or malformed body, or
 * impossible value fails with a reason; *e is left cleared. */
bool srl_codec_decode(srl_registry_t *reg, const void *buf, size_t len, srl_entity_t *e,
                      char *errstr, size_t errstr_size);

/* Parse a schema (JSON): its fingerprint and the kind its record name
 * says. false with errstr ("invalid schema: ..." or "... is none of our
 * record types") otherwise. */
bool srl_schema_identify(const char *schema_json, uint64_t *fingerprint, srl_kind_t *kind,
                         char *errstr, size_t errstr_size);

/* Check whether a candidate schema (JSON) may replace ours of the same kind
 * under our evolution rules (backward and forward compatible). On false,
 * errstr says why. */
bool srl_schema_check_evolution(srl_registry_t *reg, const char *candidate_json, char *errstr,
                                size_t errstr_size);

#endif
