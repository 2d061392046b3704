/* Integration: an http spoke (transport = http, through a sysrepl-bridge
 * in front of the real broker) whose bridge was away longer than the
 * topics keep tombstones (delete.retention.ms) may have missed deletes:
 * while the bridge is away it says so and claims no progress
 * (caught_up_at stays), and when the bridge is back it rebuilds, so the
 * deleted content is gone (real broker compaction). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/support.h"

#include "consumer_fixture.h"
#include "horizon_fixture.h"
/* The bridge fixture's helpers are plain static functions; this test does
 * not need all of them (e.g. bf_encode_type). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bridge_fixture.h"
#pragma GCC diagnostic pop

/* Whether the file at path has a line holding both a and b. */
static bool log_has_line(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, a) && strstr(line, b);
    fclose(f);
    return found;
}

typedef struct log_wait {
    const char *path, *a, *b;
} log_wait_t;

static bool log_ready(void *arg)
{
    const log_wait_t *w = arg;
    return log_has_line(w->path, w->a, w->b);
}

/* A running http spoke whose bridge goes away (killed) while assessments
 * are deleted and their tombstones compacted away: it warns "cannot reach
 * the bridge", its caught_up_at does not move while the bridge is away,
 * and once the bridge is back (same port) it rebuilds, without a restart,
 * to exactly the hub's content and says why. (Before the fix, evidence
 * was stamped from cached state while the bridge was away, so the horizon
 * never looked crossed and the deleted rows stayed for ever.) */
static void http_spoke_bridge_down_beyond_tombstone_horizon_rebuilds(void **state)
{
    (void)state;
    fx_t fx;
    bf_bridge_t br;
    char spoke[512], logpath[512], url[128];
    unsigned seed = 11;
    /* The fixture's bridge serves replicate=assessments: assessment types
     * and assessments. */
    const unsigned kinds = 1u << SRL_KIND_ASSESSMENT_TYPE | 1u << SRL_KIND_ASSESSMENT;
    fx_model_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);

    fx_init(&fx, "horizon-http", hz_fast_cleaning);
    bf_init(&br, fx.prefix);
    bf_start(&br);
    hz_track(br.pid);
    char *instance = srl_test_unique_name("spoke-http");
    snprintf(logpath, sizeof(logpath), "/tmp/%s.log", instance);
    snprintf(url, sizeof(url), "bridge.url=http://127.0.0.1:%d", br.port);
    fx_spoke(spoke, sizeof(spoke), instance);
    for (int i = 0; i < 6; i++)
        hz_put(&fx, m, SRL_KIND_ASSESSMENT, i, &seed);
    fx_flush(&fx);
    const char *const http[] = {"-X", "transport=http",         "-X", url,
                                "-X", "bridge.api_key=" BF_KEY, "-X", "replicate=assessments",
                                NULL};
    pid_t pid = fx_consumer_start(&fx, spoke, instance, http);
    hz_track(pid);
    hz_wait_t synced = {m, spoke, kinds, NULL, pid};
    if (!srl_test_wait_until(hz_spoke_ready, &synced, 60000))
        fail_msg("the spoke did not sync the first content within 60 s; log in %s", logpath);
    /* Idle and caught up for a while: its evidence is in the store. */
    sleep(6);
    if (!srl_test_wait_until(hz_evidence_stamped, spoke, 15000))
        fail_msg("caught_up_at never stamped on every partition; log in %s", logpath);

    /* The bridge dies. */
    long long stopped_wall = hz_wall_ms();
    hz_untrack(br.pid);
    assert_int_equal(kill(br.pid, SIGKILL), 0);
    assert_int_equal(waitpid(br.pid, NULL, 0), br.pid);
    br.pid = 0;
    long long stopped_at = srl_test_now_ms();
    sleep(1);
    long long caught_up_after_stop = hz_caught_up_min_ms(spoke);
    assert_true(caught_up_after_stop > 0);

    hz_delete(&fx, m, SRL_KIND_ASSESSMENT, 1);
    hz_delete(&fx, m, SRL_KIND_ASSESSMENT, 4);
    fx_flush(&fx);
    hz_purge_tombstones(&fx, m, 1u << SRL_KIND_ASSESSMENT, &seed);
    while (srl_test_now_ms() - stopped_at < 2000 + 2000) /* well beyond delete.retention.ms */
        usleep(100000);

    /* While the bridge was away: said so, and claimed no progress. */
    log_wait_t warned = {logpath, "cannot reach the bridge", "level=warn"};
    if (!srl_test_wait_until(log_ready, &warned, 10000))
        fail_msg("no warning \"cannot reach the bridge\" in %s", logpath);
    assert_int_equal(hz_caught_up_min_ms(spoke), caught_up_after_stop);
    /* no evidence newer than the bridge's death (+1: ms rounding) */
    assert_true(hz_caught_up_max_ms(spoke) <= stopped_wall + 1);
    assert_true(hz_consumer_alive(pid));

    bf_start(&br);
    hz_track(br.pid);
    hz_wait_t mirrored = {m, spoke, kinds, fx.topics[SRL_KIND_ASSESSMENT], pid};
    bool same = srl_test_wait_until(hz_spoke_ready, &mirrored, 60000);
    assert_int_equal(hz_rows_with_key(spoke, SRL_KIND_ASSESSMENT, m->key[SRL_KIND_ASSESSMENT][1]),
                     0);
    assert_int_equal(hz_rows_with_key(spoke, SRL_KIND_ASSESSMENT, m->key[SRL_KIND_ASSESSMENT][4]),
                     0);
    if (!same) /* says which kind differs, with the diff files */
        fx_model_check(m, spoke, kinds);
    assert_int_equal(fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments"),
                     6 - 2 + 30);
    assert_true(hz_rebuild_reasons(spoke, fx.topics[SRL_KIND_ASSESSMENT]) >= 1);

    assert_int_equal(kill(pid, SIGTERM), 0);
    hz_untrack(pid); /* fx_consumer_wait reaps it, or kills it and fails */
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    hz_untrack(br.pid);
    bf_stop(&br);
    fx_model_free(m);
    free(m);
    free(instance);
    fx_free(&fx);
    srl_test_drop_db(spoke);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(http_spoke_bridge_down_beyond_tombstone_horizon_rebuilds,
                                  hz_kill_children),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
