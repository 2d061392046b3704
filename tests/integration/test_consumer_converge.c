/* Integration: sysrepl-consumer makes spokes converge on the topics'
 * content (real Kafka, real PostgreSQL). Records are written straight to
 * the topics, as the producer writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"

static fx_model_t model;

/* Random puts, deletes, stale and duplicate records of all three kinds:
 * a spoke synced halfway and then kept up, and a spoke synced once at the
 * end, both hold exactly the expected state, and equal each other row for
 * row. */
static void consumer_converge_random_changes(void **state)
{
    (void)state;
    fx_t fx;
    char a[512], b[512];
    unsigned seed = 42;
    const int nkeys[SRL_KIND_COUNT] = {6, 600, 25};

    memset(&model, 0, sizeof(model));
    fx_init(&fx, "conv", NULL);
    fx_spoke(a, sizeof(a), "spoke-a");
    fx_spoke(b, sizeof(b), "spoke-b");

    fx_random_changes(&fx, &model, nkeys, 2000, &seed);
    fx_flush(&fx);
    fx_consumer_sync(&fx, a, "conv-spoke-a", NULL); /* first sync: rebuild */
    fx_model_check(&model, a, 7);

    fx_random_changes(&fx, &model, nkeys, 3000, &seed);
    fx_flush(&fx);
    fx_consumer_sync(&fx, a, "conv-spoke-a", NULL); /* steady state */
    fx_consumer_sync(&fx, b, "conv-spoke-b", NULL); /* first sync of everything */
    fx_model_check(&model, a, 7);
    fx_model_check(&model, b, 7);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char *da = fx_dump(a, (srl_kind_t)k), *db = fx_dump(b, (srl_kind_t)k);
        assert_string_equal(da, db);
        free(da);
        free(db);
    }
    /* Nothing was captured on the spoke: applying writes no outbox rows. */
    assert_int_equal(fx_query_int(a, "SELECT count(*) FROM outbox"), 0);
    assert_int_equal(fx_query_int(a, "SELECT count(*) FROM dead_letters"), 0);
    /* Offsets and catch-up are recorded for every partition. */
    assert_int_equal(fx_query_int(a, "SELECT count(*) FROM consumer_offsets"
                                     " WHERE caught_up_at IS NOT NULL"),
                     9);
    fx_model_free(&model);
    fx_free(&fx);
    srl_test_drop_db(a);
    srl_test_drop_db(b);
}

/* A spoke's first sync deletes and replaces what it held: its own rows,
 * and a row of a replicated key with a higher local version, are gone;
 * the spoke equals one that started empty. A kind it does not replicate
 * is left untouched. */
static void consumer_first_sync_replaces_local_content(void **state)
{
    (void)state;
    fx_t fx;
    char seeded[512], clean[512], only_pol[512], err[512];
    unsigned seed = 7;
    const int nkeys[SRL_KIND_COUNT] = {4, 50, 5};

    memset(&model, 0, sizeof(model));
    fx_init(&fx, "repl", NULL);
    fx_spoke(seeded, sizeof(seeded), "spoke-seeded");
    fx_spoke(clean, sizeof(clean), "spoke-clean");
    fx_spoke(only_pol, sizeof(only_pol), "spoke-pol");
    fx_random_changes(&fx, &model, nkeys, 300, &seed);
    fx_flush(&fx);

    /* Local content: entities of its own, and Type1 with a huge version. */
    const char *seeds[] = {seeded, only_pol};
    for (int s = 0; s < 2; s++) {
        srl_store_rc_t rc;
        srl_store_t *st = srl_store_connect(seeds[s], &rc, err, sizeof(err));
        assert_non_null(st);
        for (int k = 0; k < SRL_KIND_COUNT; k++) {
            srl_entity_t e;
            fx_make((srl_kind_t)k, 900 + k, &seed, &e);
            if (k == SRL_KIND_ASSESSMENT) {
                free(e.u.assessment.assessment_type);
                e.u.assessment.assessment_type = strdup("Type900");
            }
            if (srl_store_put(st, &e, NULL, err, sizeof(err)) != SRL_STORE_OK)
                fail_msg("put: %s", err);
            srl_entity_clear(&e);
        }
        srl_store_close(st);
        free(fx_query(seeds[s],
                      "BEGIN; SET LOCAL sysrepl.applying = 'on';"
                      " INSERT INTO assessment_types (name, severity_class, origin, version)"
                      " VALUES ('Type1', 'warn', 'elsewhere', 999999)"
                      " ON CONFLICT (name) DO UPDATE SET version = 999999; COMMIT"));
    }
    char *before_types = fx_dump(only_pol, SRL_KIND_ASSESSMENT_TYPE);
    char *before_assessments = fx_dump(only_pol, SRL_KIND_ASSESSMENT);

    fx_consumer_sync(&fx, seeded, "repl-seeded", NULL);
    fx_consumer_sync(&fx, clean, "repl-clean", NULL);
    const char *pol[] = {"-X", "replicate=policies", NULL};
    fx_consumer_sync(&fx, only_pol, "repl-pol", pol);

    fx_model_check(&model, seeded, 7);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char *ds = fx_dump(seeded, (srl_kind_t)k), *dc = fx_dump(clean, (srl_kind_t)k);
        assert_string_equal(ds, dc);
        free(ds);
        free(dc);
    }
    /* replicate=policies: policies mirrored, the rest as it was. */
    fx_model_check(&model, only_pol, 1u << SRL_KIND_POLICY);
    char *after_types = fx_dump(only_pol, SRL_KIND_ASSESSMENT_TYPE);
    char *after_assessments = fx_dump(only_pol, SRL_KIND_ASSESSMENT);
    assert_string_equal(before_types, after_types);
    assert_string_equal(before_assessments, after_assessments);
    assert_int_equal(fx_query_int(only_pol, "SELECT count(*) FROM consumer_offsets"), 3);
    free(before_types);
    free(before_assessments);
    free(after_types);
    free(after_assessments);
    fx_model_free(&model);
    fx_free(&fx);
    srl_test_drop_db(seeded);
    srl_test_drop_db(clean);
    srl_test_drop_db(only_pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_converge_random_changes),
        cmocka_unit_test(consumer_first_sync_replaces_local_content),
    };
    if (getenv("SRL_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SRL_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
