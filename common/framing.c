/*
 * framing.c - the binary framing of record batches (see framing.h).
 *
 * The decoder treats its input as hostile: every length is checked against
 * the bytes left before it is used, the record count is bounded by the body
 * length before the record array is allocated, and nothing is read past the
 * end. The encoder writes exactly what the decoder accepts.
 */
#include "sysrepl/framing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srl_framing_buf_free(srl_framing_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static bool buf_reserve(srl_framing_buf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (n <= b->cap - b->len)
        return true;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void srl_framing_buf_append(srl_framing_buf_t *b, const void *p, size_t n)
{
    if (!n || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

size_t srl_framing_begin(srl_framing_buf_t *b)
{
    size_t start = b->len;
    uint8_t hdr[SRL_FRAMING_HEADER_SIZE];
    memcpy(hdr, SRL_FRAMING_MAGIC, 4);
    put_u32(hdr + 4, 0);
    srl_framing_buf_append(b, hdr, sizeof(hdr));
    return start;
}

bool srl_framing_add(srl_framing_buf_t *b, const srl_record_t *r, char *errstr, size_t errstr_size)
{
    size_t origin_len = r->origin ? strlen(r->origin) : 0;
    if (r->key_len > SRL_FRAMING_KEY_MAX) {
        snprintf(errstr, errstr_size, "key of %zu bytes exceeds the maximum of %u", r->key_len,
                 SRL_FRAMING_KEY_MAX);
        return false;
    }
    if (origin_len > SRL_FRAMING_ORIGIN_MAX) {
        snprintf(errstr, errstr_size, "origin of %zu bytes exceeds the maximum of %u", origin_len,
                 SRL_FRAMING_ORIGIN_MAX);
        return false;
    }
    if (r->value && r->value_len > INT32_MAX) {
        snprintf(errstr, errstr_size, "value of %zu bytes exceeds the maximum of %d", r->value_len,
                 INT32_MAX);
        return false;
    }
    size_t value_len = r->value ? r->value_len : 0;
    if (!buf_reserve(b, SRL_FRAMING_RECORD_MIN + r->key_len + origin_len + value_len)) {
        snprintf(errstr, errstr_size, "out of memory");
        return false;
    }
    uint8_t *p = b->data + b->len;
    put_u64(p, (uint64_t)r->offset);
    put_u32(p + 8, (uint32_t)r->partition);
    put_u64(p + 12, (uint64_t)r->version);
    put_u64(p + 20, (uint64_t)r->timestamp_ms);
    p += 28;
    put_u32(p, (uint32_t)r->key_len);
    if (r->key_len)
        memcpy(p + 4, r->key, r->key_len);
    p += 4 + r->key_len;
    put_u32(p, (uint32_t)origin_len);
    if (origin_len)
        memcpy(p + 4, r->origin, origin_len);
    p += 4 + origin_len;
    put_u32(p, r->value ? (uint32_t)r->value_len : UINT32_MAX); /* -1: tombstone */
    if (value_len)
        memcpy(p + 4, r->value, value_len);
    b->len += SRL_FRAMING_RECORD_MIN + r->key_len + origin_len + value_len;
    return true;
}

bool srl_framing_finish(srl_framing_buf_t *b, size_t start, uint32_t count)
{
    if (b->oom || b->len < start + SRL_FRAMING_HEADER_SIZE)
        return false;
    put_u32(b->data + start + 4, count);
    return true;
}

void srl_framing_batch_free(srl_framing_batch_t *batch)
{
    if (!batch)
        return;
    free(batch->records);
    free(batch->origins);
    memset(batch, 0, sizeof(*batch));
}

bool srl_framing_decode(const void *buf, size_t len, srl_kind_t kind, size_t max_records,
                        srl_framing_batch_t *batch, long *bad_index, char *errstr,
                        size_t errstr_size)
{
    const uint8_t *p = buf;
    size_t pos = 0;
    long index = -1;
    memset(batch, 0, sizeof(*batch));

    if (len < SRL_FRAMING_HEADER_SIZE) {
        snprintf(errstr, errstr_size, "batch of %zu bytes is shorter than its %u-byte header", len,
                 SRL_FRAMING_HEADER_SIZE);
        goto fail;
    }
    if (memcmp(p, SRL_FRAMING_MAGIC, 4) != 0) {
        snprintf(errstr, errstr_size, "batch does not start with the magic \"%s\"",
                 SRL_FRAMING_MAGIC);
        goto fail;
    }
    uint32_t count = get_u32(p + 4);
    pos = SRL_FRAMING_HEADER_SIZE;
    if (max_records && count > max_records) {
        snprintf(errstr, errstr_size, "batch of %" PRIu32 " records exceeds the limit of %zu",
                 count, max_records);
        goto fail;
    }
    /* Bound the allocation by the input before trusting count. */
    if (count > (len - pos) / SRL_FRAMING_RECORD_MIN) {
        snprintf(errstr, errstr_size,
                 "batch claims %" PRIu32 " records but its %zu bytes hold at most %zu", count,
                 len - pos, (len - pos) / SRL_FRAMING_RECORD_MIN);
        goto fail;
    }
    if (count) {
        batch->records = calloc(count, sizeof(*batch->records));
        /* origins: at most the bytes of the body plus one NUL per record */
        batch->origins = malloc(len - pos + count);
        if (!batch->records || !batch->origins) {
            snprintf(errstr, errstr_size, "out of memory for %" PRIu32 " records", count);
            goto fail;
        }
    }
    size_t origins_used = 0;
    for (uint32_t i = 0; i < count; i++) {
        srl_record_t *r = &batch->records[i];
        index = (long)i;
        if (len - pos < SRL_FRAMING_RECORD_MIN) {
            snprintf(errstr, errstr_size,
                     "record %" PRIu32 ": truncated at byte %zu (%zu bytes left)", i, pos,
                     len - pos);
            goto fail;
        }
        r->kind = kind;
        r->offset = (int64_t)get_u64(p + pos);
        r->partition = (int32_t)get_u32(p + pos + 8);
        r->version = (int64_t)get_u64(p + pos + 12);
        r->timestamp_ms = (int64_t)get_u64(p + pos + 20);
        pos += 28;

        uint32_t key_len = get_u32(p + pos);
        pos += 4;
        /* 8 more fixed bytes (origin and value lengths) must follow the key */
        if (key_len > SRL_FRAMING_KEY_MAX || key_len > len - pos || len - pos - key_len < 8) {
            snprintf(errstr, errstr_size,
                     "record %" PRIu32 ": key length %" PRIu32 " at byte %zu exceeds %s", i,
                     key_len, pos - 4,
                     key_len > SRL_FRAMING_KEY_MAX ? "the maximum key length" : "the bytes left");
            goto fail;
        }
        r->key = (const char *)(p + pos);
        r->key_len = key_len;
        pos += key_len;

        uint32_t origin_len = get_u32(p + pos);
        pos += 4;
        if (origin_len > SRL_FRAMING_ORIGIN_MAX || origin_len > len - pos ||
            len - pos - origin_len < 4) {
            snprintf(errstr, errstr_size,
                     "record %" PRIu32 ": origin length %" PRIu32 " at byte %zu exceeds %s", i,
                     origin_len, pos - 4,
                     origin_len > SRL_FRAMING_ORIGIN_MAX ? "the maximum origin length"
                                                         : "the bytes left");
            goto fail;
        }
        if (origin_len) {
            if (memchr(p + pos, '\0', origin_len)) {
                snprintf(errstr, errstr_size, "record %" PRIu32 ": origin contains a NUL byte", i);
                goto fail;
            }
            char *o = batch->origins + origins_used;
            memcpy(o, p + pos, origin_len);
            o[origin_len] = '\0';
            origins_used += origin_len + 1;
            r->origin = o;
        }
        pos += origin_len;

        int32_t value_len = (int32_t)get_u32(p + pos);
        pos += 4;
        if (value_len == -1) {
            r->value = NULL;
            r->value_len = 0;
        } else if (value_len < 0 || (size_t)value_len > len - pos) {
            snprintf(errstr, errstr_size,
                     "record %" PRIu32 ": value length %" PRId32
                     " at byte %zu exceeds the %zu bytes left",
                     i, value_len, pos - 4, len - pos);
            goto fail;
        } else {
            r->value = p + pos;
            r->value_len = (size_t)value_len;
            pos += (size_t)value_len;
        }
    }
    if (pos != len) {
        index = -1;
        snprintf(errstr, errstr_size,
                 "%zu trailing bytes after the last of %" PRIu32 " records, at byte %zu", len - pos,
                 count, pos);
        goto fail;
    }
    batch->count = count;
    if (bad_index)
        *bad_index = -1;
    return true;
fail:
    if (bad_index)
        *bad_index = index;
    srl_framing_batch_free(batch);
    return false;
}
