/* test_keys.c - record keys are stable, readable and refuse missing parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sysrepl/keys.h"
#include "unit/entity_fixtures.h"

/* The exact bytes are part of the wire contract: compaction depends on them. */
static void keys_build_gives_documented_bytes(void **state)
{
    (void)state;
    srl_entity_t e;
    char buf[256];

    fx_type_cvss(&e);
    assert_int_equal(srl_key_build(&e, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "High CVSS");
    srl_entity_clear(&e);

    fx_assessment_full(&e);
    assert_true(srl_key_build(&e, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "CVE-2021-44228|feed:maven-central");
    srl_entity_clear(&e);

    fx_assessment_min(&e);
    assert_true(srl_key_build(&e, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "PGV-1234567|global");
    e.u.assessment.scope_kind = SRL_SCOPE_PROJECT;
    e.u.assessment.scope_name = strdup("web shop");
    assert_true(srl_key_build(&e, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "PGV-1234567|project:web shop");
    e.u.assessment.scope_kind = SRL_SCOPE_POLICY;
    assert_true(srl_key_build(&e, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "PGV-1234567|policy:web shop");
    srl_entity_clear(&e);

    fx_policy_min(&e);
    assert_true(srl_key_build(&e, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "nuget.org");
    srl_entity_clear(&e);
}

/* Fields that are not part of the key never change it. */
static void keys_build_ignores_non_key_fields(void **state)
{
    (void)state;
    srl_entity_t e;
    char a[256], b[256];
    fx_assessment_full(&e);
    assert_true(srl_key_build(&e, a, sizeof(a)) > 0);
    free(e.u.assessment.comment);
    e.u.assessment.comment = NULL;
    e.u.assessment.meta.version++;
    e.u.assessment.has_package_filter = false;
    assert_true(srl_key_build(&e, b, sizeof(b)) > 0);
    assert_string_equal(a, b);
    srl_entity_clear(&e);
}

static void keys_build_rejects_missing_parts_and_small_buffers(void **state)
{
    (void)state;
    srl_entity_t e;
    char buf[256];
    fx_assessment_full(&e);
    assert_int_equal(srl_key_build(&e, buf, 10), -1);
    free(e.u.assessment.scope_name);
    e.u.assessment.scope_name = NULL;
    assert_int_equal(srl_key_build(&e, buf, sizeof(buf)), -1);
    assert_null(srl_key_dup(&e));
    srl_entity_clear(&e);

    fx_policy_min(&e);
    free(e.u.policy.name);
    e.u.policy.name = strdup("");
    assert_int_equal(srl_key_build(&e, buf, sizeof(buf)), -1);
    srl_entity_clear(&e);
}

static void keys_dup_handles_long_keys(void **state)
{
    (void)state;
    srl_entity_t e;
    fx_policy_min(&e);
    free(e.u.policy.name);
    e.u.policy.name = malloc(1001);
    memset(e.u.policy.name, 'x', 1000);
    e.u.policy.name[1000] = '\0';
    char *k = srl_key_dup(&e);
    assert_non_null(k);
    assert_int_equal(strlen(k), 1000);
    free(k);
    srl_entity_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_build_gives_documented_bytes),
        cmocka_unit_test(keys_build_ignores_non_key_fields),
        cmocka_unit_test(keys_build_rejects_missing_parts_and_small_buffers),
        cmocka_unit_test(keys_dup_handles_long_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
