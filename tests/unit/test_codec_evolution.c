/* test_codec_evolution.c - schema resolution between versions, and the
 * evolution rules srl_schema_check_evolution enforces.
 *
 * tests/data/schemas/<kind>_v2.avsc each add a field with a default, drop
 * one that had a default, and (policy) reorder fields and grow enums. */
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

static char *v2_json(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "tests/data/schemas/%s", file);
    char *s = cu_read_source(rel);
    if (!s)
        fail_msg("cannot read %s", rel);
    return s;
}

static void decode_ok(srl_registry_t *reg, const uint8_t *buf, size_t len, srl_entity_t *e)
{
    char err[512];
    if (!srl_codec_decode(reg, buf, len, e, err, sizeof(err)))
        fail_msg("decode: %s", err);
}

/* A v2 writer's record (added field set, dropped field absent) reads with
 * our schema: the unknown field is skipped, the dropped one gets our
 * default. */
static void evolution_v2_assessment_reads_as_ours(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    char *v2 = v2_json("vulnerability_assessment_v2.avsc");
    size_t len;
    uint8_t *buf = cu_encode_json(
        v2,
        "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"feed\",\"name\":"
        "\"maven\"},\"source\":\"scanner ✓\",\"assessment_type\":\"Blocked\",\"package_filter\":"
        "{\"name\":\"log4j-core\",\"version_range\":null},\"expires_at\":1795694400000,"
        "\"automatic\":true,\"assessed_by\":null,\"assessed_at\":5,\"origin\":\"hub\","
        "\"version\":9,\"changed_at\":77}",
        &len);
    srl_entity_t e;
    assert_false(srl_codec_decode(reg, buf, len, &e, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown schema fingerprint"));
    assert_true(srl_registry_add(reg, v2, NULL, err, sizeof(err)));
    decode_ok(reg, buf, len, &e);
    const srl_assessment_t *a = &e.u.assessment;
    assert_int_equal(e.kind, SRL_KIND_ASSESSMENT);
    assert_string_equal(a->vulnerability_id, "CVE-2021-44228");
    assert_int_equal(a->scope_kind, SRL_SCOPE_FEED);
    assert_string_equal(a->scope_name, "maven");
    assert_string_equal(a->assessment_type, "Blocked");
    assert_null(a->comment); /* dropped by v2: our default */
    assert_true(a->has_package_filter);
    assert_string_equal(a->package_name, "log4j-core");
    assert_null(a->package_version_range);
    assert_true(a->has_expires_at);
    assert_int_equal(a->expires_at, 1795694400000LL);
    assert_true(a->automatic);
    assert_int_equal(a->assessed_at, 5);
    assert_string_equal(a->meta.origin, "hub");
    assert_int_equal(a->meta.version, 9);
    assert_int_equal(a->meta.changed_at, 77);
    srl_entity_clear(&e);
    free(buf);
    free(v2);
}

/* Transcode our encoding with a (ours -> v2) plan and read it generically
 * with v2: v2 readers see our data with their default for the added field. */
static json_t *read_ours_as(srl_registry_t *reg, const srl_entity_t *e, const char *v2_text,
                            srl__avro_schema_t **v2_out)
{
    char err[512];
    uint8_t *buf;
    size_t len;
    assert_true(srl_codec_encode(reg, e, &buf, &len, err, sizeof(err)));
    srl__avro_schema_t *v2 = srl__avro_schema_parse(v2_text, err, sizeof(err));
    assert_non_null(v2);
    const srl__avro_schema_t *ours = srl__registry_schema(reg,
                                                          srl_registry_writer_fingerprint(reg,
                                                                                          e->kind));
    srl__resolver_t *res = srl__resolver_new(ours, v2, SRL__RESOLVE_DATA, err, sizeof(err));
    if (!res)
        fail_msg("resolver: %s", err);
    srl__rd_t r;
    srl__wr_t w = {0};
    srl__rd_init(&r, buf + SRL_CODEC_HEADER_SIZE, len - SRL_CODEC_HEADER_SIZE);
    if (!srl__resolver_transcode(res, &r, &w))
        fail_msg("transcode: %s", r.err);
    srl__rd_init(&r, w.data, w.len);
    json_t *j = srl__avro_decode_json(v2->root, &r, 0);
    if (!j)
        fail_msg("v2 read: %s", r.err);
    assert_int_equal(srl__rd_left(&r), 0);
    free(w.data);
    free(buf);
    srl__resolver_free(res);
    *v2_out = v2;
    return j;
}

static void evolution_ours_reads_as_v2_with_v2_defaults(void **state)
{
    srl_registry_t *reg = *state;
    srl_entity_t e;
    srl__avro_schema_t *v2;
    char *text = v2_json("assessment_type_v2.avsc");
    fx_type_full(&e);
    json_t *j = read_ours_as(reg, &e, text, &v2);
    assert_string_equal(json_string_value(json_object_get(j, "name")), e.u.type.name);
    assert_true(json_is_null(json_object_get(j, "note"))); /* v2's default */
    assert_null(json_object_get(j, "color"));              /* v2 has none */
    assert_string_equal(json_string_value(json_object_get(j, "severity_class")), "custom");
    assert_int_equal(json_array_size(
                         json_object_get(json_object_get(j, "auto_rule"), "pvrs_categories")),
                     3);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), e.u.type.meta.version);
    json_decref(j);
    srl__avro_schema_free(v2);
    srl_entity_clear(&e);
    free(text);

    text = v2_json("policy_v2.avsc");
    fx_policy_n(&e, 3);
    j = read_ours_as(reg, &e, text, &v2);
    assert_string_equal(json_string_value(json_object_get(j, "owner")), "");
    assert_string_equal(json_string_value(json_object_get(j, "deprecated")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "unassessed")), "warn");
    assert_int_equal(json_object_size(json_object_get(j, "by_license")), 3);
    assert_null(json_object_get(j, "license_other"));
    json_decref(j);
    srl__avro_schema_free(v2);
    srl_entity_clear(&e);
    free(text);
}

/* v2 policy: fields in another order, new enum symbols. Unknown Outcome
 * symbols read as the enum default ("unspecified"), unknown rule groups
 * exempt from nothing, the dropped field gets our default. */
static void evolution_v2_policy_reorders_and_grows_enums(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    char *v2 = v2_json("policy_v2.avsc");
    assert_true(srl_registry_add(reg, v2, NULL, err, sizeof(err)));
    size_t len;
    uint8_t *buf = cu_encode_json(
        v2,
        "{\"name\":\"Global\",\"owner\":\"sec\",\"deprecated\":\"block\",\"unassessed\":"
        "\"noncompliant\",\"by_assessment_type\":{\"Blocked\":\"block\",\"Ignore\":"
        "\"compliant\"},\"license_undetected\":\"warn\",\"by_license\":{},\"unlisted\":"
        "\"compliant\",\"exceptions\":[{\"package\":\"a*\",\"rule_groups\":[\"vulnerability\","
        "\"license\",\"unlisted\"],\"expires_at\":null}],\"risk_profile\":null,"
        "\"origin\":\"hub\",\"version\":3,\"changed_at\":4}",
        &len);
    srl_entity_t e;
    decode_ok(reg, buf, len, &e);
    const srl_policy_t *p = &e.u.policy;
    assert_string_equal(p->name, "Global");
    assert_int_equal(p->deprecated, SRL_OUTCOME_UNSPECIFIED); /* "block" unknown here */
    assert_int_equal(p->unassessed, SRL_OUTCOME_NONCOMPLIANT);
    assert_int_equal(p->by_assessment_type_count, 2);
    assert_string_equal(p->by_assessment_type[0].name, "Blocked");
    assert_int_equal(p->by_assessment_type[0].outcome, SRL_OUTCOME_UNSPECIFIED);
    assert_int_equal(p->by_assessment_type[1].outcome, SRL_OUTCOME_COMPLIANT);
    assert_int_equal(p->license_undetected, SRL_OUTCOME_WARN);
    assert_int_equal(p->license_other, SRL_OUTCOME_UNSPECIFIED); /* dropped: default */
    assert_int_equal(p->unlisted, SRL_OUTCOME_COMPLIANT);
    assert_int_equal(p->exception_count, 1);
    assert_int_equal(p->exceptions[0].rule_groups,
                     SRL_RULE_GROUP_LICENSE | SRL_RULE_GROUP_UNLISTED);
    assert_false(p->has_risk_profile);
    assert_int_equal(p->meta.version, 3);
    srl_entity_clear(&e);

    /* every truncation of the transcoded path fails cleanly too */
    for (size_t cut = 0; cut < len; cut++) {
        srl_entity_t t;
        assert_false(srl_codec_decode(reg, buf, cut, &t, err, sizeof(err)));
        srl_entity_clear(&t);
    }
    free(buf);
    free(v2);
}

/* Type promotions of the specification: int written, long read; bytes
 * written, string read (still checked as UTF-8). */
static void evolution_promotions_are_read(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    char *ours = strdup(srl_registry_writer_json(reg, SRL_KIND_ASSESSMENT));
    /* build a writer that has version as int and comment as bytes */
    json_t *j = json_loads(ours, 0, NULL);
    json_t *fields = json_object_get(j, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (strcmp(name, "version") == 0)
            json_object_set_new(f, "type", json_string("int"));
        if (strcmp(name, "comment") == 0)
            json_object_set_new(f, "type", json_pack("[s,s]", "null", "bytes"));
    }
    char *writer = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_true(srl_registry_add(reg, writer, NULL, err, sizeof(err)));
    size_t len;
    uint8_t *buf = cu_encode_json(
        writer,
        "{\"vulnerability_id\":\"PGV-1\",\"scope\":{\"kind\":\"global\",\"name\":null},"
        "\"assessment_type\":\"T\",\"comment\":\"abc\",\"package_filter\":null,\"expires_at\":"
        "null,\"automatic\":false,\"assessed_by\":null,\"assessed_at\":0,\"origin\":\"o\","
        "\"version\":-2147483648,\"changed_at\":1}",
        &len);
    srl_entity_t e;
    decode_ok(reg, buf, len, &e);
    assert_int_equal(e.u.assessment.meta.version, INT32_MIN);
    assert_string_equal(e.u.assessment.comment, "abc");
    srl_entity_clear(&e);
    /* but the rules do not allow it as an evolution */
    assert_false(srl_schema_check_evolution(reg, writer, err, sizeof(err)));
    if (!strstr(err, "version") && !strstr(err, "comment"))
        fail_msg("reason names neither field: %s", err);
    free(buf);
    free(writer);
    free(ours);
}

/* A writer schema that can never be read as ours is registered, and its
 * records fail with the reason. */
static void evolution_unreadable_writer_fails_with_reason(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    const char *writer = "{\"type\":\"record\",\"name\":\"io.sysrepl.AssessmentType\",\"fields\":["
                         "{\"name\":\"title\",\"type\":\"string\"}]}";
    uint64_t fp;
    assert_true(srl_registry_add(reg, writer, &fp, err, sizeof(err)));
    assert_non_null(srl_registry_unreadable_reason(reg, fp));
    size_t len;
    uint8_t *buf = cu_encode_json(writer, "{\"title\":\"x\"}", &len);
    srl_entity_t e;
    assert_false(srl_codec_decode(reg, buf, len, &e, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot be read as ours"));
    assert_non_null(strstr(err, "name"));
    free(buf);
}

/* A union branch the reader lacks fails only for values that use it. */
static void evolution_unmatched_union_branch_fails_per_value(void **state)
{
    srl_registry_t *reg = *state;
    char err[512];
    json_t *j = json_loads(srl_registry_writer_json(reg, SRL_KIND_ASSESSMENT_TYPE), 0, NULL);
    json_t *fields = json_object_get(j, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        if (strcmp(json_string_value(json_object_get(f, "name")), "description") == 0)
            json_object_set_new(f, "type", json_pack("[s,s,s]", "null", "string", "boolean"));
    }
    char *writer = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_true(srl_registry_add(reg, writer, NULL, err, sizeof(err)));
    const char *doc = "{\"name\":\"T\",\"description\":%s,\"color\":null,\"severity_class\":"
                      "\"warn\",\"emitted_severity\":null,\"auto_rule\":{\"kind\":\"none\","
                      "\"cvss_min\":0,\"cvss_max\":10,\"pvrs_categories\":[]},"
                      "\"default_expiry_days\":null,\"inactive\":false,\"built_in\":false,"
                      "\"origin\":\"o\",\"version\":1,\"changed_at\":1}";
    char text[1024];
    size_t len;
    srl_entity_t e;
    snprintf(text, sizeof(text), doc, "\"fine\"");
    uint8_t *buf = cu_encode_json(writer, text, &len);
    decode_ok(reg, buf, len, &e);
    assert_string_equal(e.u.type.description, "fine");
    srl_entity_clear(&e);
    free(buf);
    snprintf(text, sizeof(text), doc, "true");
    buf = cu_encode_json(writer, text, &len);
    assert_false(srl_codec_decode(reg, buf, len, &e, err, sizeof(err)));
    assert_non_null(strstr(err, "description"));
    assert_non_null(strstr(err, "boolean"));
    free(buf);
    free(writer);
}

/* ---- srl_schema_check_evolution ---- */

static void evolution_check_accepts_the_v2_schemas(void **state)
{
    srl_registry_t *reg = *state;
    const char *files[] = {"assessment_type_v2.avsc", "vulnerability_assessment_v2.avsc",
                           "policy_v2.avsc"};
    char err[512];
    for (size_t i = 0; i < 3; i++) {
        char *s = v2_json(files[i]);
        if (!srl_schema_check_evolution(reg, s, err, sizeof(err)))
            fail_msg("%s: %s", files[i], err);
        free(s);
    }
    for (int k = 0; k < SRL_KIND_COUNT; k++)
        assert_true(srl_schema_check_evolution(reg, srl_registry_writer_json(reg, (srl_kind_t)k),
                                               err, sizeof(err)));
}

/* Apply an edit (a JSON merge on one field, or its removal) to our schema
 * of a kind and expect the check to refuse, naming want in the reason. */
typedef void (*edit_fn)(json_t *schema);

static json_t *field_named(json_t *record, const char *name)
{
    json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), name) ==
            0)
            return json_array_get(fields, i);
    return NULL;
}

static void remove_field(json_t *record, const char *name)
{
    json_t *fields = json_object_get(record, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), name) ==
            0)
            json_array_remove(fields, i);
}

static void edit_add_without_default(json_t *s)
{
    json_array_append_new(json_object_get(s, "fields"),
                          json_pack("{s:s,s:s}", "name", "tier", "type", "int"));
}
static void edit_remove_without_default(json_t *s)
{
    remove_field(s, "origin");
}
static void edit_remove_key_field(json_t *s)
{
    remove_field(s, "vulnerability_id");
}
static void edit_retype(json_t *s)
{
    json_object_set_new(field_named(s, "assessment_type"), "type", json_string("bytes"));
}
static void edit_make_required(json_t *s)
{
    json_t *f = field_named(s, "comment");
    json_object_set_new(f, "type", json_string("string"));
    json_object_set_new(f, "default", json_string(""));
}
static void edit_remove_symbol(json_t *s)
{
    json_t *scope = json_object_get(field_named(s, "scope"), "type");
    json_t *kind = json_object_get(field_named(scope, "kind"), "type");
    json_array_remove(json_object_get(kind, "symbols"), 3);
}
static void edit_add_symbol_without_default(json_t *s)
{
    json_t *scope = json_object_get(field_named(s, "scope"), "type");
    json_t *kind = json_object_get(field_named(scope, "kind"), "type");
    json_array_append_new(json_object_get(kind, "symbols"), json_string("galaxy"));
}
static void edit_rename_record(json_t *s)
{
    json_object_set_new(s, "name", json_string("Assessment"));
}
static void edit_nested_add_without_default(json_t *s)
{
    json_t *scope = json_object_get(field_named(s, "scope"), "type");
    json_array_append_new(json_object_get(scope, "fields"),
                          json_pack("{s:s,s:s}", "name", "region", "type", "string"));
}

static void evolution_check_refuses_and_says_why(void **state)
{
    srl_registry_t *reg = *state;
    const struct {
        edit_fn edit;
        const char *want1, *want2;
    } cases[] = {
        {edit_add_without_default, "tier", "added without a default"},
        {edit_remove_without_default, "origin", "removed"},
        {edit_remove_key_field, "vulnerability_id", "removed"},
        {edit_retype, "assessment_type", "type changed from string to bytes"},
        {edit_make_required, "comment", "union branch null"},
        {edit_remove_symbol, "scope.kind", "\"project\" removed"},
        {edit_add_symbol_without_default, "scope.kind", "no default symbol"},
        {edit_rename_record, "io.sysrepl.Assessment", "none of our record types"},
        {edit_nested_add_without_default, "scope.region", "added without a default"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *s = json_loads(srl_registry_writer_json(reg, SRL_KIND_ASSESSMENT), 0, NULL);
        cases[i].edit(s);
        char *text = json_dumps(s, JSON_COMPACT);
        json_decref(s);
        char err[512] = "";
        bool ok = srl_schema_check_evolution(reg, text, err, sizeof(err));
        free(text);
        if (ok)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, cases[i].want1) || !strstr(err, cases[i].want2))
            fail_msg("case %zu: \"%s\" lacks \"%s\" / \"%s\"", i, err, cases[i].want1,
                     cases[i].want2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(evolution_v2_assessment_reads_as_ours),
        cmocka_unit_test(evolution_ours_reads_as_v2_with_v2_defaults),
        cmocka_unit_test(evolution_v2_policy_reorders_and_grows_enums),
        cmocka_unit_test(evolution_promotions_are_read),
        cmocka_unit_test(evolution_unreadable_writer_fails_with_reason),
        cmocka_unit_test(evolution_unmatched_union_branch_fails_per_value),
        cmocka_unit_test(evolution_check_accepts_the_v2_schemas),
        cmocka_unit_test(evolution_check_refuses_and_says_why),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
