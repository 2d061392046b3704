/*
 * codec_internal.h - private to libsysrepl (and its unit tests): the
 * codec's body encoder/decoder without the single-object header, and the
 * registry's parsed schemas.
 */
#ifndef SRL_CODEC_INTERNAL_H
#define SRL_CODEC_INTERNAL_H

#include "avro_binary.h"
#include "avro_schema.h"
#include "sysrepl/codec.h"

/* Append the Avro body of e (our schema of its kind) to w. */
bool srl__codec_encode_body(const srl_entity_t *e, srl__wr_t *w, char *errstr, size_t errstr_size);
/* Decode a body in our schema's encoding; on failure r->err says why and
 * *e is cleared. */
bool srl__codec_decode_body(srl_kind_t kind, srl__rd_t *r, srl_entity_t *e);
/* The parsed schema of a known fingerprint, or NULL. */
const srl__avro_schema_t *srl__registry_schema(const srl_registry_t *reg, uint64_t fingerprint);

#endif
