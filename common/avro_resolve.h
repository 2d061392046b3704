/*
 * avro_resolve.h - private to libsysrepl: Avro schema resolution done by
 * us (avro-c's resolver aborts on schemas that do not resolve).
 *
 * A resolver is a plan, built once per (writer schema, reader schema)
 * pair, that transcodes a value written with the writer schema into the
 * binary encoding of the reader schema, following the specification's
 * resolution rules: record fields matched by name (unknown ones skipped,
 * missing ones filled from the reader's defaults, any order), enum symbols
 * by name (unknown ones read as the reader's default symbol), unions branch
 * by branch (by type, named types by name), and the promotions int -> long
 * -> float -> double and string <-> bytes. The codec then reads the
 * reader-schema bytes with its fast hand-written decoder.
 *
 * The strict modes check compatibility of a schema change instead: they
 * refuse at build time what the data mode would refuse only for some
 * values (an unmatched union branch, an unknown enum symbol), and refuse
 * type changes, removed enum symbols and anything else our evolution rules
 * forbid (schemas/README.md).
 */
#ifndef SRL_AVRO_RESOLVE_H
#define SRL_AVRO_RESOLVE_H

#include "avro_schema.h"

typedef enum srl__resolve_mode {
    SRL__RESOLVE_DATA,              /* read data: the Avro specification's rules */
    SRL__RESOLVE_STRICT_OLD_WRITER, /* writer = current schema, reader = candidate */
    SRL__RESOLVE_STRICT_NEW_WRITER  /* writer = candidate, reader = current schema */
} srl__resolve_mode_t;

typedef struct srl__resolver srl__resolver_t;

/* NULL with errstr set (naming the field) when the writer's data can never
 * be read with the reader schema. The schemas must outlive the resolver. */
srl__resolver_t *srl__resolver_new(const srl__avro_schema_t *writer,
                                   const srl__avro_schema_t *reader, srl__resolve_mode_t mode,
                                   char *errstr, size_t errstr_size);
void srl__resolver_free(srl__resolver_t *res); /* NULL accepted */

/* Transcode one whole value (no trailing bytes allowed) and append the
 * reader encoding to out. On failure r->err says why (out may hold a
 * partial value: reset out->len). */
bool srl__resolver_transcode(const srl__resolver_t *res, srl__rd_t *r, srl__wr_t *out);

#endif
