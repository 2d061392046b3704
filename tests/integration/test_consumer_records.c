/* Integration: what sysrepl-consumer does with records that are not what
 * it expects: poison goes to dead_letters with its reason and replication
 * goes on; a record written with a newer schema (published on
 * <prefix>.schemas) is resolved and applied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "support/support.h"

#include "consumer_fixture.h"

static srl_entity_t assessment(int i)
{
    unsigned seed = (unsigned)i;
    srl_entity_t e;
    fx_make(SRL_KIND_ASSESSMENT, i, &seed, &e);
    return e;
}

/* Bytes that are not our format, an unknown fingerprint, a valid header
 * over a corrupt body, a tombstone without a version: each is
 * dead-lettered with its reason, in the first sync and in the steady
 * state, and the good records around them are applied. */
static void consumer_poison_records_are_dead_lettered(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], err[256], key[256];
    const char *topic;

    uint8_t *buf;
    size_t len;

    fx_init(&fx, "poison", NULL);
    topic = fx.topics[SRL_KIND_ASSESSMENT];
    fx_spoke(spoke, sizeof(spoke), "spoke-poison");

    srl_entity_t good1 = assessment(1);
    fx_put(&fx, &good1);
    fx_produce_raw(&fx, topic, "CVE-2024-00001|global", "hello, not avro", 15, 5);
    /* a string that is not UTF-8: the store would refuse the whole COPY */
    srl_entity_t bad = assessment(11);
    free(bad.u.assessment.comment);
    bad.u.assessment.comment = strdup("bad \xff\xfe bytes");
    bad.u.assessment.meta.origin = strdup(FX_HUB);
    bad.u.assessment.meta.version = 6;
    assert_true(srl_codec_encode(fx.reg, &bad, &buf, &len, err, sizeof(err)));
    assert_true(srl_key_build(&bad, key, sizeof(key)) > 0);
    fx_produce_raw(&fx, topic, key, buf, len, 6);
    free(buf);
    srl_entity_clear(&bad);
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "poison-spoke", NULL); /* first sync */
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters"), 2);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"), 1);

    /* steady state */
    uint8_t unknown[40] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9};
    fx_produce_raw(&fx, topic, "CVE-2024-00002|global", unknown, sizeof(unknown), 6);
    srl_entity_t good2 = assessment(2);
    good2.u.assessment.meta.origin = strdup(FX_HUB);
    good2.u.assessment.meta.version = 7;
    assert_true(srl_codec_encode(fx.reg, &good2, &buf, &len, err, sizeof(err)));
    assert_true(srl_key_build(&good2, key, sizeof(key)) > 0);
    fx_produce_raw(&fx, topic, key, buf, len / 2, 7); /* header fine, body cut */
    buf[len - 1] ^= 0xff;
    buf[12] = 0x7f; /* a string length far beyond the record */
    fx_produce_raw(&fx, topic, key, buf, len, 7);
    free(buf);
    fx_produce_raw(&fx, topic, "CVE-2024-00009|global", NULL, 0, -1); /* tombstone, no version */
    fx.next_version = 100;
    srl_entity_t good3 = assessment(3);
    fx_put(&fx, &good3);
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "poison-spoke", NULL);

    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters"), 6);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"), 2);
    char *reasons = fx_query(spoke,
                             "SELECT string_agg(reason, E'\\n' ORDER BY id) FROM dead_letters");
    print_message("%s\n", reasons);
    assert_non_null(strstr(reasons, "not a sysrepl record"));
    assert_non_null(strstr(reasons, "unknown schema fingerprint"));
    assert_non_null(strstr(reasons, "undecodable value"));
    assert_non_null(strstr(reasons, "sysrepl.version"));
    assert_non_null(strstr(reasons, "not valid UTF-8"));
    free(reasons);
    /* the bytes are kept, with where they came from */
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters WHERE value ="
                                         " 'hello, not avro'::bytea AND record_offset >= 0"),
                     1);
    srl_entity_clear(&good1);
    srl_entity_clear(&good2);
    srl_entity_clear(&good3);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

/* A record written with a newer schema (ours plus a field with a
 * default, appended last) and published on <prefix>.schemas is loaded,
 * resolved against ours and applied. */
static void consumer_newer_schema_is_resolved(void **state)
{
    (void)state;
    fx_t fx;
    char spoke[512], err[256], key[256];

    fx_init(&fx, "evol", NULL);
    fx_spoke(spoke, sizeof(spoke), "spoke-evol");
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "evol-spoke", NULL);

    /* The newer schema. */
    json_error_t jerr;
    json_t *schema = json_loads(srl_registry_writer_json(fx.reg, SRL_KIND_ASSESSMENT), 0, &jerr);
    assert_non_null(schema);
    json_t *field = json_pack("{s:s, s:s, s:s}", "name", "triage_note", "type", "string", "default",
                              "");
    json_array_append_new(json_object_get(schema, "fields"), field);
    char *newer = json_dumps(schema, JSON_COMPACT);
    json_decref(schema);
    srl_registry_t *other = srl_registry_new(err, sizeof(err));
    uint64_t fp = 0;
    assert_true(srl_registry_add(other, newer, &fp, err, sizeof(err)));
    char fpkey[17];
    snprintf(fpkey, sizeof(fpkey), "%016" PRIx64, fp);
    fx_produce_raw(&fx, fx.schemas_topic, fpkey, newer, strlen(newer), -1);

    /* A record in it: our body, then the extra string, under the new
     * fingerprint (Avro records are their fields in order). */
    srl_entity_t e = assessment(5);
    e.u.assessment.meta.origin = strdup(FX_HUB);
    e.u.assessment.meta.version = 50;
    uint8_t *buf;
    size_t len;
    assert_true(srl_codec_encode(fx.reg, &e, &buf, &len, err, sizeof(err)));
    const char note[] = "seen by triage";
    uint8_t *rec = malloc(len + 1 + sizeof(note));
    memcpy(rec, buf, len);
    for (int i = 0; i < 8; i++)
        rec[2 + i] = (uint8_t)(fp >> (8 * i));     /* little-endian fingerprint */
    rec[len] = (uint8_t)((sizeof(note) - 1) << 1); /* zigzag length */
    memcpy(rec + len + 1, note, sizeof(note) - 1);
    assert_true(srl_key_build(&e, key, sizeof(key)) > 0);
    fx_produce_raw(&fx, fx.topics[SRL_KIND_ASSESSMENT], key, rec, len + sizeof(note), 50);
    fx_flush(&fx);
    fx_consumer_sync(&fx, spoke, "evol-spoke", NULL);

    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM dead_letters"), 0);
    assert_int_equal(fx_query_int(spoke, "SELECT version FROM vulnerability_assessments"), 50);
    free(buf);
    free(rec);
    free(newer);
    srl_registry_free(other);
    srl_entity_clear(&e);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_poison_records_are_dead_lettered),
        cmocka_unit_test(consumer_newer_schema_is_resolved),
    };
    if (getenv("SRL_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SRL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
