/*
 * record.h - one replicated record as it travels, independent of transport.
 *
 * The producer hands batches of these to a sink (Kafka, or the bridge over
 * HTTP); the consumer gets batches of these from a source (Kafka, or the
 * bridge over HTTP). The bytes are the topic's bytes: key as plain UTF-8,
 * value as Avro single-object encoding, NULL value for a tombstone.
 */
#ifndef SRL_RECORD_H
#define SRL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/model.h"

typedef struct srl_record {
    srl_kind_t kind;
    int32_t partition; /* -1 when not known yet (producer side) */
    int64_t offset;    /* -1 when not known yet (producer side) */
    const char *key;   /* not NUL-terminated necessarily: use key_len */
    size_t key_len;
    const uint8_t *value; /* NULL: tombstone */
    size_t value_len;
    int64_t version;      /* header sysrepl.version; -1 when missing */
    const char *origin;   /* header sysrepl.origin, NUL-terminated; may be NULL */
    int64_t timestamp_ms; /* broker/producer timestamp; 0 when unknown */
} srl_record_t;

#endif
