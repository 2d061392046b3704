/*
 * bridge_fixture.h - helpers of the test_bridge_*.c integration tests
 * (static functions, included by each): a sysrepl-bridge run as a child
 * process on a free port with plain HTTP, a keys file with the key
 * "hub-key" (pull,push), one HTTP call with libcurl, and Avro values of
 * assessment types.
 *
 * Include <cmocka.h> (with its prelude) and support/support.h first.
 */
#ifndef SRL_TEST_BRIDGE_FIXTURE_H
#define SRL_TEST_BRIDGE_FIXTURE_H

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sysrepl/codec.h"

#define BF_KEY "hub-key"

typedef struct bf_bridge {
    char dir[256];
    char prefix[200];
    int port;
    pid_t pid;
} bf_bridge_t;

typedef struct bf_body {
    char *data;
    size_t len;
    char next[32], high[32];
} bf_body_t;

static size_t bf_on_data(char *p, size_t sz, size_t n, void *arg)
{
    bf_body_t *b = arg;
    char *d = realloc(b->data, b->len + sz * n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, sz * n);
    b->data = d;
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

static size_t bf_on_header(char *p, size_t sz, size_t n, void *arg)
{
    bf_body_t *b = arg;
    size_t len = sz * n;
    if (len > 23 && strncasecmp(p, "X-Sysrepl-Next-Offset: ", 23) == 0)
        snprintf(b->next, sizeof(b->next), "%.*s", (int)strcspn(p + 23, "\r\n"), p + 23);
    if (len > 26 && strncasecmp(p, "X-Sysrepl-High-Watermark: ", 26) == 0)
        snprintf(b->high, sizeof(b->high), "%.*s", (int)strcspn(p + 26, "\r\n"), p + 26);
    return len;
}

/* One HTTP call with the hub key; returns the status (0: no answer). The
 * caller frees out->data. */
static long bf_http(const bf_bridge_t *br, const char *method, const char *path, const char *ctype,
                    const void *data, size_t len, bf_body_t *out)
{
    CURL *c = curl_easy_init();
    char url[512], ct[128];
    struct curl_slist *h = curl_slist_append(NULL, "X-ApiKey: " BF_KEY);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", br->port, path);
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    memset(out, 0, sizeof(*out));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bf_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, bf_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static int bf_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &al);
    close(s);
    return ntohs(a.sin_port);
}

static const char *bf_build_dir(void)
{
    const char *d = getenv("SRL_BUILD_DIR");
    return d ? d : "build";
}

static bool bf_healthy(void *arg)
{
    bf_body_t b;
    long st = bf_http(arg, "GET", "/health", NULL, NULL, 0, &b);
    free(b.data);
    return st == 200;
}

/* Prepare dir, keys file and port for a bridge of topic prefix. */
static void bf_init(bf_bridge_t *br, const char *prefix)
{
    char path[512], cmd[1024], line[256];
    memset(br, 0, sizeof(*br));
    snprintf(br->prefix, sizeof(br->prefix), "%s", prefix);
    snprintf(br->dir, sizeof(br->dir), "/tmp/srl-bridge-test-XXXXXX");
    assert_non_null(mkdtemp(br->dir));
    br->port = bf_free_port();
    snprintf(path, sizeof(path), "%s/keys", br->dir);
    snprintf(cmd, sizeof(cmd),
             "%s/bridge/sysrepl-bridge --hash-key " BF_KEY " --name hub --perms pull,push",
             bf_build_dir());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    pclose(p);
    FILE *kf = fopen(path, "w");
    assert_non_null(kf);
    fputs(line, kf);
    fclose(kf);
}

/* Start the bridge (same port and prefix each time) and wait until healthy. */
static void bf_start(bf_bridge_t *br)
{
    br->pid = fork();
    if (br->pid == 0) {
        char bin[512], k[600], bs[300], pre[300], port[64], logp[600];
        snprintf(bin, sizeof(bin), "%s/bridge/sysrepl-bridge", bf_build_dir());
        snprintf(k, sizeof(k), "bridge.keys_file=%s/keys", br->dir);
        snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", srl_test_kafka());
        snprintf(pre, sizeof(pre), "topic.prefix=%s", br->prefix);
        snprintf(port, sizeof(port), "bridge.port=%d", br->port);
        snprintf(logp, sizeof(logp), "%s/bridge.log", br->dir);
        if (!freopen(logp, "a", stderr))
            _exit(126);
        execl(bin, bin, "-X", "instance.id=bridge-test", "-X", k, "-X", bs, "-X", pre, "-X", port,
              "-X", "bridge.plain_http=true", "-X", "replicate=assessments", "-X",
              "topic.partitions=2", "-X", "bridge.window_bytes=1048576", "-X",
              "stats.interval_ms=0", (char *)NULL);
        _exit(127);
    }
    if (!srl_test_wait_until(bf_healthy, br, 60000))
        fail_msg("bridge not healthy; see %s/bridge.log", br->dir);
}

/* SIGTERM; the bridge must exit 0. */
static void bf_stop(bf_bridge_t *br)
{
    if (br->pid <= 0)
        return;
    int st;
    kill(br->pid, SIGTERM);
    waitpid(br->pid, &st, 0);
    br->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("bridge exited badly (status %d); log in %s/bridge.log", st, br->dir);
}

/* The Avro value of an assessment type (caller frees). */
static uint8_t *bf_encode_type(srl_registry_t *reg, const char *name, int64_t version, size_t *len)
{
    srl_entity_t e;
    memset(&e, 0, sizeof(e));
    e.kind = SRL_KIND_ASSESSMENT_TYPE;
    e.u.type.name = strdup(name);
    e.u.type.severity_class = SRL_SEVERITY_CLASS_WARN;
    e.u.type.emitted_severity = SRL_SEVERITY_UNSET;
    e.u.type.auto_rule.cvss_max = 10.0;
    e.u.type.meta.origin = strdup("hub-1");
    e.u.type.meta.version = version;
    e.u.type.meta.changed_at = 1764158400000LL;
    uint8_t *out = NULL;
    char err[256];
    if (!srl_codec_encode(reg, &e, &out, len, err, sizeof(err)))
        fail_msg("encode: %s", err);
    srl_entity_clear(&e);
    return out;
}

#endif
