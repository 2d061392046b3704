/*
 * kafka.c - topic names, headers, topic creation and checking, and the
 * classification of librdkafka errors (see kafka.h).
 */
#include "sysrepl/kafka.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"

bool srl_topic_name(const char *prefix, srl_kind_t kind, char *buf, size_t buf_size)
{
    const char *name = srl_kind_name(kind);
    if (!name)
        return false;
    int n = snprintf(buf, buf_size, "%s.%s", prefix, name);
    return n > 0 && (size_t)n < buf_size;
}

bool srl_topic_name_schemas(const char *prefix, char *buf, size_t buf_size)
{
    int n = snprintf(buf, buf_size, "%s.%s", prefix, SRL_SCHEMAS_SUFFIX);
    return n > 0 && (size_t)n < buf_size;
}

bool srl_topic_kind(const char *prefix, const char *topic, srl_kind_t *kind)
{
    size_t plen = strlen(prefix);
    if (strncmp(topic, prefix, plen) != 0 || topic[plen] != '.')
        return false;
    return srl_kind_parse(topic + plen + 1, kind);
}

/* Wait for one admin result event of the given type on q. */
static rd_kafka_event_t *wait_admin_result(rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                                           int timeout_ms)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev && rd_kafka_event_type(ev) != type) {
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

/* Describe the configs of topics[0..count) in one request; the caller
 * destroys the returned event. */
static rd_kafka_event_t *describe_topics(rd_kafka_t *rk, const char *const *topics, size_t count,
                                         int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_ConfigResource_t **res = calloc(count ? count : 1, sizeof(*res));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk,
                                                              RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_event_t *ev = NULL;
    char eb[256];

    if (!res) {
        snprintf(errstr, errstr_size, "out of memory");
        goto cleanup;
    }
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, eb, sizeof(eb));
    for (size_t i = 0; i < count; i++)
        res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topics[i]);
    rd_kafka_DescribeConfigs(rk, res, count, opts, q);
    ev = wait_admin_result(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, timeout_ms);
    if (!ev) {
        snprintf(errstr, errstr_size, "broker did not answer DescribeConfigs within %d ms",
                 timeout_ms);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "DescribeConfigs failed: %s",
                 rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
cleanup:
    if (res) {
        for (size_t i = 0; i < count; i++)
            rd_kafka_ConfigResource_destroy(res[i]);
        free(res);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return ev;
}

static void denied_describe_configs(const char *topic, rd_kafka_resp_err_t err, char *errstr,
                                    size_t errstr_size)
{
    snprintf(errstr, errstr_size,
             SRL_KAFKA_DENIED_MARK " to DescribeConfigs on topic %s (%s): this principal needs "
                                   "the DescribeConfigs ACL on it (docs/operations.md)",
             topic, rd_kafka_err2name(err));
}

static const char *resource_config(const rd_kafka_ConfigResource_t *r, const char *name)
{
    size_t n;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(r, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0)
            return rd_kafka_ConfigEntry_value(entries[i]);
    return NULL;
}

bool srl_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *value,
                            size_t value_size, int timeout_ms, char *errstr, size_t errstr_size)
{
    const char *topics[1] = {topic};
    rd_kafka_event_t *ev = describe_topics(rk, topics, 1, timeout_ms, errstr, errstr_size);
    bool ok = false;
    if (!ev)
        return false;
    size_t n;
    const rd_kafka_DescribeConfigs_result_t *result = rd_kafka_event_DescribeConfigs_result(ev);
    const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
    if (n == 1 && srl_kafka_err_is_denied(rd_kafka_ConfigResource_error(rs[0]))) {
        denied_describe_configs(topic, rd_kafka_ConfigResource_error(rs[0]), errstr, errstr_size);
        goto cleanup;
    }
    if (n != 1 || rd_kafka_ConfigResource_error(rs[0])) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 n == 1 ? rd_kafka_ConfigResource_error_string(rs[0]) : "no result");
        goto cleanup;
    }
    const char *v = resource_config(rs[0], name);
    if (!v) {
        snprintf(errstr, errstr_size, "topic %s has no config %s", topic, name);
        goto cleanup;
    }
    if ((size_t)snprintf(value, value_size, "%s", v) >= value_size) {
        snprintf(errstr, errstr_size, "topic %s: config %s value too long", topic, name);
        goto cleanup;
    }
    ok = true;
cleanup:
    rd_kafka_event_destroy(ev);
    return ok;
}

/* The metadata of one topic (*md to destroy, also on failure): NULL with
 * errstr when it cannot be had, the principal may not describe it, or the
 * broker does not know it. */
static const rd_kafka_metadata_topic_t *topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                                                       const char *topic, int timeout_ms,
                                                       const struct rd_kafka_metadata **md,
                                                       char *errstr, size_t errstr_size)
{
    *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "metadata for topic %s: %s", topic, rd_kafka_err2str(err));
        return NULL;
    }
    if ((*md)->topic_cnt == 1 && srl_kafka_err_is_denied((*md)->topics[0].err)) {
        snprintf(errstr, errstr_size,
                 SRL_KAFKA_DENIED_MARK " to Describe topic %s (%s): this principal needs the "
                                       "Describe (or Read) ACL on it (docs/operations.md)",
                 topic, rd_kafka_err2name((*md)->topics[0].err));
        return NULL;
    }
    if ((*md)->topic_cnt != 1 || (*md)->topics[0].err) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 (*md)->topic_cnt == 1 ? rd_kafka_err2str((*md)->topics[0].err)
                                       : "not in metadata");
        return NULL;
    }
    return &(*md)->topics[0];
}

int srl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                              size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t = topic_metadata(rk, rkt, topic, timeout_ms, &md, errstr,
                                                        errstr_size);
    int count = t ? t->partition_cnt : -1;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return count;
}

/* A topic we can keep state in must be compacted; "compact,delete" also
 * deletes by retention time and would silently lose old keys, so it is
 * refused as well unless retention is infinite (checked by the caller
 * through retention.ms == -1). */
static bool cleanup_policy_ok(const char *policy, const char *retention_ms)
{
    if (!policy || !strstr(policy, "compact"))
        return false;
    if (strstr(policy, "delete"))
        return retention_ms && strcmp(retention_ms, "-1") == 0;
    return true;
}

bool srl_topic_settings_resolve(srl_topic_settings_t *s, int brokers, char *errstr,
                                size_t errstr_size)
{
    bool auto_rf = s->replication_factor == 0;
    if (auto_rf)
        s->replication_factor = brokers < SRL_TOPIC_DEFAULT_REPLICATION_FACTOR
                                    ? (brokers > 0 ? brokers : 1)
                                    : SRL_TOPIC_DEFAULT_REPLICATION_FACTOR;
    if (s->min_insync_replicas == 0)
        s->min_insync_replicas = s->replication_factor >= 3 ? SRL_TOPIC_DEFAULT_MIN_INSYNC_REPLICAS
                                                            : 1;
    if (s->min_insync_replicas > s->replication_factor) {
        char rf_why[96] = "";
        if (auto_rf)
            snprintf(rf_why, sizeof(rf_why), " (0: the smaller of %d and the %d broker(s) listed)",
                     SRL_TOPIC_DEFAULT_REPLICATION_FACTOR, brokers);
        snprintf(errstr, errstr_size,
                 "topic.min_insync_replicas = %d is greater than topic.replication_factor = %d%s: "
                 "no write could ever be acknowledged; lower topic.min_insync_replicas or raise "
                 "topic.replication_factor",
                 s->min_insync_replicas, s->replication_factor, rf_why);
        return false;
    }
    return true;
}

/* The number of brokers the cluster's metadata lists; -1 with errstr. */
static int broker_count(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "metadata (brokers): %s", rd_kafka_err2str(err));
        return -1;
    }
    int n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

int srl_kafka_topic_replicas(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                             size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t = topic_metadata(rk, rkt, topic, timeout_ms, &md, errstr,
                                                        errstr_size);
    int fewest = -1;
    if (t && t->partition_cnt < 1)
        snprintf(errstr, errstr_size, "topic %s: not in metadata", topic);
    for (int i = 0; t && i < t->partition_cnt; i++)
        if (fewest < 0 || t->partitions[i].replica_cnt < fewest)
            fewest = t->partitions[i].replica_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return fewest;
}

void srl_kafka_warn_single_replica(rd_kafka_t *rk, const char *component, const char *const *topics,
                                   size_t count, int timeout_ms)
{
    char err[256];
    for (size_t i = 0; i < count; i++)
        if (srl_kafka_topic_replicas(rk, topics[i], timeout_ms, err, sizeof(err)) == 1)
            srl_log(SRL_LOG_WARN, component, "topic has a single replica",
                    "topic=%s replicas=1 reason=%s", topics[i],
                    srl_log_q("one broker's loss loses the hub's published changes; on a cluster "
                              "use topic.replication_factor=3 (the default 0 picks it from the "
                              "broker count when the topic is created)"));
}

bool srl_kafka_ensure_topics(rd_kafka_t *rk, const srl_topic_settings_t *settings,
                             const char *const *topics, const int *partitions_override,
                             size_t count, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_NewTopic_t **nt = calloc(count ? count : 1, sizeof(*nt));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    bool ok = false;
    char eb[256], num[32];
    srl_topic_settings_t resolved = *settings;
    const srl_topic_settings_t *s = &resolved;

    if (!nt) {
        snprintf(errstr, errstr_size, "out of memory");
        goto cleanup;
    }
    if (resolved.replication_factor == 0 || resolved.min_insync_replicas == 0) {
        int brokers = broker_count(rk, timeout_ms, errstr, errstr_size);
        if (brokers < 0)
            goto cleanup;
        if (!srl_topic_settings_resolve(&resolved, brokers, errstr, errstr_size))
            goto cleanup;
    } else if (!srl_topic_settings_resolve(&resolved, resolved.replication_factor, errstr,
                                           errstr_size)) {
        goto cleanup;
    }
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, eb, sizeof(eb));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, eb, sizeof(eb));
    for (size_t i = 0; i < count; i++) {
        int parts = partitions_override && partitions_override[i] > 0 ? partitions_override[i]
                                                                      : s->partitions;
        nt[i] = rd_kafka_NewTopic_new(topics[i], parts, s->replication_factor, eb, sizeof(eb));
        if (!nt[i]) {
            snprintf(errstr, errstr_size, "topic %s: %s", topics[i], eb);
            goto cleanup;
        }
        rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
        snprintf(num, sizeof(num), "%d", s->min_insync_replicas);
        rd_kafka_NewTopic_set_config(nt[i], "min.insync.replicas", num);
        snprintf(num, sizeof(num), "%" PRId64, s->segment_ms);
        rd_kafka_NewTopic_set_config(nt[i], "segment.ms", num);
        snprintf(num, sizeof(num), "%" PRId64, s->delete_retention_ms);
        rd_kafka_NewTopic_set_config(nt[i], "delete.retention.ms", num);
    }
    rd_kafka_CreateTopics(rk, nt, count, opts, q);
    ev = wait_admin_result(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms);
    if (!ev) {
        snprintf(errstr, errstr_size, "broker did not answer CreateTopics within %d ms",
                 timeout_ms);
        goto cleanup;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "CreateTopics failed: %s", rd_kafka_event_error_string(ev));
        goto cleanup;
    }
    size_t n;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        if (srl_kafka_err_is_denied(err)) {
            snprintf(errstr, errstr_size,
                     SRL_KAFKA_DENIED_MARK " to Create topic %s (%s): this principal needs the "
                                           "Create ACL on it (docs/operations.md)",
                     rd_kafka_topic_result_name(tr[i]), rd_kafka_err2name(err));
            goto cleanup;
        }
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "creating topic %s: %s",
                     rd_kafka_topic_result_name(tr[i]), rd_kafka_topic_result_error_string(tr[i]));
            goto cleanup;
        }
    }
    rd_kafka_event_destroy(ev);

    /* Check every topic, new or old: a pre-existing topic with a
     * non-compacting cleanup policy would lose state without a word. */
    ev = describe_topics(rk, topics, count, timeout_ms, errstr, errstr_size);
    if (!ev)
        goto cleanup;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_ConfigResource_name(rs[i]);
        if (srl_kafka_err_is_denied(rd_kafka_ConfigResource_error(rs[i]))) {
            denied_describe_configs(name, rd_kafka_ConfigResource_error(rs[i]), errstr,
                                    errstr_size);
            goto cleanup;
        }
        if (rd_kafka_ConfigResource_error(rs[i])) {
            snprintf(errstr, errstr_size, "topic %s: %s", name,
                     rd_kafka_ConfigResource_error_string(rs[i]));
            goto cleanup;
        }
        const char *policy = resource_config(rs[i], "cleanup.policy");
        const char *retention = resource_config(rs[i], "retention.ms");
        if (!cleanup_policy_ok(policy, retention)) {
            snprintf(errstr, errstr_size,
                     "topic %s has cleanup.policy=%s: it would delete records by age and lose "
                     "state; set cleanup.policy=compact (or use another topic.prefix)",
                     name, policy ? policy : "(unknown)");
            goto cleanup;
        }
    }
    ok = true;
cleanup:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt) {
        for (size_t i = 0; i < count; i++)
            if (nt[i])
                rd_kafka_NewTopic_destroy(nt[i]);
        free(nt);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return ok;
}

bool srl_kafka_header_str(const rd_kafka_message_t *m, const char *name, char *buf, size_t buf_size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t size;
    if (rd_kafka_message_headers(m, &hdrs) || !hdrs)
        return false;
    if (rd_kafka_header_get_last(hdrs, name, &val, &size) || !val || size >= buf_size)
        return false;
    memcpy(buf, val, size);
    buf[size] = '\0';
    return true;
}

int64_t srl_kafka_header_version(const rd_kafka_message_t *m)
{
    char buf[32], *end;
    if (!srl_kafka_header_str(m, SRL_HDR_VERSION, buf, sizeof(buf)) || !buf[0])
        return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    return v;
}

static bool conf_set_table(rd_kafka_conf_t *conf, const char *const table[][2], char *errstr,
                           size_t errstr_size)
{
    char eb[256];
    for (size_t i = 0; table && table[i][0]; i++)
        if (rd_kafka_conf_set(conf, table[i][0], table[i][1], eb, sizeof(eb)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "librdkafka property %s=%s: %s", table[i][0], table[i][1],
                     eb);
            return false;
        }
    return true;
}

bool srl_kafka_conf_layer(rd_kafka_conf_t *conf, const srl_config_t *cfg,
                          const char *const defaults[][2], const char *const forced[][2],
                          char *errstr, size_t errstr_size)
{
    return conf_set_table(conf, defaults, errstr, errstr_size) &&
           srl_config_kafka_conf(cfg, conf, errstr, errstr_size) &&
           conf_set_table(conf, forced, errstr, errstr_size);
}

bool srl_kafka_err_is_retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: /* metadata not propagated yet */
        return true;
    default:
        return false;
    }
}

bool srl_kafka_err_is_denied(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return true;
    default:
        return false;
    }
}

/* What the probe's error callback saw: the first refusal, else the last
 * error. Written on the probe's own thread (served by rd_kafka_poll). */
typedef struct probe_state {
    rd_kafka_resp_err_t denied;
    bool all_down;     /* every bootstrap broker failed, none refused us */
    bool tls_failed;   /* a TLS handshake failed */
    bool other_failed; /* something else failed: a handshake passed first */
    char reason[400];
    char last[400];
} probe_state_t;

/* librdkafka 2.0.2 reports a failed TLS handshake (untrusted CA, host name
 * mismatch) as _SSL on some paths and as _TRANSPORT with "SSL handshake
 * failed" on others: both are refusals. */
static bool reason_is_tls(const char *reason)
{
    return strstr(reason, "SSL handshake failed") != NULL ||
           strstr(reason, "certificate verify failed") != NULL;
}

static void probe_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    probe_state_t *ps = opaque;
    (void)rk;
    if (!ps->denied && (srl_kafka_err_is_denied(err) || reason_is_tls(reason))) {
        ps->denied = err;
        snprintf(ps->reason, sizeof(ps->reason), "%s", reason);
    }
    if (reason_is_tls(reason))
        ps->tls_failed = true;
    else if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        ps->other_failed = true;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        ps->all_down = true;
    else
        snprintf(ps->last, sizeof(ps->last), "%s", reason);
}

/* The probe's librdkafka lines are not ours to print: the error callback
 * carries what matters, once. */
static void probe_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/* After a failed certificate check: whether the handshake passes without
 * host name verification, i.e. the certificate is trusted and names
 * another host. librdkafka 2.0.2 says "certificate verify failed" for both
 * an untrusted CA and a wrong host name; this tells the operator which.
 * The probe speaks plain TLS (security.protocol ssl): no SASL, so no
 * password goes to a host whose name the certificate does not vouch for.
 * On a SASL_SSL listener its requests are then refused or the connection
 * closed, after the handshake: any failure but a TLS one means it passed. */
static bool only_host_name_wrong(const srl_config_t *cfg)
{
    static const char *const forced[][2] = {{"client.id", "sysrepl-access-check"},
                                            {"security.protocol", "ssl"},
                                            {"ssl.endpoint.identification.algorithm", "none"},
                                            {NULL, NULL}};
    probe_state_t ps = {0};
    char eb[256];
    bool ok = false;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!srl_kafka_conf_layer(conf, cfg, NULL, forced, eb, sizeof(eb))) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_error_cb(conf, probe_on_error);
    rd_kafka_conf_set_log_cb(conf, probe_on_log);
    rd_kafka_conf_set_opaque(conf, &ps);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    for (int waited = 0; waited < 5000 && !ok && !ps.tls_failed && !ps.other_failed;
         waited += 250) {
        const struct rd_kafka_metadata *md = NULL;
        ok = rd_kafka_metadata(rk, 0, NULL, &md, 250) == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_destroy(rk);
    return ok || (ps.other_failed && !ps.tls_failed);
}

srl_kafka_access_t srl_kafka_check_access(const srl_config_t *cfg, int timeout_ms, char *errstr,
                                          size_t errstr_size)
{
    static const char *const forced[][2] = {{"client.id", "sysrepl-access-check"}, {NULL, NULL}};
    probe_state_t ps = {0};
    char eb[256];
    srl_kafka_access_t rc = SRL_KAFKA_ACCESS_AWAY;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!srl_kafka_conf_layer(conf, cfg, NULL, forced, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return SRL_KAFKA_ACCESS_DENIED;
    }
    rd_kafka_conf_set_error_cb(conf, probe_on_error);
    rd_kafka_conf_set_log_cb(conf, probe_on_log);
    rd_kafka_conf_set_opaque(conf, &ps);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, eb, sizeof(eb));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "creating a Kafka client: %s", eb);
        return SRL_KAFKA_ACCESS_DENIED;
    }
    /* A refusal comes within one connection attempt (TLS handshake, SASL
     * exchange); the metadata request succeeds once both passed. */
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 250);
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_poll(rk, 0);
        if (ps.denied) {
            rc = SRL_KAFKA_ACCESS_DENIED;
            if (reason_is_tls(ps.reason) && only_host_name_wrong(cfg))
                snprintf(errstr, errstr_size,
                         "Kafka refused the connection (TLS): the broker's certificate is "
                         "trusted but does not name the host in kafka.bootstrap.servers (or "
                         "the host the broker advertises); host name verification failed");
            else
                snprintf(errstr, errstr_size, "Kafka refused the connection (%s): %s",
                         rd_kafka_err2name(ps.denied), ps.reason);
            goto cleanup;
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = SRL_KAFKA_ACCESS_OK;
            goto cleanup;
        }
        /* Every broker failed without refusing us (the refusal is reported
         * before "all brokers down"): away, and the caller waits for it
         * its own way; no need to spend the whole timeout here. */
        if (ps.all_down) {
            snprintf(errstr, errstr_size, "no broker reachable: %s",
                     ps.last[0] ? ps.last : rd_kafka_err2str(err));
            goto cleanup;
        }
        snprintf(ps.last, sizeof(ps.last), "%s", ps.last[0] ? ps.last : rd_kafka_err2str(err));
    }
    snprintf(errstr, errstr_size, "no broker answered within %d ms: %s", timeout_ms,
             ps.last[0] ? ps.last : "no reply");
cleanup:
    rd_kafka_destroy(rk);
    return rc;
}
