/* test_model.c - enum symbols match the schemas and round-trip; _clear
 * releases everything and accepts NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "unit/entity_fixtures.h"

#define ROUND_TRIP(prefix, type, count)         \
    for (int i = 0; i < (int)(count); i++) {    \
        const char *n = prefix##_name((type)i); \
        type back;                              \
        assert_non_null(n);                     \
        assert_true(prefix##_parse(n, &back));  \
        assert_int_equal(back, i);              \
    }                                           \
    assert_null(prefix##_name((type)(count)));  \
    assert_null(prefix##_name((type)-2));

/* Every value has a symbol that parses back to it; out of range has none. */
static void model_enum_symbols_round_trip(void **state)
{
    (void)state;
    ROUND_TRIP(srl_kind, srl_kind_t, SRL_KIND_COUNT)
    ROUND_TRIP(srl_severity_class, srl_severity_class_t, SRL_SEVERITY_CLASS_COUNT)
    ROUND_TRIP(srl_severity, srl_severity_t, SRL_SEVERITY_COUNT)
    ROUND_TRIP(srl_scope_kind, srl_scope_kind_t, SRL_SCOPE_COUNT)
    ROUND_TRIP(srl_outcome, srl_outcome_t, SRL_OUTCOME_COUNT)
    ROUND_TRIP(srl_risk_level, srl_risk_level_t, SRL_RISK_COUNT)
    ROUND_TRIP(srl_auto_rule_kind, srl_auto_rule_kind_t, SRL_AUTO_RULE_PVRS + 1)
    unsigned bit;
    assert_true(srl_rule_group_parse("deprecation", &bit));
    assert_int_equal(bit, SRL_RULE_GROUP_DEPRECATION);
    assert_string_equal(srl_rule_group_name(SRL_RULE_GROUP_UNLISTED), "unlisted");
    assert_null(srl_rule_group_name(3));
    assert_false(srl_rule_group_parse("unknown", &bit));
}

/* The symbols are the wire contract: spelled as in the schemas. */
static void model_symbols_are_the_schema_symbols(void **state)
{
    (void)state;
    assert_string_equal(srl_kind_name(SRL_KIND_ASSESSMENT), "vulnerability-assessments");
    assert_string_equal(srl_severity_class_name(SRL_SEVERITY_CLASS_SEVERE), "severe");
    assert_string_equal(srl_scope_kind_name(SRL_SCOPE_PROJECT), "project");
    assert_string_equal(srl_outcome_name(SRL_OUTCOME_NONCOMPLIANT), "noncompliant");
    assert_string_equal(srl_risk_level_name(SRL_RISK_HIGH), "high");
    srl_outcome_t o = SRL_OUTCOME_WARN;
    assert_false(srl_outcome_parse("Warn", &o));
    assert_false(srl_outcome_parse(NULL, &o));
    assert_int_equal(o, SRL_OUTCOME_WARN); /* untouched on failure */
}

/* Each kind has one content table and key column (the names of 001_init.sql);
 * a kind out of range has none. */
static void model_kind_table_names_each_kind(void **state)
{
    (void)state;
    assert_string_equal(srl_kind_table(SRL_KIND_ASSESSMENT_TYPE), "assessment_types");
    assert_string_equal(srl_kind_table(SRL_KIND_ASSESSMENT), "vulnerability_assessments");
    assert_string_equal(srl_kind_table(SRL_KIND_POLICY), "policies");
    assert_string_equal(srl_kind_key_column(SRL_KIND_ASSESSMENT_TYPE), "name");
    assert_string_equal(srl_kind_key_column(SRL_KIND_ASSESSMENT), "key");
    assert_string_equal(srl_kind_key_column(SRL_KIND_POLICY), "name");
    assert_null(srl_kind_table(SRL_KIND_COUNT));
    assert_null(srl_kind_key_column(SRL_KIND_COUNT));
}

static void model_clear_releases_and_zeroes(void **state)
{
    (void)state;
    srl_entity_t e;
    fx_policy_n(&e, 5);
    srl_entity_clear(&e);
    assert_int_equal(e.kind, SRL_KIND_POLICY);
    assert_null(e.u.policy.name);
    assert_int_equal(e.u.policy.exception_count, 0);
    srl_entity_clear(&e); /* twice is fine */
    fx_type_full(&e);
    srl_entity_clear(&e);
    assert_int_equal(e.u.type.emitted_severity, SRL_SEVERITY_UNSET);
    srl_entity_clear(NULL);
    srl_policy_clear(NULL);
    srl_assessment_clear(NULL);
    srl_assessment_type_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_enum_symbols_round_trip),
        cmocka_unit_test(model_symbols_are_the_schema_symbols),
        cmocka_unit_test(model_kind_table_names_each_kind),
        cmocka_unit_test(model_clear_releases_and_zeroes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
