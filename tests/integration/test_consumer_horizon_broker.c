/* Integration: the tombstone horizon of a spoke that keeps running while the
 * broker goes away (issue "A spoke keeps deleted content forever when its
 * consumer falls behind the tombstone horizon without restarting").
 *
 * A running consumer may only claim "caught up" on fresh evidence from the
 * broker; before the fix it stamped consumer_offsets.caught_up_at from
 * librdkafka's cached watermarks even while the broker was unreachable, so
 * a spoke cut off for longer than delete.retention.ms never rebuilt and
 * kept the deleted content.
 *
 * These tests stop a broker, or cut a spoke off from it, so they run on a
 * PRIVATE one: deploy/local/kafka with its own state folder and free ports
 * (the jars come from the shared SRL_CACHE_DIR, as in tests/e2e/chaos_lib.sh)
 * and a second listener (SRL_KAFKA_EXTRA_LISTENER) that advertises the port
 * of a TCP proxy run by the test. The hub side and the tests' own clients use
 * the main listener; the spoke bootstraps through the proxy and, since Kafka
 * clients reconnect to the advertised address, all its traffic goes through
 * it: killing the proxy cuts the spoke off, and only the spoke. The stores
 * live on the shared PostgreSQL (SRL_TEST_PG_DSN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "support/support.h"

#include "consumer_fixture.h"

#define RETENTION_MS 2000 /* delete.retention.ms of the topics of test 2 */

/* ---- the private broker ---- */

typedef struct broker {
    char dir[256];      /* its SRL_STATE_DIR, under /var/tmp */
    char env[2048];     /* environment prefix for deploy/local/kafka */
    char script[1024];  /* deploy/local/kafka */
    char bootstrap[64]; /* main listener: the hub side, the tests' clients */
    int spoke_bind;     /* the SPOKE listener's own port */
    int spoke_port;     /* what SPOKE advertises: the proxy's port */
} broker_t;

static broker_t broker;

/* The children of the running test, so that a failure (cmocka leaves the
 * test function at the failed assertion) does not leave them running: a
 * consumer that outlives the test holds ctest's output pipe open. */
static pid_t running_consumer, running_proxy;

/* A TCP port on 127.0.0.1 nothing is bound to, not handed out before. */
static int free_port(void)
{
    static int given[16];
    static int ngiven;
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = 20000 + (int)(random() % 12000), taken = 0;
        for (int i = 0; i < ngiven; i++)
            taken |= given[i] == port;
        if (taken)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok && ngiven < 16) {
            given[ngiven++] = port;
            return port;
        }
    }
    return -1;
}

/* deploy/local/kafka VERB on the private broker; its output goes to
 * <dir>/ctl.log (shown on failure). Returns whether it exited 0. */
static bool broker_ctl(const char *verb)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof(cmd), "%s '%s' %s >>'%s/ctl.log' 2>&1", broker.env, broker.script,
                     verb, broker.dir);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return false;
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "deploy/local/kafka %s failed (status %d); %s/ctl.log:\n", verb, rc,
                broker.dir);
        snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/ctl.log' >&2", broker.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no ctl.log)\n");
    }
    return rc == 0;
}

/* Group setup: start the private broker, and point every helper of the
 * fixture (SRL_TEST_KAFKA) at its main listener. Without the shared
 * services' variables it does nothing: the tests then skip. */
static int broker_setup(void **state)
{
    (void)state;
    if (!getenv("SRL_TEST_KAFKA") || !getenv("SRL_TEST_PG_DSN"))
        return 0;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    /* ctest sets SRL_SOURCE_DIR; the build defines it too (run by hand). */
    const char *root = getenv("SRL_SOURCE_DIR");
    if (!root || !*root)
        root = SRL_SOURCE_DIR;
    int n = snprintf(broker.script, sizeof(broker.script), "%s/deploy/local/kafka", root);
    if (n < 0 || (size_t)n >= sizeof(broker.script))
        return -1;
    /* The shared jar cache, decided as chaos_lib.sh does. */
    char cache[1024];
    const char *c = getenv("SRL_CACHE_DIR"), *s = getenv("SRL_STATE_DIR");
    if (c && *c)
        n = snprintf(cache, sizeof(cache), "%s", c);
    else if (s && *s)
        n = snprintf(cache, sizeof(cache), "%s/cache", s);
    else
        n = snprintf(cache, sizeof(cache), "%s/.state/cache", root);
    if (n < 0 || (size_t)n >= sizeof(cache))
        return -1;
    snprintf(broker.dir, sizeof(broker.dir), "/var/tmp/sysrepl-horizon-broker.XXXXXX");
    if (!mkdtemp(broker.dir))
        return -1;
    int port = free_port(), controller = free_port();
    broker.spoke_bind = free_port();
    broker.spoke_port = free_port();
    if (port < 0 || controller < 0 || broker.spoke_bind < 0 || broker.spoke_port < 0)
        return -1;
    n = snprintf(broker.env, sizeof(broker.env),
                 "SRL_STATE_DIR='%s/state' SRL_CACHE_DIR='%s' SRL_KAFKA_PORT=%d"
                 " SRL_KAFKA_CONTROLLER_PORT=%d SRL_KAFKA_EXTRA_LISTENER=SPOKE:%d:%d",
                 broker.dir, cache, port, controller, broker.spoke_bind, broker.spoke_port);
    if (n < 0 || (size_t)n >= sizeof(broker.env))
        return -1;
    snprintf(broker.bootstrap, sizeof(broker.bootstrap), "127.0.0.1:%d", port);
    long long t0 = srl_test_now_ms();
    if (!broker_ctl("start"))
        return -1;
    print_message("private broker on %s (SPOKE listener %d, advertised %d) ready in %lld ms, %s\n",
                  broker.bootstrap, broker.spoke_bind, broker.spoke_port, srl_test_now_ms() - t0,
                  broker.dir);
    setenv("SRL_TEST_KAFKA", broker.bootstrap, 1);
    return 0;
}

static int broker_teardown(void **state)
{
    (void)state;
    if (!broker.dir[0])
        return 0;
    broker_ctl("stop");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", broker.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", broker.dir);
    return 0;
}

/* ---- the proxy between the spoke and the SPOKE listener ---- */

#define PROXY_PAIRS 64

/* The proxy's loop (child process): fd[2k] and fd[2k+1] are the two ends
 * of connection k; whatever one end sends goes to the other. Only system
 * calls: the parent had threads (librdkafka) when it forked. */
static void proxy_loop(int lfd, int target)
{
    static int fd[2 * PROXY_PAIRS];
    static struct pollfd pf[1 + 2 * PROXY_PAIRS];
    static char buf[65536];
    for (int i = 0; i < 2 * PROXY_PAIRS; i++)
        fd[i] = -1;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < 2 * PROXY_PAIRS; i++)
            pf[1 + i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
        if (poll(pf, 1 + 2 * PROXY_PAIRS, -1) < 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int down = accept(lfd, NULL, NULL), up = socket(AF_INET, SOCK_STREAM, 0);
            int k = 0;
            while (k < PROXY_PAIRS && fd[2 * k] >= 0)
                k++;
            if (down >= 0 && up >= 0 && k < PROXY_PAIRS &&
                connect(up, (struct sockaddr *)&to, sizeof(to)) == 0) {
                fd[2 * k] = down;
                fd[2 * k + 1] = up;
            } else {
                if (down >= 0)
                    close(down);
                if (up >= 0)
                    close(up);
            }
        }
        for (int i = 0; i < 2 * PROXY_PAIRS; i++) {
            if (fd[i] < 0 || !(pf[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fd[i], buf, sizeof(buf)), off = 0;
            while (n > 0 && off < n) {
                ssize_t w = write(fd[i ^ 1], buf + off, (size_t)(n - off));
                if (w <= 0)
                    break;
                off += w;
            }
            if (n <= 0 || off < n) { /* either end gone: drop the connection */
                close(fd[i]);
                close(fd[i ^ 1]);
                fd[i] = fd[i ^ 1] = -1;
            }
        }
    }
}

/* Start a proxy on 127.0.0.1:port to 127.0.0.1:target in a child process.
 * It listens before this returns. kill(pid, SIGKILL) is the cut: the
 * kernel closes the listener and every connection at once. */
static pid_t proxy_start(int port, int target)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    assert_true(lfd >= 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0)
        fail_msg("proxy: cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        signal(SIGPIPE, SIG_IGN);
        proxy_loop(lfd, target);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void proxy_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    running_proxy = 0;
}

/* ---- what a failed test leaves behind ---- */

/* Per-test teardown: end the test's children, and bring the broker back if
 * the test stopped it. */
static int test_teardown(void **state)
{
    (void)state;
    if (running_consumer > 0) {
        kill(running_consumer, SIGKILL);
        waitpid(running_consumer, NULL, 0);
    }
    if (running_proxy > 0) {
        kill(running_proxy, SIGKILL);
        waitpid(running_proxy, NULL, 0);
    }
    running_consumer = running_proxy = 0;
    if (broker.dir[0] && !broker_ctl("start"))
        return -1;
    return 0;
}

/* ---- helpers ---- */

/* The spoke's oldest caught_up_at in ms since the epoch (0: none yet). */
static long long caught_up_at(const char *dsn)
{
    return fx_query_int(dsn, "SELECT coalesce((extract(epoch FROM min(caught_up_at)) * 1000)"
                             "::bigint, 0) FROM sysrepl.consumer_offsets");
}

/* Waits until the spoke's caught_up_at is later than after (and not 0);
 * returns it, or 0 after timeout_ms. */
static long long wait_caught_up_after(const char *dsn, long long after, int timeout_ms)
{
    long long end = srl_test_now_ms() + timeout_ms;
    do {
        long long at = caught_up_at(dsn);
        if (at > after)
            return at;
        usleep(250000);
    } while (srl_test_now_ms() < end);
    return 0;
}

/* Whether the consumer's log (/tmp/<instance>.log) has text. */
static bool log_has(const char *instance, const char *text)
{
    char path[512], line[8192];
    snprintf(path, sizeof(path), "/tmp/%s.log", instance);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

static bool still_running(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

static void stop_consumer(pid_t pid)
{
    kill(pid, SIGTERM);
    assert_int_equal(fx_consumer_wait(pid, 30000), 0);
    running_consumer = 0;
}

/* Write entity i of kind, and follow it in the model (key slot i). */
static void put_entity(fx_t *fx, fx_model_t *m, srl_kind_t kind, int i, unsigned *seed)
{
    srl_entity_t e;
    char key[512];
    fx_make(kind, i, seed, &e);
    assert_true(srl_key_build(&e, key, sizeof(key)) > 0);
    if (!m->key[kind][i])
        m->key[kind][i] = strdup(key);
    if (m->count[kind] <= i)
        m->count[kind] = i + 1;
    m->version[kind][i] = fx_put(fx, &e);
    m->deleted[kind][i] = false;
    srl_entity_clear(&e);
}

static void delete_entity(fx_t *fx, fx_model_t *m, srl_kind_t kind, int i)
{
    m->version[kind][i] = fx_delete(fx, kind, m->key[kind][i]);
    m->deleted[kind][i] = true;
}

/* ---- the tests ---- */

/* With the broker down, a running consumer's caught_up_at stays where the
 * last answered probe put it: nothing but the broker's own answer counts as
 * evidence (the old consumer stamped it from librdkafka's cached watermark
 * every 5 s while idle, broker or not). It says so in its log, and once the
 * broker answers again caught_up_at moves again: frozen, not stuck. */
static void consumer_caught_up_at_frozen_while_broker_down(void **state)
{
    (void)state;
    srl_test_pg_dsn();
    srl_test_kafka();
    fx_t fx;
    char spoke[512];
    unsigned seed = 11;
    fx_init(&fx, "hzb-down", NULL);
    char *instance = srl_test_unique_name("hzb-down-spoke");
    fx_spoke(spoke, sizeof(spoke), instance);
    for (int i = 0; i < 5; i++) {
        srl_entity_t a, p;
        fx_make(SRL_KIND_ASSESSMENT, i, &seed, &a);
        fx_make(SRL_KIND_POLICY, i, &seed, &p);
        fx_put(&fx, &a);
        fx_put(&fx, &p);
        srl_entity_clear(&a);
        srl_entity_clear(&p);
    }
    fx_flush(&fx);
    pid_t pid = running_consumer = fx_consumer_start(&fx, spoke, instance, NULL);

    /* Synced, then one more answered probe (every 5 s) moved it. */
    long long first = wait_caught_up_after(spoke, 0, 60000);
    assert_true(first > 0);
    long long live = wait_caught_up_after(spoke, first, 15000);
    if (live == 0)
        fail_msg("caught_up_at did not advance within 15 s while the broker was up (stays %lld)",
                 first);

    assert_true(broker_ctl("stop"));
    /* A probe answered just before the broker went is still committed
     * within a loop turn (poll 100 ms; a failing probe gives up after 2 s). */
    sleep(3);
    long long frozen = caught_up_at(spoke);
    sleep(15);
    long long later = caught_up_at(spoke);
    print_message("broker down: caught_up_at %lld, 15 s later %lld\n", frozen, later);
    assert_true(still_running(pid));
    if (later != frozen)
        fail_msg("caught_up_at advanced by %lld ms while the broker was down", later - frozen);
    /* Asserted last, so a run also shows whether it recovers. */
    bool warned = log_has(instance, "cannot reach the broker, not caught up");

    assert_true(broker_ctl("start"));
    long long back = wait_caught_up_after(spoke, frozen, 20000);
    if (back == 0)
        fail_msg("caught_up_at did not advance within 20 s of the broker's return (stays %lld)",
                 frozen);
    if (!warned)
        fail_msg("no \"cannot reach the broker, not caught up\" in /tmp/%s.log while the broker"
                 " was down",
                 instance);
    assert_true(log_has(instance, "the broker reachable again"));

    stop_consumer(pid);
    fx_free(&fx);
    srl_test_drop_db(spoke);
    free(instance);
}

/* A running spoke cut off from the broker (and only it: the hub keeps
 * writing and the broker keeps compacting) for longer than
 * delete.retention.ms rebuilds before it applies anything once it is back,
 * so deletes whose tombstones were purged meanwhile still reach it; it
 * ends an exact mirror, and replication_log says why it rebuilt. The old
 * consumer took its cached watermarks as "caught up" while cut off and
 * never looked at the horizon while running: it kept the deleted rows. */
static void consumer_beyond_horizon_while_broker_unreachable_rebuilds(void **state)
{
    (void)state;
    srl_test_pg_dsn();
    srl_test_kafka();
    fx_t fx;
    char spoke[512], retention[32];
    unsigned seed = 7;
    snprintf(retention, sizeof(retention), "%d", RETENTION_MS);
    const char *const fast_cleaning[] = {
        "delete.retention.ms",       retention, "segment.ms", "100",
        "min.cleanable.dirty.ratio", "0.01",    NULL};
    fx_model_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    fx_init(&fx, "hzb-cut", fast_cleaning);
    char *instance = srl_test_unique_name("hzb-cut-spoke");
    fx_spoke(spoke, sizeof(spoke), instance);
    for (int i = 0; i < 6; i++) {
        put_entity(&fx, m, SRL_KIND_ASSESSMENT, i, &seed);
        put_entity(&fx, m, SRL_KIND_POLICY, i, &seed);
    }
    fx_flush(&fx);

    pid_t proxy = running_proxy = proxy_start(broker.spoke_port, broker.spoke_bind);
    char via_proxy[64];
    snprintf(via_proxy, sizeof(via_proxy), "kafka.bootstrap.servers=127.0.0.1:%d",
             broker.spoke_port);
    const char *const spoke_args[] = {"-X", via_proxy, NULL};
    pid_t pid = running_consumer = fx_consumer_start(&fx, spoke, instance, spoke_args);
    assert_true(wait_caught_up_after(spoke, 0, 60000) > 0);
    fx_model_check(m, spoke, 1u << SRL_KIND_ASSESSMENT | 1u << SRL_KIND_POLICY);

    /* Cut off. The hub deletes, then writes until the broker has purged
     * those tombstones. */
    proxy_kill(proxy);
    long long cut = srl_test_now_ms();
    delete_entity(&fx, m, SRL_KIND_ASSESSMENT, 1);
    delete_entity(&fx, m, SRL_KIND_ASSESSMENT, 4);
    delete_entity(&fx, m, SRL_KIND_POLICY, 2);
    fx_flush(&fx);
    bool gone = false;
    int filler = 100;
    while (!gone && srl_test_now_ms() - cut < 60000) {
        for (int i = 0; i < 20; i++, filler++) {
            put_entity(&fx, m, SRL_KIND_ASSESSMENT, filler, &seed);
            put_entity(&fx, m, SRL_KIND_POLICY, filler, &seed);
        }
        fx_flush(&fx);
        usleep(500000);
        gone = !fx_topic_has_key(&fx, fx.topics[SRL_KIND_ASSESSMENT],
                                 m->key[SRL_KIND_ASSESSMENT][1]) &&
               !fx_topic_has_key(&fx, fx.topics[SRL_KIND_ASSESSMENT],
                                 m->key[SRL_KIND_ASSESSMENT][4]) &&
               !fx_topic_has_key(&fx, fx.topics[SRL_KIND_POLICY], m->key[SRL_KIND_POLICY][2]);
    }
    print_message("tombstones purged by the broker %lld ms after the cut\n",
                  srl_test_now_ms() - cut);
    assert_true(gone);
    /* Well beyond the horizon, whatever the purge took. */
    while (srl_test_now_ms() - cut < 2 * RETENTION_MS)
        usleep(100000);
    assert_true(still_running(pid));
    /* The proof that the proxy cut it off; asserted last, so that a run
     * also shows what the spoke did once back. A probe runs at least every
     * 5 s and a failing one gives up after 2 s: the warning may come up to
     * 7 s after the cut, later than the purge above (seen at 5.4 s), so
     * wait for it, still cut off, up to 15 s after the cut. */
    bool warned = log_has(instance, "cannot reach the broker, not caught up");
    while (!warned && srl_test_now_ms() - cut < 15000) {
        usleep(200000);
        warned = log_has(instance, "cannot reach the broker, not caught up");
    }

    proxy = running_proxy = proxy_start(broker.spoke_port, broker.spoke_bind);
    long long back = srl_test_now_ms();
    const char *reason = "SELECT count(*) FROM sysrepl.replication_log WHERE message LIKE"
                         " 'rebuilding: last caught up % ago, beyond"
                         " delete.retention.ms=2.0s of topic %'";
    long long live = 0;
    int want = filler - 100 + 6 - 2;
    while (srl_test_now_ms() - back < 45000) {
        live = fx_query_int(spoke, "SELECT count(*) FROM vulnerability_assessments");
        if (live == want && fx_query_int(spoke, reason) >= 2)
            break;
        usleep(250000);
    }
    print_message("spoke back for %lld ms: %lld assessments (want %d), rebuild reasons %lld\n",
                  srl_test_now_ms() - back, live, want, fx_query_int(spoke, reason));
    /* The keys deleted while it was away are gone, everything else is the
     * hub's latest version. */
    fx_model_check(m, spoke, 1u << SRL_KIND_ASSESSMENT | 1u << SRL_KIND_POLICY);
    /* Both topics that lost tombstones were rebuilt, and it said why. */
    char sql[600];
    for (int k = SRL_KIND_ASSESSMENT; k <= SRL_KIND_POLICY; k++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sysrepl.replication_log WHERE message LIKE 'rebuilding: last"
                 " caught up %% ago, beyond delete.retention.ms=2.0s of topic %s topic=%%'",
                 fx.topics[k]);
        if (fx_query_int(spoke, sql) < 1)
            fail_msg("no rebuild reason for %s in replication_log", fx.topics[k]);
    }
    assert_true(still_running(pid));
    if (!warned)
        fail_msg("no \"cannot reach the broker, not caught up\" in /tmp/%s.log while cut off",
                 instance);

    stop_consumer(pid);
    proxy_kill(proxy);
    fx_model_free(m);
    free(m);
    fx_free(&fx);
    srl_test_drop_db(spoke);
    free(instance);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(consumer_caught_up_at_frozen_while_broker_down, test_teardown),
        cmocka_unit_test_teardown(consumer_beyond_horizon_while_broker_unreachable_rebuilds,
                                  test_teardown),
    };
    return cmocka_run_group_tests(tests, broker_setup, broker_teardown);
}
