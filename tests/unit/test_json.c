/* test_json.c - the JSON form round-trips every kind and every error names
 * its field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sysrepl/json.h"
#include "unit/entity_fixtures.h"

static void round_trip(const char *label, const srl_entity_t *e, void *arg)
{
    (void)arg;
    char err[256] = "";
    json_t *j = srl_json_from_entity(e, err, sizeof(err));
    if (!j)
        fail_msg("%s: from_entity: %s", label, err);
    /* through text too, as the CLI and HTTP see it */
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_error_t jerr;
    j = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(j);
    srl_entity_t back;
    if (!srl_json_to_entity(j, e->kind, &back, err, sizeof(err)))
        fail_msg("%s: to_entity: %s", label, err);
    json_decref(j);
    if (!fx_entity_equal(e, &back))
        fail_msg("%s: %s", label, fx_diff);
    srl_entity_clear(&back);
}

/* Every sample (all optional fields present/absent, 0/1/many entries,
 * non-ASCII text) survives entity -> JSON text -> entity unchanged. */
static void json_round_trip_every_sample(void **state)
{
    (void)state;
    fx_each_sample(round_trip, NULL);
}

static void json_times_are_rfc3339_utc_with_ms(void **state)
{
    (void)state;
    char buf[40];
    int64_t ms;
    assert_true(srl_json_format_time(1764158400123LL, buf, sizeof(buf)));
    assert_string_equal(buf, "2025-11-26T12:00:00.123Z");
    assert_true(srl_json_format_time(-1, buf, sizeof(buf)));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_true(srl_json_format_time(0, buf, sizeof(buf)));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_true(srl_json_parse_time("2025-11-26T12:00:00.123Z", &ms));
    assert_int_equal(ms, 1764158400123LL);
    assert_true(srl_json_parse_time("2025-11-26T13:30:00.1234+01:30", &ms));
    assert_int_equal(ms, 1764158400123LL);
    assert_true(srl_json_parse_time("2024-02-29T00:00:00Z", &ms));
    assert_false(srl_json_parse_time("2023-02-29T00:00:00Z", &ms));
    assert_false(srl_json_parse_time("2025-11-26T12:00:00", &ms));
    assert_false(srl_json_parse_time("2025-11-26T12:00:00Zjunk", &ms));
    assert_false(srl_json_parse_time("yesterday", &ms));
}

static void json_input_accepts_integer_ms_and_defaults(void **state)
{
    (void)state;
    char err[256];
    srl_entity_t e;
    json_t *j = json_loads("{\"vulnerability_id\":\"GHSA-jfh8-c2jp-5v3q\",\"scope\":{\"kind\":"
                           "\"global\"},\"assessment_type\":\"Ignore\",\"assessed_at\":"
                           "1000,\"expires_at\":\"2030-01-01T00:00:00Z\"}",
                           0, NULL);
    assert_true(srl_json_to_entity(j, SRL_KIND_ASSESSMENT, &e, err, sizeof(err)));
    assert_int_equal(e.u.assessment.assessed_at, 1000);
    assert_true(e.u.assessment.has_expires_at);
    assert_int_equal(e.u.assessment.expires_at, 1893456000000LL);
    assert_null(e.u.assessment.meta.origin);
    srl_entity_clear(&e);
    json_decref(j);

    j = json_loads("{\"name\":\"T\"}", 0, NULL);
    assert_true(srl_json_to_entity(j, SRL_KIND_ASSESSMENT_TYPE, &e, err, sizeof(err)));
    assert_int_equal(e.u.type.severity_class, SRL_SEVERITY_CLASS_WARN);
    assert_int_equal(e.u.type.emitted_severity, SRL_SEVERITY_UNSET);
    assert_int_equal(e.u.type.auto_rule.kind, SRL_AUTO_RULE_NONE);
    srl_entity_clear(&e);
    json_decref(j);
}

struct bad_case {
    srl_kind_t kind;
    const char *json;
    const char *error; /* expected errstr prefix */
};

/* Each invalid input is refused with a message that starts with the path of
 * the offending field; the output entity is left cleared. */
static void json_errors_name_their_field(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"galaxy\"},"
         "\"assessment_type\":\"X\"}",
         "scope.kind: unknown value \"galaxy\""},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"T\",\"color\":\"red\"}",
         "color: expected \"#rrggbb\", got \"red\""},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"color\":\"#000000\"}", "name: required"},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"\"}", "name: must not be empty"},
        {SRL_KIND_ASSESSMENT_TYPE,
         "{\"name\":\"T\",\"auto_rule\":{\"kind\":\"cvss\",\"cvss_min\":11}}",
         "auto_rule.cvss_min: must be between 0 and 10"},
        {SRL_KIND_ASSESSMENT_TYPE,
         "{\"name\":\"T\",\"auto_rule\":{\"kind\":\"cvss\",\"cvss_min\":8,\"cvss_max\":7}}",
         "auto_rule.cvss_max: must not be below cvss_min"},
        {SRL_KIND_ASSESSMENT_TYPE,
         "{\"name\":\"T\",\"auto_rule\":{\"kind\":\"pvrs\",\"pvrs_categories\":[1,7]}}",
         "auto_rule.pvrs_categories[1]: must be 1..5"},
        {SRL_KIND_ASSESSMENT_TYPE,
         "{\"name\":\"T\",\"auto_rule\":{\"kind\":\"pvrs\",\"pvrs_categories\":[1,\"2\"]}}",
         "auto_rule.pvrs_categories[1]: expected an integer"},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"T\",\"inactive\":\"yes\"}",
         "inactive: expected true or false"},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"T\",\"colour\":\"#000000\"}",
         "colour: unknown field"},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"T\",\"emitted_severity\":\"dire\"}",
         "emitted_severity: unknown value \"dire\""},
        {SRL_KIND_ASSESSMENT_TYPE, "{\"name\":\"T\",\"default_expiry_days\":0}",
         "default_expiry_days: must be 1..36500"},
        {SRL_KIND_ASSESSMENT_TYPE, "[1]", "(top): expected an object"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-21-1\",\"scope\":{\"kind\":\"global\"},"
         "\"assessment_type\":\"X\"}",
         "vulnerability_id: expected an id like"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"cve-2021-44228\",\"scope\":{\"kind\":\"global\"},"
         "\"assessment_type\":\"X\"}",
         "vulnerability_id: expected an id like"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"feed\"},"
         "\"assessment_type\":\"X\"}",
         "scope.name: required, not empty, when scope.kind is not global"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"global\","
         "\"name\":\"x\"},\"assessment_type\":\"X\"}",
         "scope.name: must be absent when scope.kind is global"},
        {SRL_KIND_ASSESSMENT, "{\"vulnerability_id\":\"CVE-2021-44228\"}", "scope: required"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"global\"},"
         "\"assessment_type\":\"X\",\"expires_at\":\"soon\"}",
         "expires_at: expected an RFC 3339 time"},
        {SRL_KIND_ASSESSMENT,
         "{\"vulnerability_id\":\"CVE-2021-44228\",\"scope\":{\"kind\":\"global\"},"
         "\"assessment_type\":\"X\",\"package_filter\":{\"version_range\":\"1\"}}",
         "package_filter.name: required"},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"unassessed\":\"maybe\"}",
         "unassessed: unknown value \"maybe\""},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"by_license\":{\"MIT\":\"ok\"}}",
         "by_license.MIT: unknown value \"ok\""},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"feeds\":[\"a\",\"\"]}",
         "feeds[1]: expected a non-empty string"},
        {SRL_KIND_POLICY,
         "{\"name\":\"P\",\"exceptions\":[{\"package\":\"a\"},{\"package\":\"b\","
         "\"rule_groups\":[\"license\",\"colour\"]}]}",
         "exceptions[1].rule_groups[1]: unknown value \"colour\""},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"exceptions\":[{\"version_range\":\"1\"}]}",
         "exceptions[0].package: required"},
        {SRL_KIND_POLICY,
         "{\"name\":\"P\",\"exceptions\":[{\"package\":\"a\",\"expires_at\":true}]}",
         "exceptions[0].expires_at: expected an RFC 3339 time"},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"risk_profile\":{\"data_breach\":\"huge\"}}",
         "risk_profile.data_breach: unknown value \"huge\""},
        {SRL_KIND_POLICY, "{\"name\":\"P\",\"version\":\"7\"}", "version: expected an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, &jerr);
        if (!j)
            fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
        char err[512] = "";
        srl_entity_t e;
        bool ok = srl_json_to_entity(j, cases[i].kind, &e, err, sizeof(err));
        json_decref(j);
        if (ok)
            fail_msg("case %zu accepted: %s", i, cases[i].json);
        if (strncmp(err, cases[i].error, strlen(cases[i].error)) != 0)
            fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err, cases[i].error);
        /* left cleared */
        srl_entity_clear(&e);
    }
}

static void json_vulnerability_ids_follow_documented_forms(void **state)
{
    (void)state;
    const char *good[] = {"PGV-1",
                          "PGV-1234567",
                          "CVE-2021-44228",
                          "CVE-1999-0001",
                          "GHSA-jfh8-c2jp-5v3q",
                          "OSV-2020-111",
                          "RUSTSEC-2021-0001",
                          "PYSEC-2021-1",
                          "GO-2022-0001"};
    const char *bad[] = {"",
                         "CVE",
                         "CVE-",
                         "CVE-2021-123",
                         "CVE-21-44228",
                         "PGV-12a",
                         "GHSA-JFH8-C2JP-5V3Q",
                         "GHSA-jfh8-c2jp",
                         "cve-2021-44228",
                         "CVE-2021-44228|global",
                         "A B-1",
                         "1CVE-2021-44228",
                         "X-é"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!srl_vulnerability_id_valid(good[i]))
            fail_msg("rejected %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (srl_vulnerability_id_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_round_trip_every_sample),
        cmocka_unit_test(json_times_are_rfc3339_utc_with_ms),
        cmocka_unit_test(json_input_accepts_integer_ms_and_defaults),
        cmocka_unit_test(json_errors_name_their_field),
        cmocka_unit_test(json_vulnerability_ids_follow_documented_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
