/*
 * bench_bridge.c - sysrepl-bridge: (1) records/s to one client reading a
 * rebuild (every record from offset 0) through the bridge with the http
 * source, next to the same client reading Kafka directly with the kafka
 * source (the reference point); (2) idle long polls held at once and the
 * bridge's RSS while it holds them, with the latency of other requests
 * meanwhile.
 *
 * Needs a broker (--kafka or SRL_TEST_KAFKA) and the built bridge
 * (--bridge, default <dir of this binary>/../bridge/sysrepl-bridge).
 *   bench_bridge [--records N] [--longpolls M] [--kafka HOST:PORT] [--bridge PATH]
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "source.h"
#include "source_http.h"
#include "sysrepl/clock.h"
#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/kafka.h"

static double now_s(void)
{
    return (double)srl_clock_mono_us() / 1e6;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_bridge: %s: %s\n", what, why);
    exit(1);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    return ntohs(a.sin_port);
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static long http_get(int port, const char *path, double *secs)
{
    CURL *c = curl_easy_init();
    char url[512];
    FILE *devnull = fopen("/dev/null", "w");
    struct curl_slist *h = curl_slist_append(NULL, "X-ApiKey: bench-key");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    double t = now_s();
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    if (secs)
        *secs = now_s() - t;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    fclose(devnull);
    return st;
}

/* Read every partition from 0 to its end; returns records read. */
static size_t read_all(srl_source_t *src, const char *topic, int parts, size_t max)
{
    char err[512];
    srl_source_pos_t pos[64];
    srl_source_batch_t batch = {0};
    size_t total = 0;
    bool reached[64] = {false}; /* a source may say eof once per reaching the end */
    for (int p = 0; p < parts; p++)
        pos[p] = (srl_source_pos_t){topic, SRL_KIND_ASSESSMENT_TYPE, p, 0};
    for (;;) {
        srl_source_rc_t rc = src->ops->fetch(src, pos, (size_t)parts, max, 100, &batch, err,
                                             sizeof(err));
        if (rc != SRL_SOURCE_OK)
            die("fetch", err);
        for (size_t i = 0; i < batch.count; i++) {
            const srl_record_t *r = &batch.records[i];
            pos[r->partition].offset = r->offset + 1;
        }
        total += batch.count;
        bool done = true;
        for (int p = 0; p < parts; p++) {
            if (batch.eof[p] && batch.high[p] > pos[p].offset)
                pos[p].offset = batch.high[p];
            reached[p] |= batch.eof[p];
            done &= reached[p];
        }
        src->ops->release(src, &batch);
        if (done)
            break;
    }
    srl_source_batch_free(&batch);
    return total;
}

int main(int argc, char **argv)
{
    long records = 200000, longpolls = 2000;
    const char *kafka = getenv("SRL_TEST_KAFKA") ? getenv("SRL_TEST_KAFKA") : "127.0.0.1:59092";
    char bridge_bin[1024], err[512], kv[512];
    char *self = strdup(argv[0]);
    snprintf(bridge_bin, sizeof(bridge_bin), "%s/../bridge/sysrepl-bridge", dirname(self));
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--records") == 0)
            records = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--longpolls") == 0)
            longpolls = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--kafka") == 0)
            kafka = argv[i + 1];
        else if (strcmp(argv[i], "--bridge") == 0)
            snprintf(bridge_bin, sizeof(bridge_bin), "%s", argv[i + 1]);
        else
            die("usage",
                "bench_bridge [--records N] [--longpolls M] [--kafka H:P] [--bridge PATH]");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    char prefix[128], topic[256];
    snprintf(prefix, sizeof(prefix), "bench-bridge-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(topic, sizeof(topic), "%s.assessment-types", prefix);
    const int parts = 3;

    /* 1. the topic, filled straight through librdkafka */
    srl_registry_t *reg = srl_registry_new(err, sizeof(err));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kafka, err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof(err));
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    srl_topic_settings_t ts = {.partitions = parts,
                               .replication_factor = 1,
                               .min_insync_replicas = 1,
                               .segment_ms = 3600000,
                               .delete_retention_ms = 86400000};
    const char *topics[1] = {topic};
    for (int tries = 0; !srl_kafka_ensure_topics(rk, &ts, topics, NULL, 1, 15000, err, sizeof(err));
         tries++) {
        if (tries > 20)
            die("creating the topic", err);
        usleep(300000);
    }
    size_t value_bytes = 0;
    for (long i = 0; i < records; i++) {
        srl_entity_t e;
        memset(&e, 0, sizeof(e));
        char name[64], ver[24];
        snprintf(name, sizeof(name), "bench-type-%07ld", i);
        e.kind = SRL_KIND_ASSESSMENT_TYPE;
        e.u.type.name = strdup(name);
        e.u.type.description = strdup("a benchmark assessment type with a description");
        e.u.type.severity_class = SRL_SEVERITY_CLASS_WARN;
        e.u.type.emitted_severity = SRL_SEVERITY_UNSET;
        e.u.type.auto_rule.cvss_max = 10.0;
        e.u.type.meta.origin = strdup("bench-hub");
        e.u.type.meta.version = i + 1;
        e.u.type.meta.changed_at = 1764158400000LL;
        uint8_t *v;
        size_t vl;
        if (!srl_codec_encode(reg, &e, &v, &vl, err, sizeof(err)))
            die("encode", err);
        value_bytes += vl;
        snprintf(ver, sizeof(ver), "%ld", i + 1);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, SRL_HDR_VERSION, -1, ver, -1);
        rd_kafka_header_add(h, SRL_HDR_ORIGIN, -1, "bench-hub", -1);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(name, strlen(name)),
                                 RD_KAFKA_V_VALUE(v, vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_HEADERS(h),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        free(v);
        srl_entity_clear(&e);
    }
    rd_kafka_flush(rk, 60000);
    printf("topic %s: %ld records in %d partitions, values %.0f bytes on average\n", topic, records,
           parts, (double)value_bytes / (double)records);

    /* 2. the bridge (started after the records: a rebuild reads below its window) */
    char dir[] = "/tmp/srl-bench-bridge-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    char keys[300], cmd[1400];
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(cmd, sizeof(cmd), "%s --hash-key bench-key --name bench --perms pull,push > %s",
             bridge_bin, keys);
    if (system(cmd) != 0)
        die("hashing the key", bridge_bin);
    int port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        char a[6][400];
        snprintf(a[0], sizeof(a[0]), "bridge.keys_file=%s", keys);
        snprintf(a[1], sizeof(a[1]), "kafka.bootstrap.servers=%s", kafka);
        snprintf(a[2], sizeof(a[2]), "topic.prefix=%s", prefix);
        snprintf(a[3], sizeof(a[3]), "bridge.port=%d", port);
        snprintf(a[4], sizeof(a[4]), "bridge.max_connections=%ld", longpolls + 100);
        snprintf(a[5], sizeof(a[5]), "%s/bridge.log", dir);
        if (!freopen(a[5], "w", stderr))
            _exit(126);
        execl(bridge_bin, bridge_bin, "-X", "instance.id=bench", "-X", a[0], "-X", a[1], "-X", a[2],
              "-X", a[3], "-X", a[4], "-X", "bridge.plain_http=true", "-X", "replicate=assessments",
              "-X", "topic.partitions=3", "-X", "bridge.long_poll_max_ms=120s", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; http_get(port, "/health", NULL) != 200; i++) {
        if (i > 300)
            die("bridge", "not healthy within 60 s");
        usleep(200000);
    }
    long rss_idle = rss_kb(pid);

    /* 3. rebuild: Kafka directly, then through the bridge */
    srl_config_t *kc = srl_config_new(SRL_PROG_CONSUMER);
    snprintf(kv, sizeof(kv), "kafka.bootstrap.servers=%s", kafka);
    srl_config_set_override(kc, kv, err, sizeof(err));
    srl_source_t *ks = srl_source_kafka_new(kc, "bench", err, sizeof(err));
    if (!ks)
        die("kafka source", err);
    double t = now_s();
    size_t nk = read_all(ks, topic, parts, 5000);
    double kafka_s = now_s() - t;
    ks->ops->close(ks);

    srl_config_t *hc = srl_config_new(SRL_PROG_CONSUMER);
    snprintf(kv, sizeof(kv), "bridge.url=http://127.0.0.1:%d", port);
    srl_config_set_override(hc, kv, err, sizeof(err));
    srl_config_set_override(hc, "bridge.api_key=bench-key", err, sizeof(err));
    snprintf(kv, sizeof(kv), "topic.prefix=%s", prefix);
    srl_config_set_override(hc, kv, err, sizeof(err));
    srl_source_t *hs = srl_source_http_new(hc, err, sizeof(err));
    if (!hs)
        die("http source", err);
    t = now_s();
    size_t nh = read_all(hs, topic, parts, 5000);
    double http_s = now_s() - t;
    long rss_after_rebuild = rss_kb(pid);
    hs->ops->close(hs);
    if (nk != (size_t)records || nh != (size_t)records)
        fprintf(stderr, "bench_bridge: read %zu (kafka) and %zu (http) of %ld records\n", nk, nh,
                records);
    printf("rebuild, one client, batches of 5000:\n");
    printf("  kafka source (direct)  %8.0f records/s  (%zu in %.2f s)\n", nk / kafka_s, nk,
           kafka_s);
    printf("  http source (bridge)   %8.0f records/s  (%zu in %.2f s)  = %.2fx of direct\n",
           nh / http_s, nh, http_s, (nh / http_s) / (nk / kafka_s));

    /* 4. idle long polls */
    char req[512];
    snprintf(
        req, sizeof(req),
        "GET /api/replication/v1/topics/assessment-types/partitions/0/records?offset=%s&wait_ms=120000 HTTP/1.1\r\n"
        "Host: x\r\nX-ApiKey: bench-key\r\n\r\n",
        "999999999");
    /* poll at the end of partition 0: ask /state-free: the high watermark via one pull */
    int64_t lo, hi;
    rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000);
    snprintf(req, sizeof(req),
             "GET /api/replication/v1/topics/assessment-types/partitions/0/records?offset=%" PRId64
             "&wait_ms=120000 HTTP/1.1\r\nHost: x\r\nX-ApiKey: bench-key\r\n\r\n",
             hi);
    int *fds = calloc((size_t)longpolls, sizeof(int));
    double t_open = now_s();
    long opened = 0;
    for (long i = 0; i < longpolls; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            send(s, req, strlen(req), 0) != (ssize_t)strlen(req)) {
            fprintf(stderr, "bench_bridge: long poll %ld: %s\n", i, strerror(errno));
            if (s >= 0)
                close(s);
            break;
        }
        fds[opened++] = s;
    }
    double open_s = now_s() - t_open;
    sleep(2);
    long rss_held = rss_kb(pid);
    /* other requests meanwhile: a caught-up pull (served from the window)
     * and a rebuild-style pull from offset 0 (a reader) */
    double worst[2] = {0, 0}, sum[2] = {0, 0}, one;
    char path[2][300];
    int64_t lo1, hi1;
    rd_kafka_query_watermark_offsets(rk, topic, 1, &lo1, &hi1, 10000);
    snprintf(path[0], sizeof(path[0]),
             "/api/replication/v1/topics/assessment-types/partitions/1/records?offset=%" PRId64,
             hi1);
    snprintf(path[1], sizeof(path[1]),
             "/api/replication/v1/topics/assessment-types/partitions/1/records?offset=0&max=100");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 20; i++) {
            if (http_get(port, path[k], &one) != 200)
                die("pull while long polls are held", "not 200");
            sum[k] += one;
            if (one > worst[k])
                worst[k] = one;
        }
    long rss_after_pulls = rss_kb(pid);
    printf("idle long polls: %ld held (opened in %.2f s); bridge RSS %ld kB idle, %ld kB after the "
           "rebuild, %ld kB holding them (%ld kB after the pulls below)\n",
           opened, open_s, rss_idle, rss_after_rebuild, rss_held, rss_after_pulls);
    printf("  meanwhile: caught-up pull %.1f ms avg / %.1f worst; pull from offset 0 (reader) "
           "%.1f ms avg / %.1f worst\n",
           sum[0] / 20 * 1000, worst[0] * 1000, sum[1] / 20 * 1000, worst[1] * 1000);
    for (long i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);

    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    srl_config_free(kc);
    srl_config_free(hc);
    rd_kafka_destroy(rk);
    srl_registry_free(reg);
    free(self);
    curl_global_cleanup();
    return 0;
}
