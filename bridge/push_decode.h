/*
 * push_decode.h - This file is private to sysrepl-bridge: decoding and
 * checking a push body (binary framing or JSON) into records ready to
 * produce, with no HTTP in it (push_decode.c says what is checked).
 */
#ifndef SRL_BRIDGE_PUSH_DECODE_H
#define SRL_BRIDGE_PUSH_DECODE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/codec.h"
#include "sysrepl/framing.h"

/* A record ready to produce. key/value point into the request body
 * (binary) or into the owned_* buffers (JSON, freed with the batch). */
typedef struct srl_push_rec {
    const char *key;
    size_t key_len;
    const uint8_t *value; /* NULL: tombstone */
    size_t value_len;
    int64_t version;
    const char *origin; /* NUL-terminated */
    uint8_t *owned_value;
    char *owned_key;
    char *owned_origin;
} srl_push_rec_t;

typedef struct srl_push_batch {
    srl_push_rec_t *recs;
    size_t count;
    srl_framing_batch_t framing; /* binary: the decoded framing */
} srl_push_batch_t;

typedef struct srl_push_ctx {
    srl_kind_t kind;           /* the path's kind */
    srl_registry_t *reg;       /* writer schemas */
    pthread_mutex_t *reg_lock; /* held around registry use; NULL: none */
    size_t max_records;
} srl_push_ctx_t;

/* Why a body was refused: the HTTP status (400 unparsable, 413 too many
 * records, 422 an invalid record, 503 out of memory), the record's index
 * (-1 when not about one record) and a message naming the problem. */
typedef struct srl_push_error {
    unsigned status;
    long index;
    char msg[768];
} srl_push_error_t;

/* Decode and check every record of body (which must outlive *out: binary
 * records point into it). On failure *out is empty and *e says why. */
bool srl_push_decode(const srl_push_ctx_t *ctx, bool binary, const void *body, size_t len,
                     srl_push_batch_t *out, srl_push_error_t *e);
void srl_push_batch_free(srl_push_batch_t *b); /* NULL accepted */

#endif
