/*
 * codec.h - entities <-> Avro single-object encoding, with schema resolution.
 *
 * Wire form of a record value: C3 01, the 8-byte little-endian CRC-64-AVRO
 * fingerprint of the writer schema's parsing canonical form, then the Avro
 * binary body. The registry knows writer schemas by fingerprint: ours are
 * compiled in (from the .avsc files in schemas/); others are added at run time (loaded
 * from the <prefix>.schemas topic). Decoding resolves by field name against
 * our schema of the same kind: defaults filled, unknown fields ignored.
 * avro-c's own resolver is never used (it aborts on schemas that do not
 * resolve).
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

typedef struct srl_registry srl_registry_t;

/* CRC-64-AVRO (Rabin) of bytes; "int" canonical gives 0x7275d51a3f395c8f. */
uint64_t srl_fingerprint64(const void *buf, size_t len);

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

/* Decode a single-object value into *e (kind from the writer schema). An
 * unknown fingerprint, wrong marker, truncated or malformed body, or
 * impossible value fails with a reason; *e is left cleared. */
bool srl_codec_decode(srl_registry_t *reg, const void *buf, size_t len, srl_entity_t *e,
                      char *errstr, size_t errstr_size);

/* Check whether a candidate schema (JSON) may replace ours of the same kind
 * under our evolution rules (backward and forward compatible). On false,
 * errstr says why. */
bool srl_schema_check_evolution(srl_registry_t *reg, const char *candidate_json, char *errstr,
                                size_t errstr_size);

#endif
