/* test_codec_hostile.c - srl_codec_decode on damaged and hostile input:
 * every failure has a reason, nothing crashes or leaks (the unit suite
 * runs under AddressSanitizer), and a failed decode leaves the entity
 * cleared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "unit/codec_test_util.h"
#include "unit/entity_fixtures.h"

static int setup(void **state)
{
    char err[256];
    *state = srl_registry_new(err, sizeof(err));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    srl_registry_free(*state);
    return 0;
}

/* All bytes of the union zero except the kind: what "cleared" means. */
static void assert_cleared(const srl_entity_t *e)
{
    static const uint8_t zero[sizeof(e->u)];
    srl_entity_t copy = *e;
    if (copy.kind == SRL_KIND_ASSESSMENT_TYPE && copy.u.type.emitted_severity == SRL_SEVERITY_UNSET)
        copy.u.type.emitted_severity = 0;
    assert_memory_equal(&copy.u, zero, sizeof(zero));
}

static void expect_fail(srl_registry_t *reg, const uint8_t *buf, size_t len, const char *want)
{
    char err[512] = "";
    srl_entity_t e;
    memset(&e, 0xab, sizeof(e));
    if (srl_codec_decode(reg, buf, len, &e, err, sizeof(err))) {
        srl_entity_clear(&e);
        fail_msg("accepted, wanted \"%s\"", want);
    }
    assert_cleared(&e);
    assert_true(err[0] != '\0');
    if (want && !strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static uint8_t *encode(srl_registry_t *reg, const srl_entity_t *e, size_t *len)
{
    uint8_t *buf;
    char err[256];
    assert_true(srl_codec_encode(reg, e, &buf, len, err, sizeof(err)));
    return buf;
}

static void truncations(const char *label, const srl_entity_t *e, void *arg)
{
    (void)label;
    srl_registry_t *reg = arg;
    size_t len;
    uint8_t *buf = encode(reg, e, &len);
    for (size_t cut = 0; cut < len; cut++) {
        /* a copy of exactly cut bytes, so ASan sees any overread */
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        expect_fail(reg, part, cut, NULL);
        free(part);
    }
    free(buf);
}

/* A value cut at any length is refused. */
static void codec_decode_rejects_truncated_body(void **state)
{
    fx_each_sample(truncations, *state);
}

static void bit_flips(const char *label, const srl_entity_t *e, void *arg)
{
    (void)label;
    srl_registry_t *reg = arg;
    size_t len;
    uint8_t *buf = encode(reg, e, &len);
    size_t step = len > 400 ? 7 : 1; /* the 50-entry policy: sample its bytes */
    for (size_t i = SRL_CODEC_HEADER_SIZE; i < len; i += step) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, buf, len);
            copy[i] ^= (uint8_t)(1u << bit);
            char err[512];
            srl_entity_t out;
            if (srl_codec_decode(reg, copy, len, &out, err, sizeof(err))) {
                /* some flips give another valid value: it must re-encode */
                uint8_t *again;
                size_t again_len;
                if (srl_codec_encode(reg, &out, &again, &again_len, err, sizeof(err)))
                    free(again);
                srl_entity_clear(&out);
            } else {
                assert_cleared(&out);
                assert_true(err[0] != '\0');
            }
            free(copy);
        }
    }
    free(buf);
}

/* Every single-bit flip of the body decodes or fails cleanly. */
static void codec_decode_survives_bit_flips(void **state)
{
    fx_each_sample(bit_flips, *state);
}

/* Random bodies behind each of our fingerprints (seeded, reproducible). */
static void codec_decode_survives_random_bodies(void **state)
{
    srl_registry_t *reg = *state;
    uint64_t seed = 0x5eed5eed12345678ULL;
    for (int round = 0; round < 30000; round++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t body_len = seed % 96;
        uint8_t body[96];
        uint64_t x = seed;
        for (size_t i = 0; i < body_len; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            /* small bytes are likelier to parse further */
            body[i] = (uint8_t)(x >> 56) & (round % 3 ? 0x0f : 0xff);
        }
        srl_kind_t kind = (srl_kind_t)(round % SRL_KIND_COUNT);
        size_t len;
        uint8_t *buf = cu_single_object(srl_registry_writer_fingerprint(reg, kind), body, body_len,
                                        &len);
        char err[512];
        srl_entity_t e;
        if (srl_codec_decode(reg, buf, len, &e, err, sizeof(err)))
            srl_entity_clear(&e);
        else
            assert_cleared(&e);
        free(buf);
    }
}

static uint8_t *with_body(srl_registry_t *reg, srl_kind_t kind, const uint8_t *body,
                          size_t body_len, size_t *len)
{
    return cu_single_object(srl_registry_writer_fingerprint(reg, kind), body, body_len, len);
}

static void codec_decode_rejects_bad_headers(void **state)
{
    srl_registry_t *reg = *state;
    const uint8_t shortbuf[] = {0xc3, 0x01, 1, 2, 3};
    expect_fail(reg, shortbuf, sizeof(shortbuf), "shorter than");
    expect_fail(reg, NULL, 0, "shorter than");
    const uint8_t marker[] = {0xc3, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0};
    expect_fail(reg, marker, sizeof(marker), "marker c3 02");
    const uint8_t unknown[] = {0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0};
    expect_fail(reg, unknown, sizeof(unknown), "unknown schema fingerprint 0807060504030201");
}

/* Lengths and counts are bounded by the bytes that remain. */
static void codec_decode_rejects_huge_and_negative_lengths(void **state)
{
    srl_registry_t *reg = *state;
    size_t len;
    /* name claims 2^40 bytes */
    const uint8_t huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 'a', 'b'};
    uint8_t *buf = with_body(reg, SRL_KIND_POLICY, huge, sizeof(huge), &len);
    expect_fail(reg, buf, len, "field name: length");
    free(buf);
    /* name length -1 */
    const uint8_t neg[] = {0x01, 'a'};
    buf = with_body(reg, SRL_KIND_POLICY, neg, sizeof(neg), &len);
    expect_fail(reg, buf, len, "negative length");
    free(buf);
    /* feeds: a block of 2^62 items */
    const uint8_t count[] = {0x02, 'P', 0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    buf = with_body(reg, SRL_KIND_POLICY, count, sizeof(count), &len);
    expect_fail(reg, buf, len, "field feeds: block of");
    free(buf);
    /* varint running past 10 bytes */
    const uint8_t longvar[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    buf = with_body(reg, SRL_KIND_POLICY, longvar, sizeof(longvar), &len);
    expect_fail(reg, buf, len, "varint");
    free(buf);
}

static void codec_decode_rejects_bad_indexes_and_text(void **state)
{
    srl_registry_t *reg = *state;
    size_t len;
    srl_entity_t e;
    fx_assessment_min(&e);
    uint8_t *good = encode(reg, &e, &len);
    srl_entity_clear(&e);
    /* body: 0x16 "PGV-1234567" | scope.kind | scope.name union | ... */
    const size_t kind_at = SRL_CODEC_HEADER_SIZE + 1 + 11;
    uint8_t *buf = malloc(len);

    memcpy(buf, good, len);
    buf[kind_at] = 0x0a; /* enum index 5 of 4 */
    expect_fail(reg, buf, len, "field scope.kind: enum index 5 out of range");
    memcpy(buf, good, len);
    buf[kind_at + 1] = 0x04; /* union index 2 of 2 */
    expect_fail(reg, buf, len, "field scope.name: union index 2 out of range");
    memcpy(buf, good, len);
    buf[SRL_CODEC_HEADER_SIZE + 1] = 0xff; /* invalid UTF-8 in the id */
    expect_fail(reg, buf, len, "field vulnerability_id: string is not valid UTF-8");
    memcpy(buf, good, len);
    buf[SRL_CODEC_HEADER_SIZE + 2] = 0x00; /* NUL inside the id */
    expect_fail(reg, buf, len, "NUL");
    free(buf);

    /* trailing bytes */
    buf = malloc(len + 1);
    memcpy(buf, good, len);
    buf[len] = 0;
    expect_fail(reg, buf, len + 1, "1 trailing bytes");
    free(buf);

    /* a boolean byte of 2 */
    fx_type_min(&e);
    free(good);
    good = encode(reg, &e, &len);
    srl_entity_clear(&e);
    /* inactive is the 4th byte from the meta: origin "" (1), version 0 (1),
     * changed_at -1 (1): ... inactive built_in 00 00 01 */
    good[len - 5] = 2;
    expect_fail(reg, good, len, "field inactive: boolean byte 2");
    free(good);
}

static void codec_decode_rejects_duplicate_map_keys(void **state)
{
    srl_registry_t *reg = *state;
    for (size_t n = 2; n <= 40; n += 38) { /* the small and the sorted check */
        srl_entity_t e;
        fx_policy_n(&e, n);
        free(e.u.policy.by_license[n - 1].name);
        e.u.policy.by_license[n - 1].name = strdup(e.u.policy.by_license[0].name);
        size_t len;
        uint8_t *buf = encode(reg, &e, &len);
        srl_entity_clear(&e);
        expect_fail(reg, buf, len, "field by_license: key \"MIT-0\" appears twice");
        free(buf);
    }
}

/* A writer schema with a recursive record: values nested deeper than the
 * limit are refused (no unbounded recursion), shallower ones are skipped. */
static void codec_decode_bounds_deep_nesting(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    json_t *j = json_loads(srl_registry_writer_json(reg, SRL_KIND_POLICY), 0, NULL);
    json_array_append_new(
        json_object_get(j, "fields"),
        json_loads("{\"name\":\"nest\",\"default\":null,\"type\":[\"null\",{\"type\":\"record\","
                   "\"name\":\"Node\",\"fields\":[{\"name\":\"next\",\"type\":[\"null\","
                   "\"Node\"]}]}]}",
                   0, NULL));
    json_array_append_new(
        json_object_get(j, "fields"),
        json_loads("{\"name\":\"empties\",\"default\":[],\"type\":{\"type\":\"array\",\"items\":"
                   "{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}}}",
                   0, NULL));
    char *writer = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    uint64_t fp;
    assert_true(srl_registry_add(reg, writer, &fp, err, sizeof(err)));
    assert_null(srl_registry_unreadable_reason(reg, fp));

    srl_entity_t e;
    fx_policy_min(&e);
    srl__wr_t w = {0};
    assert_true(srl__codec_encode_body(&e, &w, err, sizeof(err)));
    srl_entity_clear(&e);
    size_t base = w.len;
    for (int depth = 10; depth <= 1000; depth += 990) {
        w.len = base;
        for (int i = 0; i < depth; i++)
            srl__wr_byte(&w, 2); /* branch Node */
        srl__wr_byte(&w, 0);     /* null */
        srl__wr_byte(&w, 0);     /* empties: [] */
        size_t len;
        uint8_t *buf = cu_single_object(fp, w.data, w.len, &len);
        srl_entity_t out;
        if (depth < 64) {
            assert_true(srl_codec_decode(reg, buf, len, &out, err, sizeof(err)));
            srl_entity_clear(&out);
        } else {
            expect_fail(reg, buf, len, "nested deeper than");
        }
        free(buf);
    }
    /* 2^60 zero-byte records claimed in a block */
    w.len = base;
    srl__wr_byte(&w, 0);
    srl__wr_long(&w, 1LL << 60);
    size_t len;
    uint8_t *buf = cu_single_object(fp, w.data, w.len, &len);
    expect_fail(reg, buf, len, "zero-size items");
    free(buf);
    free(w.data);
    free(writer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_decode_rejects_truncated_body),
        cmocka_unit_test(codec_decode_survives_bit_flips),
        cmocka_unit_test(codec_decode_survives_random_bodies),
        cmocka_unit_test(codec_decode_rejects_bad_headers),
        cmocka_unit_test(codec_decode_rejects_huge_and_negative_lengths),
        cmocka_unit_test(codec_decode_rejects_bad_indexes_and_text),
        cmocka_unit_test(codec_decode_rejects_duplicate_map_keys),
        cmocka_unit_test(codec_decode_bounds_deep_nesting),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
