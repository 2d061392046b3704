/*
 * framing.h - the compact binary framing of a batch of records, as the
 * bridge serves it (pull) and accepts it (push), and as the http consumer
 * source and the http producer sink read and write it.
 *
 * Media type: application/vnd.sysrepl.records. All integers are big-endian
 * (network byte order); there is no padding and no alignment.
 *
 *   batch   = magic count record*
 *   magic   = "SRB1"                      4 bytes, ASCII
 *   count   = u32                         number of records that follow
 *   record  = offset partition version timestamp key origin value
 *     offset     i64   Kafka offset; -1 when not known (push)
 *     partition  i32   Kafka partition; -1 when not known (push)
 *     version    i64   the sysrepl.version header; -1 when missing
 *     timestamp  i64   ms since the epoch; 0 when unknown
 *     key        u32 length, then that many bytes (UTF-8, not terminated)
 *     origin     u32 length, then that many bytes; length 0 = no origin
 *     value      i32 length, then that many bytes: the Avro single-object
 *                encoding exactly as on the topic; -1 = tombstone (no bytes)
 *
 * A batch ends exactly after its last record: trailing bytes are an error.
 * The fixed part of a record is SRL_FRAMING_RECORD_MIN bytes, so a count
 * larger than (body length - 8) / SRL_FRAMING_RECORD_MIN is rejected before
 * anything is allocated. Keys are at most SRL_FRAMING_KEY_MAX bytes, origins
 * at most SRL_FRAMING_ORIGIN_MAX bytes and may not contain a NUL byte.
 *
 * Thread-safety: no shared state; every function may run on any thread.
 */
#ifndef SRL_FRAMING_H
#define SRL_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sysrepl/record.h"

#define SRL_FRAMING_MEDIA_TYPE "application/vnd.sysrepl.records"
#define SRL_FRAMING_MAGIC "SRB1"
#define SRL_FRAMING_HEADER_SIZE 8u
/* offset 8 + partition 4 + version 8 + timestamp 8 + three lengths 12 */
#define SRL_FRAMING_RECORD_MIN 40u
#define SRL_FRAMING_KEY_MAX 4096u
#define SRL_FRAMING_ORIGIN_MAX 255u

/* A growable output buffer. Start zeroed ({0}); srl_framing_buf_free()
 * releases it. On allocation failure a buffer keeps failing (oom is set)
 * and keeps what it had; check oom once at the end. */
typedef struct srl_framing_buf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} srl_framing_buf_t;

void srl_framing_buf_free(srl_framing_buf_t *b); /* NULL accepted; zeroes b */
void srl_framing_buf_append(srl_framing_buf_t *b, const void *p, size_t n);

/* Writing a batch: begin (magic and a count of 0), then one add per
 * record, then finish (patches the count in). begin may follow other bytes
 * in b; the batch starts at b->len. Returns false only when out of memory
 * or when a key/origin is over its maximum (errstr says which). */
size_t srl_framing_begin(srl_framing_buf_t *b);
bool srl_framing_add(srl_framing_buf_t *b, const srl_record_t *r, char *errstr, size_t errstr_size);
/* start: what srl_framing_begin returned; count: records added. */
bool srl_framing_finish(srl_framing_buf_t *b, size_t start, uint32_t count);

/* A decoded batch. records[i] points into the input buffer for key and
 * value (so the input must outlive the batch) and into the batch's own
 * storage for origin (NUL-terminated). kind is set to the caller's kind.
 * srl_framing_batch_free releases what the batch owns; NULL accepted. */
typedef struct srl_framing_batch {
    srl_record_t *records;
    size_t count;
    char *origins; /* storage of the NUL-terminated origins; owned */
} srl_framing_batch_t;

void srl_framing_batch_free(srl_framing_batch_t *batch);

/* Decode a whole batch of buf[0..len). max_records: a count above it is
 * refused (0 = no limit besides the body length). On failure *batch is
 * left empty, *bad_index (when not NULL) is the index of the record that
 * failed (-1 when the header failed), and errstr names the field and the
 * byte position: "record 3: value length 70000 exceeds the 12 bytes left
 * at byte 181". Never reads outside buf; allocates at most about
 * count * sizeof(srl_record_t) + len. */
bool srl_framing_decode(const void *buf, size_t len, srl_kind_t kind, size_t max_records,
                        srl_framing_batch_t *batch, long *bad_index, char *errstr,
                        size_t errstr_size);

#endif
