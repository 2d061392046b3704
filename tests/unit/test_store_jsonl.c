/* test_store_jsonl.c - the export line format: the direct assessment
 * formatter of store_jsonl.c writes exactly the bytes json.c would, for
 * every combination of optional fields and for hostile strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sysrepl/json.h"
#include "sysrepl/store.h"

static char *json_c_form(const srl_entity_t *e)
{
    char err[256];
    json_t *o = srl_json_from_entity(e, err, sizeof(err));
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    return s;
}

static void assert_same_as_json_c(const srl_entity_t *e)
{
    char err[256];
    size_t len = 0;
    char *fast = srl_store_entity_json(e, &len, err, sizeof(err));
    assert_non_null(fast);
    char *slow = json_c_form(e);
    if (strcmp(fast, slow) != 0)
        fail_msg("formatter differs from json.c:\n fast: %s\n json: %s", fast, slow);
    assert_int_equal(len, strlen(fast));
    free(fast);
    free(slow);
}

/* Strings a person might put in a comment: quotes, backslashes, every
 * control character, DEL, UTF-8 (2, 3 and 4 bytes), a slash. */
static const char *const hostile[] = {
    "plain",
    "",
    "quote \" backslash \\ slash /",
    "\x01\x02\x03\x04\x05\x06\x07\b\t\n\x0b\f\r\x0e\x0f\x10\x1f end",
    "del \x7f",
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92",
    "tab\there\r\nnewline",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void fill(srl_assessment_t *a, unsigned bits, const char *text)
{
    memset(a, 0, sizeof(*a));
    a->vulnerability_id = strdup("CVE-2021-44228");
    a->assessment_type = strdup(text[0] ? text : "Blocked");
    a->scope_kind = (srl_scope_kind_t)(bits % SRL_SCOPE_COUNT);
    if (a->scope_kind != SRL_SCOPE_GLOBAL)
        a->scope_name = strdup(text);
    if (bits & 4)
        a->comment = strdup(text);
    if (bits & 8) {
        a->has_package_filter = true;
        a->package_name = strdup("pkg\"x");
        if (bits & 16)
            a->package_version_range = strdup(text);
    }
    if (bits & 32) {
        a->has_expires_at = true;
        /* inside and outside the years json.c formats as RFC 3339 */
        a->expires_at = (bits & 64) ? 1900000000123LL : 400000000000000LL;
    }
    a->automatic = bits & 128;
    if (bits & 256)
        a->assessed_by = strdup(text);
    a->assessed_at = (bits & 512) ? -1 : 1700000000000LL + bits;
    if (bits & 1024)
        a->meta.origin = strdup("hub-1");
    a->meta.version = (int64_t)bits * 7919;
    a->meta.changed_at = 1764158400123LL;
}

/* Every combination of optional fields, with each hostile string. */
static void jsonl_assessment_matches_json_c_for_all_field_combinations(void **state)
{
    (void)state;
    for (unsigned bits = 0; bits < 2048; bits++) {
        for (size_t h = 0; h < NHOSTILE; h++) {
            srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
            fill(&e.u.assessment, bits, hostile[h]);
            assert_same_as_json_c(&e);
            srl_entity_clear(&e);
        }
    }
}

/* An export line is the envelope around the JSON form, one line, and
 * reads back to the same entity. */
static void jsonl_write_is_one_envelope_line_that_reads_back(void **state)
{
    (void)state;
    srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
    fill(&e.u.assessment, 4 | 8 | 16 | 32 | 64 | 256 | 1024, hostile[3]);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    char err[256];
    assert_true(srl_store_jsonl_write(f, &e, err, sizeof(err)));
    fclose(f);
    assert_non_null(strchr(buf, '\n'));
    assert_int_equal(strchr(buf, '\n') - buf, (long)size - 1);

    json_error_t jerr;
    json_t *line = json_loads(buf, 0, &jerr);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "kind")),
                        "vulnerability-assessments");
    srl_entity_t back = {.kind = SRL_KIND_ASSESSMENT};
    assert_true(srl_json_to_entity(json_object_get(line, "value"), SRL_KIND_ASSESSMENT, &back, err,
                                   sizeof(err)));
    assert_string_equal(back.u.assessment.comment, hostile[3]);
    assert_int_equal(back.u.assessment.expires_at, e.u.assessment.expires_at);
    json_decref(line);
    srl_entity_clear(&back);
    srl_entity_clear(&e);
    free(buf);
}

/* Types and policies go through json.c unchanged. */
static void jsonl_other_kinds_use_json_c(void **state)
{
    (void)state;
    srl_entity_t e = {.kind = SRL_KIND_POLICY};
    e.u.policy.name = strdup("Global");
    assert_same_as_json_c(&e);
    srl_entity_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jsonl_assessment_matches_json_c_for_all_field_combinations),
        cmocka_unit_test(jsonl_write_is_one_envelope_line_that_reads_back),
        cmocka_unit_test(jsonl_other_kinds_use_json_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
