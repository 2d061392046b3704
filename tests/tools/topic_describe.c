/*
 * topic_describe.c - srl-topic-describe BOOTSTRAP TOPIC: prints how a topic
 * is replicated, as a script test checks it:
 *   replicas=3 min.insync.replicas=2 cleanup.policy=compact
 * (replicas: the fewest any partition has). Exit 1 with the reason on
 * stderr when the broker does not answer or the topic is missing.
 */
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "sysrepl/kafka.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: srl-topic-describe BOOTSTRAP TOPIC\n");
        return 2;
    }
    char err[512], min_isr[64], policy[64];
    int rc = 1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err))) {
        fprintf(stderr, "bootstrap.servers: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "creating the Kafka client: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int replicas = srl_kafka_topic_replicas(rk, argv[2], 15000, err, sizeof(err));
    if (replicas < 0 ||
        !srl_kafka_topic_config(rk, argv[2], "min.insync.replicas", min_isr, sizeof(min_isr), 15000,
                                err, sizeof(err)) ||
        !srl_kafka_topic_config(rk, argv[2], "cleanup.policy", policy, sizeof(policy), 15000, err,
                                sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        goto cleanup;
    }
    printf("replicas=%d min.insync.replicas=%s cleanup.policy=%s\n", replicas, min_isr, policy);
    rc = 0;
cleanup:
    rd_kafka_destroy(rk);
    return rc;
}
