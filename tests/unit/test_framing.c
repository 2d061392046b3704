/* test_framing.c - the binary batch framing round-trips exactly and its
 * decoder refuses hostile input with a reason, never reading past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sysrepl/framing.h"

static const uint8_t value_a[] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 'x'};

/* Two records, one a tombstone, written with the encoder. */
static void make_batch(srl_framing_buf_t *b)
{
    char err[256];
    srl_record_t r1 = {.kind = SRL_KIND_POLICY,
                       .partition = 2,
                       .offset = 41,
                       .key = "Global",
                       .key_len = 6,
                       .value = value_a,
                       .value_len = sizeof(value_a),
                       .version = 7,
                       .origin = "hub-1",
                       .timestamp_ms = 1700000000123};
    srl_record_t r2 = {.kind = SRL_KIND_POLICY,
                       .partition = 2,
                       .offset = 45,
                       .key = "nuget.org",
                       .key_len = 9,
                       .value = NULL,
                       .version = 8,
                       .origin = NULL};
    size_t start = srl_framing_begin(b);
    assert_true(srl_framing_add(b, &r1, err, sizeof(err)));
    assert_true(srl_framing_add(b, &r2, err, sizeof(err)));
    assert_true(srl_framing_finish(b, start, 2));
}

/* What the encoder writes, the decoder gives back field for field. */
static void framing_roundtrip_keeps_every_field(void **state)
{
    (void)state;
    srl_framing_buf_t b = {0};
    srl_framing_batch_t batch;
    char err[256];
    long bad = 99;
    make_batch(&b);
    assert_true(
        srl_framing_decode(b.data, b.len, SRL_KIND_POLICY, 0, &batch, &bad, err, sizeof(err)));
    assert_int_equal(bad, -1);
    assert_int_equal(batch.count, 2);
    srl_record_t *r = &batch.records[0];
    assert_int_equal(r->kind, SRL_KIND_POLICY);
    assert_int_equal(r->offset, 41);
    assert_int_equal(r->partition, 2);
    assert_int_equal(r->version, 7);
    assert_int_equal(r->timestamp_ms, 1700000000123);
    assert_int_equal(r->key_len, 6);
    assert_memory_equal(r->key, "Global", 6);
    assert_string_equal(r->origin, "hub-1");
    assert_int_equal(r->value_len, sizeof(value_a));
    assert_memory_equal(r->value, value_a, sizeof(value_a));
    r = &batch.records[1];
    assert_null(r->value);
    assert_null(r->origin);
    assert_int_equal(r->version, 8);
    assert_memory_equal(r->key, "nuget.org", 9);
    srl_framing_batch_free(&batch);
    srl_framing_batch_free(NULL);
    srl_framing_buf_free(&b);
}

/* The layout is the documented one: big-endian, magic first. */
static void framing_layout_is_big_endian_as_documented(void **state)
{
    (void)state;
    srl_framing_buf_t b = {0};
    make_batch(&b);
    assert_memory_equal(b.data, "SRB1\0\0\0\x02", 8);
    /* offset 41 as i64 big-endian */
    assert_memory_equal(b.data + 8, "\0\0\0\0\0\0\0\x29", 8);
    /* partition 2 */
    assert_memory_equal(b.data + 16, "\0\0\0\x02", 4);
    /* key length 6 then "Global" after version and timestamp */
    assert_memory_equal(b.data + 36, "\0\0\0\x06Global", 10);
    /* the tombstone's value length is -1 and it is the last 4 bytes */
    assert_memory_equal(b.data + b.len - 4, "\xff\xff\xff\xff", 4);
    srl_framing_buf_free(&b);
}

/* An empty batch is valid: 8 bytes. */
static void framing_decode_accepts_empty_batch(void **state)
{
    (void)state;
    srl_framing_batch_t batch;
    char err[256];
    assert_true(srl_framing_decode("SRB1\0\0\0\0", 8, SRL_KIND_ASSESSMENT, 0, &batch, NULL, err,
                                   sizeof(err)));
    assert_int_equal(batch.count, 0);
    srl_framing_batch_free(&batch);
}

/* Every strict prefix of a valid batch is refused, and never read past. */
static void framing_decode_rejects_every_truncation(void **state)
{
    (void)state;
    srl_framing_buf_t b = {0};
    srl_framing_batch_t batch;
    char err[256];
    make_batch(&b);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, b.data, n);
        err[0] = '\0';
        assert_false(
            srl_framing_decode(copy, n, SRL_KIND_POLICY, 0, &batch, NULL, err, sizeof(err)));
        assert_true(err[0] != '\0');
        assert_null(batch.records);
        free(copy);
    }
    srl_framing_buf_free(&b);
}

static void expect_reject(const void *buf, size_t len, size_t max, long want_index,
                          const char *want)
{
    srl_framing_batch_t batch;
    char err[256];
    long bad = 1234;
    assert_false(
        srl_framing_decode(buf, len, SRL_KIND_POLICY, max, &batch, &bad, err, sizeof(err)));
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    assert_int_equal(bad, want_index);
}

/* Bad magic, huge counts, lengths beyond the body and trailing bytes each
 * fail with a reason naming the record and the field. */
static void framing_decode_rejects_hostile_fields(void **state)
{
    (void)state;
    srl_framing_buf_t b = {0};
    make_batch(&b);
    uint8_t *m = malloc(b.len + 1);

    memcpy(m, b.data, b.len);
    m[0] = 'X';
    expect_reject(m, b.len, 0, -1, "magic");

    memcpy(m, b.data, b.len);
    memcpy(m + 4, "\xff\xff\xff\xff", 4); /* 4 billion records */
    expect_reject(m, b.len, 0, -1, "claims 4294967295 records");

    memcpy(m, b.data, b.len);
    expect_reject(m, b.len, 1, -1, "exceeds the limit of 1");

    memcpy(m, b.data, b.len);
    memcpy(m + 36, "\x7f\xff\xff\xff", 4); /* key length */
    expect_reject(m, b.len, 0, 0, "record 0: key length 2147483647");

    memcpy(m, b.data, b.len);
    memcpy(m + 46, "\0\0\x10\0", 4); /* origin length 4096 > 255 */
    expect_reject(m, b.len, 0, 0, "maximum origin length");

    memcpy(m, b.data, b.len);
    memcpy(m + 46 + 4 + 5, "\0\x01\0\0", 4); /* value length 65536 */
    expect_reject(m, b.len, 0, 0, "record 0: value length 65536");

    memcpy(m, b.data, b.len);
    memcpy(m + 46 + 4 + 5, "\xff\xff\xff\xfe", 4); /* value length -2 */
    expect_reject(m, b.len, 0, 0, "value length -2");

    memcpy(m, b.data, b.len);
    m[46 + 4 + 1] = '\0'; /* NUL inside the origin */
    expect_reject(m, b.len, 0, 0, "NUL");

    memcpy(m, b.data, b.len);
    m[b.len] = 0;
    expect_reject(m, b.len + 1, 0, -1, "1 trailing bytes");

    free(m);
    srl_framing_buf_free(&b);
}

/* Keys and origins over their maximum are refused by the encoder too. */
static void framing_add_rejects_oversized_key(void **state)
{
    (void)state;
    srl_framing_buf_t b = {0};
    char err[256];
    char *key = calloc(1, SRL_FRAMING_KEY_MAX + 1);
    srl_record_t r = {.key = key, .key_len = SRL_FRAMING_KEY_MAX + 1, .version = 1};
    srl_framing_begin(&b);
    assert_false(srl_framing_add(&b, &r, err, sizeof(err)));
    assert_non_null(strstr(err, "key of 4097 bytes"));
    free(key);
    srl_framing_buf_free(&b);
}

/* Random bytes after a valid header never crash the decoder (cheap fuzz). */
static void framing_decode_survives_random_bytes(void **state)
{
    (void)state;
    srand(12345);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(rand() % 200);
        uint8_t *buf = malloc(n + 8);
        memcpy(buf, "SRB1", 4);
        uint32_t count = (uint32_t)(rand() % 4);
        buf[4] = buf[5] = buf[6] = 0;
        buf[7] = (uint8_t)count;
        for (size_t i = 0; i < n; i++)
            buf[8 + i] = (uint8_t)(rand() % 4 == 0 ? 0xff : rand() % 8);
        srl_framing_batch_t batch;
        char err[256];
        if (srl_framing_decode(buf, n + 8, SRL_KIND_POLICY, 0, &batch, NULL, err, sizeof(err)))
            assert_int_equal(batch.count, count);
        srl_framing_batch_free(&batch);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_roundtrip_keeps_every_field),
        cmocka_unit_test(framing_layout_is_big_endian_as_documented),
        cmocka_unit_test(framing_decode_accepts_empty_batch),
        cmocka_unit_test(framing_decode_rejects_every_truncation),
        cmocka_unit_test(framing_decode_rejects_hostile_fields),
        cmocka_unit_test(framing_add_rejects_oversized_key),
        cmocka_unit_test(framing_decode_survives_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
