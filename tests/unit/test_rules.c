/* test_rules.c - the rule table (rules.h): the migration in the tree is
 * what the table generates, constraint names are unique and fit
 * PostgreSQL's 63 bytes, and srl_entity_validate gives the rule's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/json.h"
#include "sysrepl/rules.h"

static char *slurp(FILE *in, size_t *len)
{
    char *text = NULL;
    FILE *mem = open_memstream(&text, len);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(mem);
    return text;
}

/* Run `ninja gen-rules` when this fails (and mind: a released migration is
 * never edited, see tools/gen-rules.c). */
static void rules_migration_in_tree_equals_the_table(void **state)
{
    (void)state;
    char path[1024];
    const char *root = getenv("SRL_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/schemas/sql/006_validation_rules.sql", root ? root : ".");
    FILE *in = fopen(path, "rb");
    if (!in)
        fail_msg("cannot open %s", path);
    size_t have_len, want_len;
    char *have = slurp(in, &have_len);
    fclose(in);
    char *want = NULL;
    FILE *mem = open_memstream(&want, &want_len);
    assert_true(srl_rules_write_sql(mem));
    fclose(mem);
    if (strcmp(have, want) != 0)
        fail_msg("%s differs from what common/rules.c generates (ninja gen-rules)", path);
    free(have);
    free(want);
}

static void rules_constraint_names_are_unique_and_fit(void **state)
{
    (void)state;
    size_t n;
    const srl_rule_t *r = srl_rules(&n);
    assert_true(n > 30);
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(r[i].constraint) <= 63);
        assert_ptr_equal(srl_rule_find(r[i].constraint), &r[i]);
    }
}

/* The ids: the message is the rule's text, exactly. */
static void rules_validate_gives_the_rule_text(void **state)
{
    (void)state;
    srl_entity_t e;
    memset(&e, 0, sizeof e);
    e.kind = SRL_KIND_ASSESSMENT;
    e.u.assessment.vulnerability_id = "CVE-1-2";
    e.u.assessment.assessment_type = "Blocked";
    char err[1024];
    const srl_rule_t *r = srl_rules_check(&e, err, sizeof err);
    assert_non_null(r);
    assert_string_equal(r->constraint, "vulnerability_assessments_vulnerability_id_cve");
    assert_string_equal(err, "vulnerability_id: expected an id like \"CVE-2021-44228\": a CVE id"
                             " is CVE-, 4 digits, '-', 4 or more digits"
                             " (^CVE-[0-9]{4}-[0-9]{4,}$), got \"CVE-1-2\"");
    assert_false(srl_entity_validate(&e, err, sizeof err));
    e.u.assessment.vulnerability_id = "CVE-2021-44228";
    assert_true(srl_entity_validate(&e, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules_migration_in_tree_equals_the_table),
        cmocka_unit_test(rules_constraint_names_are_unique_and_fit),
        cmocka_unit_test(rules_validate_gives_the_rule_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
