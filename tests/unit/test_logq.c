/* test_logq.c - the replication-log queue (common/logq.c): which lines
 * the sink keeps, and that a full queue still reports pending lines. The
 * INSERTs themselves are checked against a real store by
 * test_producer_publish (replication_log rows of the producer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sysrepl/logq.h"

/* Another component's lines, lines below the level and the periodic stats
 * line are not queued; the component's own events are. */
static void logq_sink_keeps_only_the_components_events(void **state)
{
    (void)state;
    srl_logq_t *q = srl_logq_new("producer", SRL_LOG_INFO);
    assert_non_null(q);
    srl_logq_sink(q, SRL_LOG_ERROR, "consumer", "other", "");
    srl_logq_sink(q, SRL_LOG_WARN, "rdkafka", "chatter", "");
    srl_logq_sink(q, SRL_LOG_DEBUG, "producer", "detail", "");
    srl_logq_sink(q, SRL_LOG_INFO, "producer", "stats", "delivered=1");
    assert_false(srl_logq_pending(q));
    srl_logq_sink(q, SRL_LOG_INFO, "producer", "starting", "instance=x");
    assert_true(srl_logq_pending(q));
    srl_logq_free(q);
}

/* Lines beyond the queue's room are counted: the queue stays pending. */
static void logq_sink_full_queue_stays_pending(void **state)
{
    (void)state;
    srl_logq_t *q = srl_logq_new("consumer", SRL_LOG_DEBUG);
    assert_non_null(q);
    for (int i = 0; i < SRL_LOGQ_MAX + 10; i++)
        srl_logq_sink(q, SRL_LOG_DEBUG, "consumer", "event", NULL);
    assert_true(srl_logq_pending(q));
    srl_logq_free(q);
}

/* The component is written into SQL as a literal: only plain words. */
static void logq_new_rejects_a_component_that_is_not_a_word(void **state)
{
    (void)state;
    assert_null(srl_logq_new("producer'); DROP TABLE x; --", SRL_LOG_INFO));
    assert_null(srl_logq_new("", SRL_LOG_INFO));
    srl_logq_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logq_sink_keeps_only_the_components_events),
        cmocka_unit_test(logq_sink_full_queue_stays_pending),
        cmocka_unit_test(logq_new_rejects_a_component_that_is_not_a_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
