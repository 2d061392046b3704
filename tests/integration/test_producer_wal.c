/* test_producer_wal.c - the producer reading the hub's changes from its WAL
 * (logical decoding), on a real PostgreSQL with wal_level = logical and a
 * real Kafka broker: what is published and what is not, the switch from
 * outbox capture with rows still waiting and writers running, and a slot
 * that went missing. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

static bool wal_available(pf_t *pf)
{
    PGresult *res = PQexec(srl_store_conn(pf->st), "SHOW wal_level");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK &&
              strcmp(PQgetvalue(res, 0, 0), "logical") == 0;
    PQclear(res);
    return ok;
}

/* The records of key on a topic, in order: "v" (a value) or "t". */
static void key_history(pf_recs_t *recs, const char *key, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < recs->count && n + 2 < size; i++)
        if (strcmp(recs->items[i].key, key) == 0)
            out[n++] = recs->items[i].value ? 'v' : 't';
    out[n] = '\0';
}

static void drain_and_stop(pf_t *pf, pid_t pid)
{
    if (!pf_wait_outbox_empty(pf, 60000)) {
        pf_dump_log(pf, 40);
        fail_msg("the producer did not deliver everything within 60 s");
    }
    assert_int_equal(pf_stop(pid), 0);
}

/* Committed changes are published, one record per key and transaction
 * (per batch when several are read together: see below);
 * a rolled-back transaction, and one applied by a consumer (its first
 * statement the applying mark), are not; a delete and the old key of a
 * renamed row are tombstones with versions above the rows they end. */
static void wal_publishes_what_committed(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-wal", "hub-wal", NULL);
    if (!wal_available(&pf)) {
        pf_free(&pf);
        skip();
    }
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "reading changes from the WAL", 30000));
    assert_int_equal(pf_scalar(&pf, "SELECT count(*) FROM pg_trigger WHERE tgname ="
                                    " 'sysrepl_capture_insert' AND tgenabled <> 'D'"),
                     0);
    pf_exec(&pf, "BEGIN; INSERT INTO policies (name) VALUES ('rolled-back'); ROLLBACK");
    pf_exec(&pf, "INSERT INTO policies (name) VALUES ('kept'), ('gone')");
    pf_exec(&pf, "INSERT INTO assessment_types (name, severity_class) VALUES ('Old', 'warn')");
    /* Delivered before the changes below: a batch publishes only the last
     * change of a key it holds, and the histories checked below need the
     * inserts and the later changes in batches of their own. */
    assert_true(pf_wait_outbox_empty(&pf, 60000));
    pf_exec(&pf, "BEGIN; UPDATE policies SET description = 'one' WHERE name = 'kept';"
                 " UPDATE policies SET description = 'two' WHERE name = 'kept'; COMMIT");
    pf_exec(&pf, "UPDATE assessment_types SET name = 'New' WHERE name = 'Old'");
    pf_exec(&pf, "DELETE FROM policies WHERE name = 'gone'");
    pf_exec(&pf, "BEGIN; SET LOCAL sysrepl.applying = 'on';" SRL_STORE_APPLYING_MARK
                 " INSERT INTO policies (name, origin, version, changed_at)"
                 " VALUES ('applied', 'other-hub', 7, 1); COMMIT");
    long long kept_version = pf_scalar(&pf, "SELECT version FROM policies WHERE name = 'kept'");
    long long new_version = pf_scalar(&pf,
                                      "SELECT version FROM assessment_types WHERE name = 'New'");
    drain_and_stop(&pf, pid);

    char h[64];
    pf_recs_t recs;
    pf_read_topic(&pf, pf.topics[SRL_KIND_POLICY], &recs);
    key_history(&recs, "rolled-back", h, sizeof(h));
    assert_string_equal(h, "");
    key_history(&recs, "applied", h, sizeof(h));
    assert_string_equal(h, "");
    key_history(&recs, "kept", h, sizeof(h));
    assert_string_equal(h, "vv"); /* the insert, then one record for the transaction */
    pf_rec_t *kept = NULL;
    for (size_t i = 0; i < recs.count; i++)
        if (strcmp(recs.items[i].key, "kept") == 0)
            kept = &recs.items[i];
    assert_non_null(kept);
    assert_int_equal(kept->version, kept_version);
    key_history(&recs, "gone", h, sizeof(h));
    assert_string_equal(h, "vt");
    int64_t gone_v = 0, gone_t = 0;
    for (size_t i = 0; i < recs.count; i++)
        if (strcmp(recs.items[i].key, "gone") == 0)
            *(recs.items[i].value ? &gone_v : &gone_t) = recs.items[i].version;
    assert_true(gone_t > gone_v);
    pf_recs_free(&recs);

    pf_read_topic(&pf, pf.topics[SRL_KIND_ASSESSMENT_TYPE], &recs);
    key_history(&recs, "Old", h, sizeof(h));
    assert_string_equal(h, "vt");
    key_history(&recs, "New", h, sizeof(h));
    assert_string_equal(h, "v");
    for (size_t i = 0; i < recs.count; i++)
        if (strcmp(recs.items[i].key, "New") == 0)
            assert_int_equal(recs.items[i].version, new_version);
    pf_recs_free(&recs);
    /* the rows applied by "a consumer" are in the store, not on the topic */
    pf_exec(&pf, "DELETE FROM policies WHERE name = 'applied'");
    pf_free(&pf);
}

/* A hub that captured through the outbox switches to the WAL with rows
 * still in the outbox and a writer running through the switch: the topics
 * end up mirroring the store, and the outbox triggers are off. */
static void wal_switch_from_outbox_loses_nothing(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-walswitch", "hub-walswitch", NULL);
    if (!wal_available(&pf)) {
        pf_free(&pf);
        skip();
    }
    pid_t pid = pf_start(&pf, (const char *const[]){"-X", "producer.capture=outbox", NULL});
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));
    pf_writer_t w = {.steps = 60, .pause_us = 50000};
    snprintf(w.dsn, sizeof(w.dsn), "%s", pf.dsn);
    pthread_t th;
    pthread_create(&th, NULL, pf_write_changes, &w);
    sleep(1);
    assert_int_equal(pf_stop(pid), 0);
    usleep(500000); /* rows pile up in the outbox */
    assert_true(pf_scalar(&pf, "SELECT count(*) FROM outbox") > 0);
    pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "reading changes from the WAL", 30000));
    pthread_join(th, NULL);
    if (w.error[0])
        fail_msg("writer: %s", w.error);
    drain_and_stop(&pf, pid);
    assert_true(pf_log_contains(&pf, "reading changes from the WAL"));
    assert_int_equal(pf_scalar(&pf, "SELECT count(*) FROM outbox"), 0);
    size_t live = pf_check_mirror(&pf);
    print_message("mirror checked after the switch: %zu live keys\n", live);
    pf_free(&pf);
}

/* The slot dropped while the producer was away (as the server does with a
 * slot past max_slot_wal_keep_size): the producer makes it again, says so,
 * and publishes the full state, so the changes made meanwhile are not
 * lost. */
static void wal_missing_slot_publishes_a_snapshot(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-walslot", "hub-walslot", NULL);
    if (!wal_available(&pf)) {
        pf_free(&pf);
        skip();
    }
    pid_t pid = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "reading changes from the WAL", 30000));
    pf_exec(&pf, "INSERT INTO policies (name) VALUES ('before'), ('deleted-meanwhile')");
    drain_and_stop(&pf, pid);
    pf_exec(&pf, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                 " WHERE database = current_database()");
    pf_exec(&pf, "INSERT INTO policies (name) VALUES ('meanwhile')");
    pf_exec(&pf, "DELETE FROM policies WHERE name = 'deleted-meanwhile'");
    pid = pf_start(&pf, (const char *const[]){"--once", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);
    if (!pf_log_contains(&pf, "lost WAL it needed")) {
        pf_dump_log(&pf, 20);
        fail_msg("the producer did not say the slot was lost");
    }
    assert_true(pf_log_contains(&pf, "snapshot done"));
    pf_check_mirror(&pf);
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_publishes_what_committed),
        cmocka_unit_test(wal_switch_from_outbox_loses_nothing),
        cmocka_unit_test(wal_missing_slot_publishes_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
