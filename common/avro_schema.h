/*
 * avro_schema.h - private to libsysrepl: Avro schemas parsed from their JSON
 * text into a tree, their parsing canonical form and CRC-64-AVRO
 * fingerprint, and generic (schema-driven) reading and writing of the
 * binary encoding: skip a value, decode it to JSON, encode JSON.
 *
 * avro-c is not used here: it has no canonical form, no fingerprint, and
 * drops "default" and "logicalType" when it prints a schema.
 *
 * A parsed schema owns every node of its tree; nodes of named types may be
 * referenced many times (and, for recursive schemas, from inside
 * themselves), so the tree is a graph: walk it with a depth limit.
 */
#ifndef SRL_AVRO_SCHEMA_H
#define SRL_AVRO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "avro_binary.h"

/* Nesting bound for schemas and for values walked generically. */
#define SRL__AVRO_MAX_DEPTH 64
/* Items of an array of zero-byte values (null, empty record) one value
 * may claim; beyond it the value is refused rather than looped over. */
#define SRL__AVRO_MAX_EMPTY_ITEMS (1u << 20)

typedef enum srl__avro_type {
    SRL__AVRO_NULL,
    SRL__AVRO_BOOLEAN,
    SRL__AVRO_INT,
    SRL__AVRO_LONG,
    SRL__AVRO_FLOAT,
    SRL__AVRO_DOUBLE,
    SRL__AVRO_BYTES,
    SRL__AVRO_STRING,
    SRL__AVRO_RECORD,
    SRL__AVRO_ENUM,
    SRL__AVRO_ARRAY,
    SRL__AVRO_MAP,
    SRL__AVRO_UNION,
    SRL__AVRO_FIXED
} srl__avro_type_t;

typedef struct srl__avro_node srl__avro_node_t;

typedef struct srl__avro_field {
    char *name;
    srl__avro_node_t *type;
    json_t *default_value; /* owned reference; NULL when there is none */
} srl__avro_field_t;

struct srl__avro_node {
    srl__avro_type_t type;
    char *fullname;            /* records, enums, fixed */
    const char *name;          /* unqualified part of fullname */
    char *logical;             /* logicalType, or NULL */
    srl__avro_field_t *fields; /* records */
    size_t nfields;
    char **symbols; /* enums */
    size_t nsymbols;
    int enum_default;            /* index of the enum's default symbol, or -1 */
    srl__avro_node_t *items;     /* array items, map values */
    srl__avro_node_t **branches; /* unions */
    size_t nbranches;
    size_t size;     /* fixed */
    size_t min_size; /* fewest bytes one value takes */
    bool emitted;    /* scratch for canonical form */
    srl__avro_node_t *next_owned;
};

typedef struct srl__avro_schema {
    srl__avro_node_t *root;
    srl__avro_node_t *owned; /* every node, for freeing */
    char *json;              /* the text it was parsed from */
    char *canonical;         /* parsing canonical form */
    uint64_t fingerprint;    /* CRC-64-AVRO of canonical */
} srl__avro_schema_t;

/* Parse and validate a schema (names, duplicates, defaults against their
 * types, unions). NULL with errstr set on failure. */
srl__avro_schema_t *srl__avro_schema_parse(const char *json_text, char *errstr, size_t errstr_size);
void srl__avro_schema_free(srl__avro_schema_t *s); /* NULL accepted */

const char *srl__avro_type_name(const srl__avro_node_t *n);

/* Field index by name, or -1. */
int srl__avro_field_index(const srl__avro_node_t *record, const char *name);

/* Read an array/map block header: its item count (0 ends the value),
 * bounded by the bytes left so a hostile count cannot claim gigabytes
 * (zero-size items by SRL__AVRO_MAX_EMPTY_ITEMS over total so far). A
 * negative count is followed by the block's byte size. item NULL: 1-byte
 * items. false with r failed and a reason. */
bool srl__avro_block_count(const srl__avro_node_t *item, srl__rd_t *r, size_t total, size_t *count);

/* Skip one value of schema n. */
bool srl__avro_skip(const srl__avro_node_t *n, srl__rd_t *r, int depth);

/* Encode a JSON value as schema n. Unions take the first branch the value
 * fits; with defaults_mode, only the first branch (the spec's rule for
 * default values). false with errstr naming the path on mismatch. */
bool srl__avro_encode_json(const srl__avro_node_t *n, const json_t *v, bool defaults_mode,
                           srl__wr_t *w, const char *path, char *errstr, size_t errstr_size);

/* Decode one value of schema n to JSON (unions unwrapped, bytes as
 * code points 0..255). NULL with r failed on malformed input. */
json_t *srl__avro_decode_json(const srl__avro_node_t *n, srl__rd_t *r, int depth);

#endif
