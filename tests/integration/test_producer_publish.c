/*
 * test_producer_publish.c - what the producer writes to the topics:
 * every change of every kind with its key, version header, origin, writer
 * schema fingerprint and content; deletes as tombstones with their version;
 * the writer schemas on the schema topic; the mirror after a snapshot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"
#include "unit/entity_fixtures.h"

static void put(pf_t *pf, srl_entity_t *e)
{
    char err[512];
    if (srl_store_put(pf->st, e, NULL, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("put: %s", err);
}

static void del(pf_t *pf, srl_kind_t kind, const char *key)
{
    char err[512];
    if (srl_store_delete(pf->st, kind, key, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("delete %s: %s", key, err);
}

/* The store's current entity of a key (the caller clears it). */
static void get(pf_t *pf, srl_kind_t kind, const char *key, srl_entity_t *e)
{
    char err[512];
    if (srl_store_get(pf->st, kind, key, e, err, sizeof(err)) != SRL_STORE_OK)
        fail_msg("get %s: %s", key, err);
}

/* Expected records of one key, in order: the entity's JSON (NULL for a
 * tombstone) and its version (a tombstone's: > the previous one). */
typedef struct expect {
    srl_kind_t kind;
    char key[256];
    int n;
    json_t *json[4];
    int64_t version[4];
} expect_t;

static void expect_current(pf_t *pf, expect_t *x)
{
    srl_entity_t e = {.kind = x->kind};
    char err[256];
    get(pf, x->kind, x->key, &e);
    x->json[x->n] = srl_json_from_entity(&e, err, sizeof(err));
    x->version[x->n] = pf_entity_version(&e);
    x->n++;
    srl_entity_clear(&e);
}

static void expect_tombstone(expect_t *x)
{
    x->json[x->n] = NULL;
    x->version[x->n] = -1;
    x->n++;
}

/* The records of x->key on its topic are exactly x's, in order. */
static void check_key(pf_t *pf, pf_recs_t *recs, const expect_t *x)
{
    char err[512];
    int seen = 0;
    int64_t prev_version = 0;
    for (size_t i = 0; i < recs->count; i++) {
        const pf_rec_t *r = &recs->items[i];
        if (strcmp(r->key, x->key) != 0)
            continue;
        if (seen >= x->n)
            fail_msg("key %s: more records than changes (%d)", x->key, x->n);
        assert_string_equal(r->origin, pf->instance);
        assert_true(r->version > prev_version);
        if (!x->json[seen]) {
            if (r->value)
                fail_msg("key %s record %d: expected a tombstone", x->key, seen);
        } else {
            assert_non_null(r->value);
            assert_int_equal(r->value[0], 0xC3);
            assert_int_equal(r->value[1], 0x01);
            uint64_t fp = 0;
            for (int b = 0; b < 8; b++)
                fp |= (uint64_t)r->value[2 + b] << (8 * b);
            assert_true(fp == srl_registry_writer_fingerprint(pf->reg, x->kind));
            srl_entity_t d;
            if (!srl_codec_decode(pf->reg, r->value, r->value_len, &d, err, sizeof(err)))
                fail_msg("key %s: %s", x->key, err);
            json_t *j = srl_json_from_entity(&d, err, sizeof(err));
            if (!json_equal(j, x->json[seen])) {
                char *a = json_dumps(j, JSON_SORT_KEYS),
                     *b = json_dumps(x->json[seen], JSON_SORT_KEYS);
                fail_msg("key %s record %d:\n topic %s\n store %s", x->key, seen, a, b);
            }
            assert_int_equal(r->version, x->version[seen]);
            json_decref(j);
            srl_entity_clear(&d);
        }
        prev_version = r->version;
        seen++;
    }
    if (seen != x->n)
        fail_msg("key %s: %d records on the topic, %d changes", x->key, seen, x->n);
}

static void wait_drained(pf_t *pf, pid_t pid)
{
    if (!pf_wait_outbox_empty(pf, 30000)) {
        pf_dump_log(pf, 40);
        kill(pid, SIGKILL);
        fail_msg("outbox not drained within 30 s");
    }
}

/* Inserts, updates and deletes of each kind reach their topics as records
 * (and tombstones) with the right key, headers, fingerprint and content. */
static void producer_publishes_every_change_of_every_kind(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-publish", "hub-publish", NULL);
    pid_t pid = pf_start(&pf, NULL);
    /* Changes made during the start's snapshot would be published twice. */
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));

    srl_entity_t t1, t2, a1, a2, p1, p2;
    fx_type_full(&t1);
    fx_type_cvss(&t2);
    free(t2.u.type.name);
    t2.u.type.name = strdup("Blocked");
    fx_assessment_full(&a1); /* type "Blocked" */
    fx_assessment_min(&a2);
    free(a2.u.assessment.assessment_type);
    a2.u.assessment.assessment_type = strdup("Blocked");
    fx_policy_n(&p1, 3);
    fx_policy_min(&p2);

    expect_t x[6] = {{.kind = SRL_KIND_ASSESSMENT_TYPE}, {.kind = SRL_KIND_ASSESSMENT_TYPE},
                     {.kind = SRL_KIND_ASSESSMENT},      {.kind = SRL_KIND_ASSESSMENT},
                     {.kind = SRL_KIND_POLICY},          {.kind = SRL_KIND_POLICY}};
    srl_entity_t *all[6] = {&t1, &t2, &a1, &a2, &p1, &p2};
    for (int i = 0; i < 6; i++)
        assert_true(srl_key_build(all[i], x[i].key, sizeof(x[i].key)) > 0);

    /* 1: inserts */
    for (int i = 0; i < 6; i++) {
        put(&pf, all[i]);
        expect_current(&pf, &x[i]);
    }
    wait_drained(&pf, pid);
    /* 2: updates */
    free(t1.u.type.description);
    t1.u.type.description = strdup("changed");
    a1.u.assessment.automatic = false;
    p1.u.policy.unassessed = SRL_OUTCOME_NONCOMPLIANT;
    put(&pf, &t1);
    expect_current(&pf, &x[0]);
    put(&pf, &a1);
    expect_current(&pf, &x[2]);
    put(&pf, &p1);
    expect_current(&pf, &x[4]);
    wait_drained(&pf, pid);
    /* 3: deletes */
    del(&pf, SRL_KIND_ASSESSMENT, x[3].key);
    expect_tombstone(&x[3]);
    del(&pf, SRL_KIND_POLICY, x[5].key);
    expect_tombstone(&x[5]);
    del(&pf, SRL_KIND_ASSESSMENT_TYPE, x[0].key);
    expect_tombstone(&x[0]);
    wait_drained(&pf, pid);
    assert_int_equal(pf_stop(pid), 0);

    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        pf_recs_t recs;
        pf_read_topic(&pf, pf.topics[k], &recs);
        for (int i = 0; i < 6; i++)
            if (x[i].kind == (srl_kind_t)k)
                check_key(&pf, &recs, &x[i]);
        pf_recs_free(&recs);
    }

    /* The writer schemas, keyed by fingerprint, on the schema topic. */
    pf_recs_t schemas;
    pf_read_topic(&pf, pf.schemas_topic, &schemas);
    for (int k = 0; k < SRL_KIND_COUNT; k++) {
        char key[17];
        bool found = false;
        snprintf(key, sizeof(key), "%016" PRIx64,
                 srl_registry_writer_fingerprint(pf.reg, (srl_kind_t)k));
        for (size_t i = 0; i < schemas.count; i++)
            if (strcmp(schemas.items[i].key, key) == 0 && schemas.items[i].value &&
                schemas.items[i].value_len ==
                    strlen(srl_registry_writer_json(pf.reg, (srl_kind_t)k)))
                found = true;
        if (!found)
            fail_msg("schema %s missing from %s", key, pf.schemas_topic);
    }
    pf_recs_free(&schemas);
    assert_true(pf_check_mirror(&pf) == 3);
    assert_true(
        pf_scalar(&pf, "SELECT count(*) FROM replication_log WHERE component = 'producer'") > 0);
    assert_true(pf_scalar(&pf, "SELECT last_delivered_version FROM producer_state") > 0);

    for (int i = 0; i < 6; i++) {
        srl_entity_clear(all[i]);
        for (int j = 0; j < x[i].n; j++)
            json_decref(x[i].json[j]);
    }
    pf_free(&pf);
    /* cppcheck-suppress memleak ; t2 and a2 are freed through all[] above */
}

/* --snapshot publishes the full state and tombstones keys the topics hold
 * but the store does not: afterwards the topics mirror the store. */
static void producer_snapshot_tombstones_keys_missing_from_store(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-snap", "hub-snap", NULL);
    pf_exec(&pf, "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
                 " scope_kind, assessed_at) SELECT 'CVE-2024-' || (10000 + g), 'Blocked',"
                 " 'global', 0 FROM generate_series(1, 2000) g");
    pid_t pid = pf_start(&pf, (const char *const[]){"--once", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);
    /* Deleted without capture (as if the outbox were lost): only a
     * snapshot can tell the topics. */
    pf_exec(&pf,
            "BEGIN; SET LOCAL sysrepl.applying = on;"
            " DELETE FROM vulnerability_assessments WHERE vulnerability_id LIKE 'CVE-2024-11%';"
            " COMMIT");
    pf_exec(&pf, "UPDATE vulnerability_assessments SET comment = 'after' WHERE"
                 " vulnerability_id LIKE 'CVE-2024-10%'");
    pf_exec(&pf, "DELETE FROM outbox");
    pid = pf_start(&pf, (const char *const[]){"--once", "--snapshot", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);
    assert_true(pf_log_contains(&pf, "snapshot done"));
    assert_int_equal(pf_check_mirror(&pf), 2000 - 1000);
    pf_free(&pf);
}

/* Outbox rows of a kind this hub does not replicate are deleted without
 * publishing (keeping them would grow the outbox forever) and counted. */
static void producer_deletes_rows_of_kinds_not_replicated(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-notrepl", "hub-notrepl", NULL);
    pf_exec(&pf, "INSERT INTO assessment_types (name, severity_class) VALUES ('Local', 'warn')");
    assert_int_equal(pf_scalar(&pf, "SELECT count(*) FROM outbox"), 1);
    pid_t pid = pf_start(&pf, (const char *const[]){"-X", "replicate=policies", "--once", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);
    assert_int_equal(pf_scalar(&pf, "SELECT count(*) FROM outbox"), 0);
    if (!pf_log_contains(&pf, "not_replicated=1")) {
        pf_dump_log(&pf, 20);
        fail_msg("the stopped line does not count the row as not_replicated");
    }
    pf_free(&pf);
}

/* Several changes of one key in one transaction leave several outbox rows;
 * only the current content is published, once, with its own version: the
 * older rows are superseded and deleted with the batch. */
static void producer_publishes_only_the_current_row_of_a_key(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-supersede", "hub-supersede", NULL);
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));
    pf_exec(&pf, "BEGIN;"
                 " INSERT INTO assessment_types (name, severity_class) VALUES ('Twice', 'warn');"
                 " UPDATE assessment_types SET description = 'one' WHERE name = 'Twice';"
                 " UPDATE assessment_types SET description = 'two' WHERE name = 'Twice';"
                 " COMMIT");
    long long current = pf_scalar(&pf, "SELECT version FROM assessment_types WHERE name = 'Twice'");
    wait_drained(&pf, pid);
    assert_int_equal(pf_stop(pid), 0);
    pf_recs_t recs;
    pf_read_topic(&pf, pf.topics[SRL_KIND_ASSESSMENT_TYPE], &recs);
    int seen = 0;
    for (size_t i = 0; i < recs.count; i++)
        if (strcmp(recs.items[i].key, "Twice") == 0) {
            assert_int_equal(recs.items[i].version, current);
            seen++;
        }
    assert_int_equal(seen, 1);
    pf_recs_free(&recs);
    assert_true(pf_log_contains(&pf, "superseded=2"));
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_publishes_every_change_of_every_kind),
        cmocka_unit_test(producer_snapshot_tombstones_keys_missing_from_store),
        cmocka_unit_test(producer_deletes_rows_of_kinds_not_replicated),
        cmocka_unit_test(producer_publishes_only_the_current_row_of_a_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
