/*
 * bench_produce_raw.c - the ceiling for sysrepl-producer: raw librdkafka
 * production of N pre-encoded assessment records (the same bytes the
 * producer would send: key, Avro value, sysrepl.version and sysrepl.origin
 * headers) with the producer's settings (idempotent, acks=all,
 * murmur2_random, lz4, linger.ms 1, batch.num.messages 10000), as fast as
 * possible, timed from the first produce to the last delivery report.
 *
 *   bench_produce_raw BOOTSTRAP TOPIC N
 *
 * Creates TOPIC (3 partitions, compacted) when missing. Prints one line:
 *   raw_produce records=N seconds=S rate=R
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sysrepl/clock.h"
#include "sysrepl/codec.h"
#include "sysrepl/kafka.h"
#include "sysrepl/keys.h"

static long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
    else
        delivered++;
}

static double now_s(void)
{
    return (double)srl_clock_mono_us() / 1e6;
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc != 4) {
        fprintf(stderr, "usage: bench_produce_raw BOOTSTRAP TOPIC N\n");
        return 1;
    }
    const char *bootstrap = argv[1], *topic = argv[2];
    long n = strtol(argv[3], NULL, 10);
    static const char *const props[][2] = {{"enable.idempotence", "true"},
                                           {"acks", "all"},
                                           {"partitioner", "murmur2_random"},
                                           {"linger.ms", "1"},
                                           {"batch.num.messages", "10000"},
                                           {"batch.size", "4000000"},
                                           {"compression.type", "lz4"},
                                           {"message.timeout.ms", "0"},
                                           {"queue.buffering.max.messages", "1000000"},
                                           {NULL, NULL}};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    for (int i = 0; props[i][0]; i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    srl_topic_settings_t ts = {3, 0, 0, 3600000, 604800000}; /* 0: as the hub's defaults */
    const char *topics[1] = {topic};
    /* A topic just created may not be known yet to the broker answering
     * the check that follows ("Unknown topic or partition"): try again. */
    for (int tries = 0; !srl_kafka_ensure_topics(rk, &ts, topics, NULL, 1, 30000, err, sizeof(err));
         tries++) {
        if (tries == 10) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        sleep(1);
    }
    srl_registry_t *reg = srl_registry_new(err, sizeof(err));

    /* Pre-encode: the records the hub would publish for the bench rows. */
    char **keys = calloc((size_t)n, sizeof(char *));
    uint8_t **values = calloc((size_t)n, sizeof(uint8_t *));
    size_t *lens = calloc((size_t)n, sizeof(size_t));
    for (long i = 0; i < n; i++) {
        char vid[64];
        snprintf(vid, sizeof(vid), "CVE-2024-%ld", 100000 + i);
        srl_entity_t e = {.kind = SRL_KIND_ASSESSMENT};
        e.u.assessment.vulnerability_id = vid;
        e.u.assessment.assessment_type = "Blocked";
        e.u.assessment.scope_kind = SRL_SCOPE_GLOBAL;
        e.u.assessment.meta.origin = "hub-bench";
        e.u.assessment.meta.version = i + 1;
        e.u.assessment.meta.changed_at = 1764158400000LL;
        keys[i] = srl_key_dup(&e);
        if (!srl_codec_encode(reg, &e, &values[i], &lens[i], err, sizeof(err))) {
            fprintf(stderr, "encode: %s\n", err);
            return 1;
        }
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    /* Warm up: connection, producer id, metadata. */
    rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY("warmup", 6), RD_KAFKA_V_END);
    rd_kafka_flush(rk, 30000);
    delivered = 0;

    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char v[24];
        int vl = snprintf(v, sizeof(v), "%ld", i + 1);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, SRL_HDR_VERSION, -1, v, vl);
        rd_kafka_header_add(h, SRL_HDR_ORIGIN, -1, "hub-bench", -1);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
                    RD_KAFKA_V_VALUE(values[i], lens[i]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 5);
        if (e) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            return 1;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 600000);
    double secs = now_s() - t0;
    printf("raw_produce records=%ld seconds=%.2f rate=%.0f failed=%ld\n", delivered, secs,
           delivered / secs, failed);
    for (long i = 0; i < n; i++) {
        free(keys[i]);
        free(values[i]);
    }
    free(keys);
    free(values);
    free(lens);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    srl_registry_free(reg);
    return failed ? 1 : 0;
}
