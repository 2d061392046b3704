/*
 * test_producer_refuse.c - what the producer refuses at start, and the one
 * producer per store: a topic whose cleanup.policy would lose state; a
 * min.insync.replicas above the replication factor (and the warning on
 * topics with one replica); topics
 * another hub writes (both origins named); a second producer on one store
 * waits for the lock and takes over when the first dies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"
#include "integration/producer_fixture.h"

static void create_topic(pf_t *pf, const char *topic, const char *policy)
{
    char eb[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", pf->kafka, eb, sizeof(eb));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    assert_non_null(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, eb, sizeof(eb));
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", policy);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    assert_non_null(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    assert_int_equal(n, 1);
    assert_int_equal(rd_kafka_topic_result_error(tr[0]), 0);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

/* An existing content topic with cleanup.policy=delete: exit 2, and the
 * message names the topic and the policy. */
static void producer_refuses_topic_with_delete_policy(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-refuse", "hub-refuse", NULL);
    create_topic(&pf, pf.topics[SRL_KIND_POLICY], "delete");
    pid_t pid = pf_start(&pf, NULL);
    int rc = pf_wait_exit(pid, 60000);
    if (rc != 2)
        pf_dump_log(&pf, 20);
    assert_int_equal(rc, 2);
    char needle[512];
    snprintf(needle, sizeof(needle), "topic %s has cleanup.policy=delete",
             pf.topics[SRL_KIND_POLICY]);
    assert_true(pf_log_contains(&pf, needle));
    pf_free(&pf);
}

/* topic.min_insync_replicas above topic.replication_factor: exit 2 at
 * start, the message names both keys, and no topic was created. */
static void producer_refuses_min_insync_above_replication_factor(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-minisr", "hub-minisr", NULL);
    pid_t pid = pf_start(&pf, (const char *const[]){"-X", "topic.replication_factor=1", "-X",
                                                    "topic.min_insync_replicas=2", NULL});
    int rc = pf_wait_exit(pid, 60000);
    if (rc != 2)
        pf_dump_log(&pf, 20);
    assert_int_equal(rc, 2);
    assert_true(pf_log_contains(&pf, "topic.min_insync_replicas = 2 is greater than "
                                     "topic.replication_factor = 1: no write could ever be "
                                     "acknowledged"));
    pf_free(&pf);
}

/* A hub on topics with one replica says so at start, naming each topic. */
static void producer_warns_on_single_replica_topics(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-rf1", "hub-rf1", NULL);
    pid_t pid = pf_start(&pf,
                         (const char *const[]){"--once", "-X", "topic.replication_factor=1", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);
    char needle[512];
    snprintf(needle, sizeof(needle), "msg=\"topic has a single replica\" topic=%s replicas=1",
             pf.topics[SRL_KIND_POLICY]);
    if (!pf_log_contains(&pf, needle))
        pf_dump_log(&pf, 20);
    assert_true(pf_log_contains(&pf, needle));
    pf_free(&pf);
}

/* A second hub (another instance id) on the same prefix is refused with
 * exit 2, naming both origins; the first hub's records are untouched. */
static void producer_refuses_topics_of_another_hub(void **state)
{
    (void)state;
    pf_t a, b;
    pf_init(&a, "prod-twohubs", "hub-a", NULL);
    pf_exec(&a, "INSERT INTO policies (name) VALUES ('Global'), ('nuget.org')");
    pid_t pid = pf_start(&a, (const char *const[]){"--once", NULL});
    assert_int_equal(pf_wait_exit(pid, 60000), 0);

    pf_init(&b, NULL, "hub-b", a.prefix);
    pid = pf_start(&b, NULL);
    int rc = pf_wait_exit(pid, 60000);
    if (rc != 2)
        pf_dump_log(&b, 20);
    assert_int_equal(rc, 2);
    assert_true(pf_log_contains(&b, "has records from origin \"hub-a\"; this hub is \"hub-b\": "
                                    "two hubs must not write the same topics"));
    assert_int_equal(pf_check_mirror(&a), 2);
    pf_free(&b);
    pf_free(&a);
}

/* Two producers on one store: the second waits for the lock and, when the
 * first is killed, takes over and drains what came in meanwhile. */
static void producer_second_instance_waits_then_takes_over(void **state)
{
    (void)state;
    pf_t pf;
    pf_init(&pf, "prod-lock", "hub-lock", NULL);
    pid_t first = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "snapshot done", 30000));
    pid_t second = pf_start(&pf, NULL);
    assert_true(pf_wait_log(&pf, "waiting for the producer lock held by pid", 30000));
    kill(first, SIGKILL);
    assert_int_equal(pf_wait_exit(first, 10000), 128 + SIGKILL);
    pf_exec(&pf, "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,"
                 " scope_kind, assessed_at) SELECT 'CVE-2024-' || (10000 + g), 'Blocked',"
                 " 'global', 0 FROM generate_series(1, 500) g");
    assert_true(pf_wait_outbox_empty(&pf, 30000));
    assert_int_equal(pf_stop(second), 0);
    assert_int_equal(pf_check_mirror(&pf), 500);
    pf_free(&pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_refuses_topic_with_delete_policy),
        cmocka_unit_test(producer_refuses_min_insync_above_replication_factor),
        cmocka_unit_test(producer_warns_on_single_replica_topics),
        cmocka_unit_test(producer_refuses_topics_of_another_hub),
        cmocka_unit_test(producer_second_instance_waits_then_takes_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
