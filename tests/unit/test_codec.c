/* test_codec.c - Avro single-object encoding of every kind: round trips,
 * agreement with the schemas, canonical form and fingerprints, registry,
 * and the "schemas" command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "sysrepl/kafka.h"
#include "sysrepl/schemas_cmd.h"
#include "unit/codec_test_util.h"
#include "unit/entity_fixtures.h"

static int setup(void **state)
{
    char err[256];
    *state = srl_registry_new(err, sizeof(err));
    if (!*state)
        fprintf(stderr, "registry: %s\n", err);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    srl_registry_free(*state);
    return 0;
}

static void round_trip(const char *label, const srl_entity_t *e, void *arg)
{
    srl_registry_t *reg = arg;
    char err[256] = "";
    uint8_t *buf;
    size_t len;
    if (!srl_codec_encode(reg, e, &buf, &len, err, sizeof(err)))
        fail_msg("%s: encode: %s", label, err);
    srl_entity_t back;
    if (!srl_codec_decode(reg, buf, len, &back, err, sizeof(err)))
        fail_msg("%s: decode: %s", label, err);
    if (!fx_entity_equal(e, &back))
        fail_msg("%s: %s", label, fx_diff);
    srl_entity_clear(&back);
    free(buf);
}

/* Every sample (optional fields present and absent, lists and maps with 0,
 * 1 and 50 entries, non-ASCII text) decodes to exactly what was encoded. */
static void codec_round_trip_every_sample(void **state)
{
    fx_each_sample(round_trip, *state);
}

static void matches_schema(const char *label, const srl_entity_t *e, void *arg)
{
    srl_registry_t *reg = arg;
    char err[256] = "";
    uint8_t *buf;
    size_t len;
    assert_true(srl_codec_encode(reg, e, &buf, &len, err, sizeof(err)));
    uint64_t fp;
    assert_true(srl_codec_peek_fingerprint(buf, len, &fp, err, sizeof(err)));
    assert_int_equal(fp, srl_registry_writer_fingerprint(reg, e->kind));
    const srl__avro_schema_t *s = srl__registry_schema(reg, fp);
    assert_non_null(s);
    /* The generic walker, driven only by the parsed .avsc, consumes the
     * hand-written encoding exactly: field order and types agree. */
    srl__rd_t r;
    srl__rd_init(&r, buf + SRL_CODEC_HEADER_SIZE, len - SRL_CODEC_HEADER_SIZE);
    json_t *j = srl__avro_decode_json(s->root, &r, 0);
    if (!j)
        fail_msg("%s: schema walker: %s", label, r.err);
    if (srl__rd_left(&r) != 0)
        fail_msg("%s: %zu bytes left after the schema walker", label, srl__rd_left(&r));
    /* and encoding that JSON back with the schema gives the same bytes */
    srl__wr_t w = {0};
    assert_true(srl__avro_encode_json(s->root, j, false, &w, "", err, sizeof(err)));
    assert_int_equal(w.len, len - SRL_CODEC_HEADER_SIZE);
    assert_memory_equal(w.data, buf + SRL_CODEC_HEADER_SIZE, w.len);
    free(w.data);
    json_decref(j);
    free(buf);
}

static void codec_encoding_follows_the_schema_files(void **state)
{
    fx_each_sample(matches_schema, *state);
}

static void codec_header_is_single_object_with_le_fingerprint(void **state)
{
    srl_registry_t *reg = *state;
    srl_entity_t e;
    uint8_t *buf;
    size_t len;
    char err[256];
    fx_assessment_min(&e);
    assert_true(srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)));
    uint64_t fp = srl_registry_writer_fingerprint(reg, SRL_KIND_ASSESSMENT);
    assert_int_equal(buf[0], 0xc3);
    assert_int_equal(buf[1], 0x01);
    for (int i = 0; i < 8; i++)
        assert_int_equal(buf[2 + i], (uint8_t)(fp >> (8 * i)));
    free(buf);
    srl_entity_clear(&e);
}

/* Vectors from the Avro specification's test suite (schema-tests.txt). */
static void fingerprint_matches_spec_vectors(void **state)
{
    (void)state;
    assert_int_equal(srl_fingerprint64("", 0), 0xc15d213aa4d7a795ULL);
    assert_int_equal(srl_fingerprint64("\"int\"", 5), 0x7275d51a3f395c8fULL);
    assert_int_equal(srl_fingerprint64("\"null\"", 6), 0x63dd24e7cc258f8aULL);
    const char *rec = "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
                      "\"type\":\"boolean\"}]}";
    assert_int_equal(srl_fingerprint64(rec, strlen(rec)), 0x6cd8eaf1c968a33bULL);
}

/* [PRIMITIVES] [FULLNAMES] [STRIP] [ORDER] [WHITESPACE], named types
 * written once then by name; expected text and fingerprint from fastavro. */
static void canonical_form_follows_spec(void **state)
{
    (void)state;
    char err[256];
    const char *in =
        "{\"namespace\":\"x.y\",\"type\":\"record\",\"name\":\"R\",\"doc\":\"d\",\"aliases\":"
        "[\"Q\"],\"fields\":[{\"name\":\"a\",\"type\":{\"type\":\"int\"},\"default\":1,\"doc\":"
        "\"z\"},{\"name\":\"e\",\"type\":{\"symbols\":[\"A\",\"B\"],\"type\":\"enum\",\"name\":"
        "\"E\",\"default\":\"A\"}},{\"name\":\"e2\",\"type\":\"E\"},{\"name\":\"m\",\"type\":"
        "{\"values\":{\"type\":\"array\",\"items\":\"long\"},\"type\":\"map\"}},{\"name\":\"f\","
        "\"type\":{\"type\":\"fixed\",\"size\":16,\"name\":\"other.F\"}},{\"name\":\"u\","
        "\"type\":[\"null\",{\"type\":\"string\",\"logicalType\":\"uuid\"}],\"default\":null},"
        "{\"name\":\"f2\",\"type\":\"other.F\"}]}";
    const char *want =
        "{\"name\":\"x.y.R\",\"type\":\"record\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"e\",\"type\":{\"name\":\"x.y.E\",\"type\":\"enum\",\"symbols\":[\"A\","
        "\"B\"]}},{\"name\":\"e2\",\"type\":\"x.y.E\"},{\"name\":\"m\",\"type\":{\"type\":"
        "\"map\",\"values\":{\"type\":\"array\",\"items\":\"long\"}}},{\"name\":\"f\",\"type\":"
        "{\"name\":\"other.F\",\"type\":\"fixed\",\"size\":16}},{\"name\":\"u\",\"type\":"
        "[\"null\",\"string\"]},{\"name\":\"f2\",\"type\":\"other.F\"}]}";
    char *c = srl_schema_canonical(in, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c, want);
    assert_int_equal(srl_fingerprint64(c, strlen(c)), 0xdba289c67b2ccc2cULL);
    free(c);

    c = srl_schema_canonical("{\"type\":\"int\",\"logicalType\":\"date\"}", err, sizeof(err));
    assert_string_equal(c, "\"int\"");
    free(c);
}

static void canonical_rejects_invalid_schemas(void **state)
{
    (void)state;
    const char *bad[] = {
        "not json",
        "\"nosuchtype\"",
        "{\"type\":\"record\",\"name\":\"R\"}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"default\":\"x\"}]}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":[\"null\","
        "\"int\"],\"default\":1}]}",
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}",
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
        "{\"type\":\"enum\",\"name\":\"1E\",\"symbols\":[\"A\"]}",
        "[\"int\",\"int\"]",
        "[\"null\",[\"int\"]]",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"a\",\"type\":\"int\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        char *c = srl_schema_canonical(bad[i], err, sizeof(err));
        if (c)
            fail_msg("accepted %s as %s", bad[i], c);
        assert_true(err[0] != '\0');
    }
}

static void registry_knows_ours_and_learns_others(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        uint64_t fp = srl_registry_writer_fingerprint(reg, (srl_kind_t)k);
        assert_true(srl_registry_has(reg, fp));
        const char *canon = srl_registry_writer_canonical(reg, (srl_kind_t)k);
        assert_int_equal(srl_fingerprint64(canon, strlen(canon)), fp);
        assert_ptr_equal(srl_registry_schema_json(reg, fp),
                         srl_registry_writer_json(reg, (srl_kind_t)k));
    }
    char *v2 = cu_read_source("tests/data/schemas/policy_v2.avsc");
    assert_non_null(v2);
    uint64_t fp = 0, fp2 = 1;
    assert_true(srl_registry_add(reg, v2, &fp, err, sizeof(err)));
    assert_true(srl_registry_has(reg, fp));
    assert_null(srl_registry_unreadable_reason(reg, fp));
    assert_true(srl_registry_add(reg, v2, &fp2, err, sizeof(err))); /* again: no-op */
    assert_int_equal(fp, fp2);
    assert_string_equal(srl_registry_schema_json(reg, fp), v2);
    free(v2);

    assert_false(srl_registry_add(reg,
                                  "{\"type\":\"record\",\"name\":\"io.x.Other\","
                                  "\"fields\":[]}",
                                  &fp, err, sizeof(err)));
    assert_non_null(strstr(err, "io.x.Other"));
    assert_false(srl_registry_add(reg, "{", &fp, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid schema"));
}

static void codec_encode_refuses_missing_required_fields(void **state)
{
    srl_registry_t *reg = *state;
    srl_entity_t e;
    uint8_t *buf = (uint8_t *)"x";
    size_t len = 1;
    char err[256];
    fx_assessment_full(&e);
    free(e.u.assessment.assessment_type);
    e.u.assessment.assessment_type = NULL;
    assert_false(srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)));
    assert_null(buf);
    assert_non_null(strstr(err, "assessment_type"));
    srl_entity_clear(&e);

    fx_policy_n(&e, 2);
    e.u.policy.by_license[1].outcome = (srl_outcome_t)9;
    assert_false(srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)));
    assert_non_null(strstr(err, "by_license"));
    srl_entity_clear(&e);
}

/* ---- the schemas command ---- */

static int run_cmd(int argc, char **argv, char *out, size_t out_size)
{
    FILE *o = fmemopen(out, out_size, "w");
    FILE *e = fopen("/dev/null", "w");
    int rc = srl_schemas_command(argc, argv, o, e);
    fclose(o);
    fclose(e);
    return rc;
}

static void schemas_command_lists_kinds_and_checks_candidates(void **state)
{
    srl_registry_t *reg = *state;
    static char out[16384];
    char *argv1[] = {"schemas", NULL};
    memset(out, 0, sizeof(out));
    assert_int_equal(run_cmd(1, argv1, out, sizeof(out)), 0);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char line[256], topic[128];
        uint64_t fp = srl_registry_writer_fingerprint(reg, (srl_kind_t)k);
        assert_true(srl_topic_name("sysrepl", (srl_kind_t)k, topic, sizeof(topic)));
        snprintf(line, sizeof(line), "%s %016" PRIx64 " %" PRId32 " %s-value {",
                 srl_kind_name((srl_kind_t)k), fp, srl_schema_id_derive(fp), topic);
        if (!strstr(out, line))
            fail_msg("missing \"%s\" in:\n%s", line, out);
    }

    char path[1024];
    const char *root = getenv("SRL_SOURCE_DIR") ? getenv("SRL_SOURCE_DIR") : SRL_SOURCE_DIR;
    snprintf(path, sizeof(path), "%s/tests/data/schemas/vulnerability_assessment_v2.avsc", root);
    char *argv2[] = {"schemas", "--check", path, NULL};
    memset(out, 0, sizeof(out));
    assert_int_equal(run_cmd(3, argv2, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "compatible"));

    /* an incompatible candidate: exit 2 and the reason names the field */
    char tmpl[] = "/tmp/srl_schema_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    const char *bad = "{\"type\":\"record\",\"name\":\"Policy\",\"namespace\":\"io.sysrepl\","
                      "\"fields\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"origin\","
                      "\"type\":\"string\"},{\"name\":\"version\",\"type\":\"long\"},{\"name\":"
                      "\"changed_at\",\"type\":\"long\"},{\"name\":\"tier\",\"type\":\"int\"}]}";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    char *argv3[] = {"schemas", "--check", tmpl, NULL};
    memset(out, 0, sizeof(out));
    assert_int_equal(run_cmd(3, argv3, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "tier"));
    unlink(tmpl);

    char *argv4[] = {"schemas", "--check", "/nonexistent.avsc", NULL};
    assert_int_equal(run_cmd(3, argv4, out, sizeof(out)), 1);
    char *argv5[] = {"schemas", "--bogus", NULL};
    assert_int_equal(run_cmd(2, argv5, out, sizeof(out)), 1);
}

/* ---- the Confluent framing ---- */

static void confluent_round_trip(const char *label, const srl_entity_t *e, void *arg)
{
    srl_registry_t *reg = arg;
    char err[256] = "";
    uint8_t *buf;
    size_t len, clen = 0;
    if (!srl_codec_encode(reg, e, &buf, &len, err, sizeof(err)))
        fail_msg("%s: encode: %s", label, err);
    uint64_t fp = srl_registry_writer_fingerprint(reg, e->kind);
    uint8_t *c = malloc(len);
    assert_true(
        srl_codec_to_confluent(buf, len, srl_schema_id_derive(fp), c, &clen, err, sizeof(err)));
    /* 00, the id big-endian, then the very same body */
    assert_int_equal(clen, len - SRL_CODEC_HEADER_SIZE + SRL_CODEC_CONFLUENT_HEADER_SIZE);
    assert_int_equal(c[0], 0);
    int32_t id = (int32_t)((uint32_t)c[1] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 8 |
                           c[4]);
    assert_int_equal(id, srl_schema_id_derive(fp));
    assert_memory_equal(c + SRL_CODEC_CONFLUENT_HEADER_SIZE, buf + SRL_CODEC_HEADER_SIZE,
                        len - SRL_CODEC_HEADER_SIZE);
    srl_entity_t back;
    if (!srl_codec_decode(reg, c, clen, &back, err, sizeof(err)))
        fail_msg("%s: decode: %s", label, err);
    if (!fx_entity_equal(e, &back))
        fail_msg("%s: %s", label, fx_diff);
    srl_entity_clear(&back);
    free(c);
    free(buf);
}

/* Every sample re-framed as 00 + derived id + body decodes to itself. */
static void codec_confluent_framing_round_trips_every_sample(void **state)
{
    fx_each_sample(confluent_round_trip, *state);
}

/* The derived ids: positive 31-bit, the same in every registry, and each
 * names its schema. */
static void registry_derives_schema_ids_from_fingerprints(void **state)
{
    srl_registry_t *reg = *state;
    char err[256];
    srl_registry_t *other = srl_registry_new(err, sizeof(err));
    assert_non_null(other);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        uint64_t fp = srl_registry_writer_fingerprint(reg, (srl_kind_t)k), got = 0;
        int32_t id = srl_schema_id_derive(fp);
        assert_true(id > 0);
        assert_true(srl_registry_has_id(other, id));
        assert_true(srl_registry_id_fingerprint(reg, id, &got));
        assert_int_equal(got, fp);
    }
    assert_int_equal(srl_schema_id_derive(0), 1); /* never 0 */
    /* all ones: the two 31-bit pieces cancel, the top 2 bits remain */
    assert_int_equal(srl_schema_id_derive(UINT64_MAX), 3);
    srl_registry_free(other);
}

/* A Confluent value whose id nobody knows fails naming the id; an
 * external registry's id, once aliased, decodes; an id cannot be aliased
 * to a second schema. */
static void codec_confluent_unknown_id_and_aliases(void **state)
{
    srl_registry_t *reg = *state;
    char err[256] = "";
    srl_entity_t e, back;
    fx_type_full(&e);
    uint8_t *buf;
    size_t len, clen;
    assert_true(srl_codec_encode(reg, &e, &buf, &len, err, sizeof(err)));
    uint8_t *c = malloc(len);
    assert_true(srl_codec_to_confluent(buf, len, 4242, c, &clen, err, sizeof(err)));
    assert_false(srl_codec_decode(reg, c, clen, &back, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown schema id 4242"));
    uint64_t fp = srl_registry_writer_fingerprint(reg, SRL_KIND_ASSESSMENT_TYPE);
    assert_true(srl_registry_alias_id(reg, 4242, fp, err, sizeof(err)));
    assert_true(srl_codec_decode(reg, c, clen, &back, err, sizeof(err)));
    assert_true(fx_entity_equal(&e, &back));
    srl_entity_clear(&back);
    assert_false(srl_registry_alias_id(reg, 4242,
                                       srl_registry_writer_fingerprint(reg, SRL_KIND_POLICY), err,
                                       sizeof(err)));
    assert_non_null(strstr(err, "4242"));
    /* a value of 3 bytes is neither header */
    uint8_t shorty[3] = {0, 0, 1};
    assert_false(srl_codec_decode(reg, shorty, sizeof(shorty), &back, err, sizeof(err)));
    assert_non_null(strstr(err, "Confluent header"));
    free(c);
    free(buf);
    srl_entity_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_round_trip_every_sample),
        cmocka_unit_test(codec_encoding_follows_the_schema_files),
        cmocka_unit_test(codec_header_is_single_object_with_le_fingerprint),
        cmocka_unit_test(fingerprint_matches_spec_vectors),
        cmocka_unit_test(canonical_form_follows_spec),
        cmocka_unit_test(canonical_rejects_invalid_schemas),
        cmocka_unit_test(registry_knows_ours_and_learns_others),
        cmocka_unit_test(codec_encode_refuses_missing_required_fields),
        cmocka_unit_test(schemas_command_lists_kinds_and_checks_candidates),
        cmocka_unit_test(codec_confluent_framing_round_trips_every_sample),
        cmocka_unit_test(registry_derives_schema_ids_from_fingerprints),
        cmocka_unit_test_setup_teardown(codec_confluent_unknown_id_and_aliases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
