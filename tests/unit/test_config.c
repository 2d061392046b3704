/*
 * test_config.c - the configuration loader: file syntax, typed values, the
 * errors that stop a program at start (each naming file:line or -X and the
 * key), kafka.* passthrough, and the text generated from the key table.
 *
 * That docs/config-reference.md and deploy/examples/ match the table is
 * checked by unit.test_config_examples (tools/gen-config.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysrepl/codec.h"
#include "sysrepl/config.h"
#include "sysrepl/log.h"

static const unsigned each_program[] = {SRL_PROG_PRODUCER, SRL_PROG_CONSUMER, SRL_PROG_BRIDGE,
                                        SRL_PROG_CLI};

/* Write content to a fresh temporary file; path receives its name. */
static void write_tmp(const char *content, char path[64])
{
    snprintf(path, 64, "/tmp/srl-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Load content as a file into cfg; path receives the file name used. */
static bool load_text(srl_config_t *cfg, const char *content, char path[64], char *errstr,
                      size_t errstr_size)
{
    write_tmp(content, path);
    bool ok = srl_config_load_file(cfg, path, errstr, errstr_size);
    unlink(path);
    return ok;
}

/* Assert errstr is exactly "<path>:<line>: <rest>". */
static void assert_error_at(const char *errstr, const char *path, int line, const char *rest)
{
    char expected[512];
    snprintf(expected, sizeof expected, "%s:%d: %s", path, line, rest);
    assert_string_equal(errstr, expected);
}

/* A file with comments, blank lines, quotes and trailing comments loads,
 * and every value arrives typed. */
static void config_load_file_accepts_comments_quotes_and_blank_lines(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512] = "";
    bool ok = load_text(cfg,
                        "# sysrepl test config\n"
                        "\n"
                        "   # indented comment\n"
                        "instance.id = hub-1   # trailing comment\n"
                        "store.dsn = \"host=localhost dbname=proget # not a comment\"\n"
                        "topic.prefix=a#b\n"
                        "topic.partitions =   12\r\n"
                        "topic.segment_ms = 30s\n"
                        "role = spoke\n"
                        "bridge.url = \"say \\\"hi\\\" C:\\dir\"\n",
                        path, err, sizeof err);
    assert_true(ok);
    assert_string_equal(err, "");
    assert_string_equal(srl_config_str(cfg, SRL_KEY_INSTANCE_ID), "hub-1");
    assert_string_equal(srl_config_str(cfg, SRL_KEY_STORE_DSN),
                        "host=localhost dbname=proget # not a comment");
    assert_string_equal(srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX), "a#b");
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_PARTITIONS), 12);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_SEGMENT_MS), 30000);
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_ROLE), SRL_ROLE_SPOKE);
    assert_string_equal(srl_config_str(cfg, SRL_KEY_BRIDGE_URL), "say \"hi\" C:\\dir");
    srl_config_free(cfg);
}

/* Without any file every key holds the table's default, typed. */
static void config_new_holds_typed_defaults(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_ALL);
    assert_string_equal(srl_config_str(cfg, SRL_KEY_INSTANCE_ID), "");
    assert_string_equal(srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX), "sysrepl");
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_ROLE), SRL_ROLE_HUB);
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_TRANSPORT), SRL_TRANSPORT_KAFKA);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_PARTITIONS), 3);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_SEGMENT_MS), 3600000);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_DELETE_RETENTION_MS), 604800000);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_BRIDGE_PORT), 8443);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_BRIDGE_MAX_BODY_BYTES), 16777216);
    assert_false(srl_config_bool(cfg, SRL_KEY_BRIDGE_PLAIN_HTTP));
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_LOG_LEVEL), SRL_LOG_INFO);
    assert_int_equal(srl_config_kafka_count(cfg), 0);
    srl_config_free(cfg);
}

/* An unknown key stops the load, naming file, line and key (and the
 * nearest real key). */
static void config_load_file_rejects_unknown_key(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "# c\ntopic.prefx = x\n", path, err, sizeof err));
    assert_error_at(err, path, 2, "unknown key \"topic.prefx\" (did you mean \"topic.prefix\"?)");
    srl_config_free(cfg);
}

/* A value that is not a number at all is rejected as not an integer. */
static void config_load_file_rejects_non_integer(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "\n\ntopic.partitions = abc\n", path, err, sizeof err));
    assert_error_at(err, path, 3, "key \"topic.partitions\": value \"abc\" is not an integer");
    srl_config_free(cfg);
}

/* A number followed by junk is not accepted in part (no atoi). */
static void config_load_file_rejects_partial_number(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "topic.partitions = 12abc\n", path, err, sizeof err));
    assert_error_at(err, path, 1, "key \"topic.partitions\": value \"12abc\" is not an integer");
    srl_config_free(cfg);
}

/* A number outside the key's range is rejected with the range. */
static void config_load_file_rejects_out_of_range(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "topic.partitions = 1025\n", path, err, sizeof err));
    assert_error_at(err, path, 1,
                    "key \"topic.partitions\": value \"1025\" is out of range 1..1024");
    srl_config_free(cfg);
}

/* A number beyond long long is out of range, not wrapped around. */
static void config_load_file_rejects_overflowing_number(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(
        load_text(cfg, "topic.partitions = 99999999999999999999999\n", path, err, sizeof err));
    assert_non_null(strstr(err, "is out of range 1..1024"));
    srl_config_free(cfg);
}

/* A duration takes a unit; one it does not know is rejected. */
static void config_load_file_rejects_bad_duration_unit(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "topic.segment_ms = 5 weeks\n", path, err, sizeof err));
    assert_error_at(err, path, 1,
                    "key \"topic.segment_ms\": value \"5 weeks\" is not a duration "
                    "(milliseconds, or a number with unit ms, s, m, h, d)");
    srl_config_free(cfg);
}

/* A duration with a unit is stored in milliseconds. */
static void config_duration_accepts_units(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_true(load_text(cfg,
                          "topic.delete_retention_ms = 14d\nproducer.poll_interval_ms = 250ms\n",
                          path, err, sizeof err));
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_DELETE_RETENTION_MS), 14LL * 86400000);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_PRODUCER_POLL_INTERVAL_MS), 250);
    srl_config_free(cfg);
}

/* An enum value that is not a choice is rejected with the choices. */
static void config_load_file_rejects_bad_enum_value(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char path[64], err[512];
    assert_false(load_text(cfg, "role = hubb\n", path, err, sizeof err));
    assert_error_at(err, path, 1, "key \"role\": value \"hubb\" is not one of hub|spoke");
    srl_config_free(cfg);
}

/* A bool accepts the usual spellings and nothing else. */
static void config_bool_rejects_other_words(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_BRIDGE);
    char err[512];
    assert_true(srl_config_set_override(cfg, "bridge.plain_http=yes", err, sizeof err));
    assert_true(srl_config_bool(cfg, SRL_KEY_BRIDGE_PLAIN_HTTP));
    assert_false(srl_config_set_override(cfg, "bridge.plain_http=maybe", err, sizeof err));
    assert_string_equal(err, "-X: key \"bridge.plain_http\": value \"maybe\" is not a boolean "
                             "(true|false|yes|no|on|off|1|0)");
    srl_config_free(cfg);
}

/* A file that does not exist is an error naming the file. */
static void config_load_file_reports_missing_file(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char err[512];
    assert_false(srl_config_load_file(cfg, "/nonexistent/sysrepl.conf", err, sizeof err));
    assert_string_equal(err, "/nonexistent/sysrepl.conf: cannot open config file: "
                             "No such file or directory");
    srl_config_free(cfg);
}

/* The same key twice in one file is an error naming both lines. */
static void config_load_file_rejects_duplicate_key(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "role = hub\n\nrole = spoke\n", path, err, sizeof err));
    assert_error_at(err, path, 3, "key \"role\" given twice (first at line 1)");
    srl_config_free(cfg);
}

/* The same kafka.* property twice in one file is a duplicate too. */
static void config_load_file_rejects_duplicate_kafka_key(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "kafka.acks = all\nkafka.acks = 1\n", path, err, sizeof err));
    assert_error_at(err, path, 2, "key \"kafka.acks\" given twice (first at line 1)");
    srl_config_free(cfg);
}

/* A line with no '=' is a syntax error naming the line. */
static void config_load_file_rejects_line_without_equals(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "role hub\n", path, err, sizeof err));
    assert_error_at(err, path, 1, "expected \"key = value\"");
    srl_config_free(cfg);
}

/* An unterminated quote is a syntax error naming the key. */
static void config_load_file_rejects_unterminated_quote(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "store.dsn = \"host=x\n", path, err, sizeof err));
    assert_error_at(err, path, 1, "key \"store.dsn\": missing closing quote");
    srl_config_free(cfg);
}

/* A -X override beats the file, whatever the order on the command line,
 * and the consumed arguments leave argv. */
static void config_parse_args_override_wins_over_file(void **state)
{
    (void)state;
    char path[64], err[512] = "";
    write_tmp("topic.partitions = 6\nrole = spoke\n", path);
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char *argv[] = {"sysrepl-producer",    "-X",   "topic.partitions=9",
                    "--verbose",           "-c",   path,
                    "-Xinstance.id=hub-7", "rest", NULL};
    int argc = 8;
    bool ok = srl_config_parse_args(cfg, &argc, argv, err, sizeof err);
    unlink(path);
    assert_true(ok);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_TOPIC_PARTITIONS), 9);
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_ROLE), SRL_ROLE_SPOKE);
    assert_string_equal(srl_config_str(cfg, SRL_KEY_INSTANCE_ID), "hub-7");
    assert_int_equal(argc, 3);
    assert_string_equal(argv[0], "sysrepl-producer");
    assert_string_equal(argv[1], "--verbose");
    assert_string_equal(argv[2], "rest");
    assert_null(argv[3]);
    srl_config_free(cfg);
}

/* --set is -X spelled long, in both forms, and needs its key=value. */
static void config_parse_args_takes_set_as_long_x(void **state)
{
    (void)state;
    char err[512];
    srl_config_t *cfg = srl_config_new(SRL_PROG_CLI);
    char *argv[] = {"sysrepl", "--set", "role=spoke", "status", "--set=topic.prefix=p", NULL};
    int argc = 5;
    assert_true(srl_config_parse_args(cfg, &argc, argv, err, sizeof err));
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_ROLE), SRL_ROLE_SPOKE);
    assert_string_equal(srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX), "p");
    assert_int_equal(argc, 2);
    assert_string_equal(argv[1], "status");
    char *argv2[] = {"sysrepl", "--set", NULL};
    argc = 2;
    assert_false(srl_config_parse_args(cfg, &argc, argv2, err, sizeof err));
    assert_string_equal(err, "--set needs key=value");
    srl_config_free(cfg);
}

/* Arguments after "--" are the program's, even if they look like ours. */
static void config_parse_args_stops_at_double_dash(void **state)
{
    (void)state;
    char err[512];
    srl_config_t *cfg = srl_config_new(SRL_PROG_CLI);
    char *argv[] = {"sysrepl", "--config=/nonexistent", "--", "-X", "role=spoke", NULL};
    int argc = 5;
    /* The file is missing, so parsing fails; but only after splitting. */
    assert_false(srl_config_parse_args(cfg, &argc, argv, err, sizeof err));
    assert_string_equal(err, "/nonexistent: cannot open config file: No such file or directory");
    assert_int_equal(argc, 4);
    assert_string_equal(argv[1], "--");
    assert_string_equal(argv[2], "-X");
    srl_config_free(cfg);
}

/* A -c without a file name is an error, not a silent default. */
static void config_parse_args_rejects_config_without_file(void **state)
{
    (void)state;
    char err[512];
    srl_config_t *cfg = srl_config_new(SRL_PROG_CLI);
    char *argv[] = {"sysrepl", "-c", NULL};
    int argc = 2;
    assert_false(srl_config_parse_args(cfg, &argc, argv, err, sizeof err));
    assert_string_equal(err, "-c needs a file name");
    srl_config_free(cfg);
}

/* A bad -X value names "-X" instead of a file and line. */
static void config_override_error_names_dash_x(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char err[512];
    assert_false(srl_config_set_override(cfg, "topic.partitions=abc", err, sizeof err));
    assert_string_equal(err, "-X: key \"topic.partitions\": value \"abc\" is not an integer");
    assert_false(srl_config_set_override(cfg, "role", err, sizeof err));
    assert_string_equal(err, "-X: expected key=value, got \"role\"");
    srl_config_free(cfg);
}

/* A kafka.* value librdkafka rejects is reported at load time with the
 * line, the key and librdkafka's reason. */
static void config_load_file_rejects_bad_kafka_value(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char path[64], err[512];
    assert_false(load_text(cfg, "kafka.bootstrap.servers = localhost:9092\nkafka.acks = banana\n",
                           path, err, sizeof err));
    assert_error_at(err, path, 2,
                    "key \"kafka.acks\": value \"banana\": Invalid value for configuration "
                    "property \"request.required.acks\"");
    srl_config_free(cfg);
}

/* A property librdkafka does not know is an unknown key. */
static void config_override_rejects_unknown_kafka_property(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char err[512];
    assert_false(srl_config_set_override(cfg, "kafka.no.such.thing=1", err, sizeof err));
    assert_string_equal(err, "-X: unknown key \"kafka.no.such.thing\": No such configuration "
                             "property: \"no.such.thing\"");
    srl_config_free(cfg);
}

/* kafka.* properties reach rd_kafka_conf in the order given, -X replacing
 * a file's value in place. */
static void config_kafka_conf_applies_properties(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char path[64], err[512];
    assert_true(load_text(cfg, "kafka.bootstrap.servers = b1:9092\nkafka.client.id = spoke-a\n",
                          path, err, sizeof err));
    assert_true(srl_config_set_override(cfg, "kafka.bootstrap.servers=b2:9092", err, sizeof err));
    assert_int_equal(srl_config_kafka_count(cfg), 2);
    const char *name, *value;
    assert_true(srl_config_kafka_get(cfg, 0, &name, &value));
    assert_string_equal(name, "bootstrap.servers");
    assert_string_equal(value, "b2:9092");
    assert_true(srl_config_kafka_is_set(cfg, "client.id"));

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_true(srl_config_kafka_conf(cfg, conf, err, sizeof err));
    char got[64];
    size_t got_size = sizeof got;
    assert_int_equal(rd_kafka_conf_get(conf, "client.id", got, &got_size), RD_KAFKA_CONF_OK);
    assert_string_equal(got, "spoke-a");
    rd_kafka_conf_destroy(conf);
    srl_config_free(cfg);
}

/* A key of another program is accepted, so one file serves a hub's
 * producer and bridge; its value is still checked. */
static void config_load_file_accepts_valid_key_of_other_program(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char path[64], err[512];
    assert_true(load_text(cfg, "bridge.port = 9000\n", path, err, sizeof err));
    srl_config_free(cfg);
}

/* ... but a bad value of such a key still stops the program. */
static void config_load_file_rejects_bad_value_of_other_program_key(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char path[64], err[512];
    assert_false(load_text(cfg, "bridge.port = 99999\n", path, err, sizeof err));
    assert_non_null(strstr(err, "bridge.port"));
    srl_config_free(cfg);
}

/* A list keeps its items in order and sets one mask bit per choice. */
static void config_list_parses_items_and_mask(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char err[512];
    assert_true(srl_config_set_override(cfg, "replicate= policies , assessments", err, sizeof err));
    const char *const *items;
    assert_int_equal(srl_config_list(cfg, SRL_KEY_REPLICATE, &items), 2);
    assert_string_equal(items[0], "policies");
    assert_string_equal(items[1], "assessments");
    assert_int_equal(srl_config_mask(cfg, SRL_KEY_REPLICATE),
                     SRL_REPLICATE_ASSESSMENTS | SRL_REPLICATE_POLICIES);

    assert_true(srl_config_set_override(cfg, "replicate=policies", err, sizeof err));
    assert_int_equal(srl_config_mask(cfg, SRL_KEY_REPLICATE), SRL_REPLICATE_POLICIES);
    srl_config_free(cfg);
}

/* A list item that is not a choice is rejected, naming the item. */
static void config_list_rejects_unknown_item(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char err[512];
    assert_false(srl_config_set_override(cfg, "replicate=assessments,polices", err, sizeof err));
    assert_string_equal(err, "-X: key \"replicate\": value \"assessments,polices\": "
                             "\"polices\" is not one of assessments|policies");
    srl_config_free(cfg);
}

/* A list item given twice, an empty item and an empty list are rejected. */
static void config_list_rejects_duplicate_and_empty_items(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char err[512];
    assert_false(srl_config_set_override(cfg, "replicate=policies,policies", err, sizeof err));
    assert_non_null(strstr(err, "\"policies\" is listed twice"));
    assert_false(srl_config_set_override(cfg, "replicate=policies,", err, sizeof err));
    assert_non_null(strstr(err, "has an empty item"));
    assert_false(srl_config_set_override(cfg, "replicate=", err, sizeof err));
    assert_string_equal(err, "-X: key \"replicate\": value \"\" must name at least 1 of "
                             "assessments|policies");
    srl_config_free(cfg);
}

/* is_set tells given keys from defaults; kafka_is_set the same for the
 * kafka.* properties, by name. */
static void config_is_set_only_for_given_keys(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char err[512];
    assert_true(srl_config_set_override(cfg, "topic.partitions=3", err, sizeof err));
    assert_true(srl_config_is_set(cfg, SRL_KEY_TOPIC_PARTITIONS));
    assert_false(srl_config_is_set(cfg, SRL_KEY_TOPIC_PREFIX));
    assert_false(srl_config_kafka_is_set(cfg, "acks"));
    assert_true(srl_config_set_override(cfg, "kafka.acks=all", err, sizeof err));
    assert_true(srl_config_kafka_is_set(cfg, "acks"));
    srl_config_free(cfg);
}

/* Every handle indexes its own row: row i of the table is the row of
 * handle i, and each handle is its key's name upper-cased with '.' and '-'
 * as '_' (so SRL_KEY_CONSUMER_BATCH_SIZE reads "consumer.batch_size"). Both
 * come from sysrepl/config_keys.def, so this mostly checks that a row's
 * handle and name were not written differently. */
static void config_key_handles_match_table_names(void **state)
{
    (void)state;
    static const struct {
        srl_key_t key;
        const char *handle, *name;
    } rows[] = {
#define SRL_CONFIG_KEY(handle, name, ...) \
    {                                     \
        handle, #handle, name             \
    }
#include "sysrepl/config_keys.def"
#undef SRL_CONFIG_KEY
    };
    assert_int_equal(sizeof rows / sizeof rows[0], SRL_KEY__COUNT);
    assert_int_equal(srl_config_key_count, SRL_KEY__COUNT);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const srl_config_key_t *k = &srl_config_keys[rows[i].key];
        assert_int_equal(rows[i].key, i);
        assert_string_equal(k->name, rows[i].name);
        /* The handle the name asks for; "kafka." gives SRL_KEY_KAFKA. */
        char expected[128] = "SRL_KEY_";
        size_t at = strlen(expected);
        for (const char *c = k->name; *c != '\0' && at + 1 < sizeof expected; c++)
            expected[at++] = *c == '.' || *c == '-' ? '_' : (char)toupper((unsigned char)*c);
        expected[at] = '\0';
        if (k->type == SRL_CONF_KAFKA && expected[at - 1] == '_')
            expected[at - 1] = '\0';
        assert_string_equal(rows[i].handle, expected);
        if (k->type != SRL_CONF_KAFKA)
            assert_ptr_equal(srl_config_key_find(k->name), k);
    }
    assert_string_equal(srl_config_keys[SRL_KEY_CONSUMER_BATCH_SIZE].name, "consumer.batch_size");
    assert_int_equal(srl_config_keys[SRL_KEY_KAFKA].type, SRL_CONF_KAFKA);
}

/* instance.id is required by the servers: empty fails naming the key. */
static void config_require_fails_on_empty_value(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    char err[512];
    assert_false(srl_config_require(cfg, SRL_KEY_INSTANCE_ID, err, sizeof err));
    assert_string_equal(err, "key \"instance.id\" is required: set it in the config file or "
                             "with -X instance.id=...");
    assert_true(srl_config_set_override(cfg, "instance.id=hub-1", err, sizeof err));
    assert_true(srl_config_require(cfg, SRL_KEY_INSTANCE_ID, err, sizeof err));
    srl_config_free(cfg);
}

/* The enum constants in config.h and log.h match the table's choices. */
static void config_enum_constants_match_table(void **state)
{
    (void)state;
    static const struct {
        srl_key_t key;
        const char *value;
        int expected;
    } cases[] = {
        {SRL_KEY_ROLE, "hub", SRL_ROLE_HUB},
        {SRL_KEY_ROLE, "spoke", SRL_ROLE_SPOKE},
        {SRL_KEY_TRANSPORT, "kafka", SRL_TRANSPORT_KAFKA},
        {SRL_KEY_TRANSPORT, "http", SRL_TRANSPORT_HTTP},
        {SRL_KEY_VALUE_FORMAT, "single-object", SRL_VALUE_FORMAT_SINGLE_OBJECT},
        {SRL_KEY_VALUE_FORMAT, "confluent", SRL_VALUE_FORMAT_CONFLUENT},
        {SRL_KEY_LOG_LEVEL, "debug", SRL_LOG_DEBUG},
        {SRL_KEY_LOG_LEVEL, "info", SRL_LOG_INFO},
        {SRL_KEY_LOG_LEVEL, "warn", SRL_LOG_WARN},
        {SRL_KEY_LOG_LEVEL, "error", SRL_LOG_ERROR},
        {SRL_KEY_LOG_FORMAT, "logfmt", SRL_LOG_FORMAT_LOGFMT},
        {SRL_KEY_LOG_FORMAT, "json", SRL_LOG_FORMAT_JSON},
    };
    srl_config_t *cfg = srl_config_new(SRL_PROG_ALL);
    char kv[64], err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(kv, sizeof kv, "%s=%s", srl_config_keys[cases[i].key].name, cases[i].value);
        assert_true(srl_config_set_override(cfg, kv, err, sizeof err));
        assert_int_equal(srl_config_enum(cfg, cases[i].key), cases[i].expected);
    }
    assert_true(srl_config_set_override(cfg, "replicate=assessments", err, sizeof err));
    assert_int_equal(srl_config_mask(cfg, SRL_KEY_REPLICATE), SRL_REPLICATE_ASSESSMENTS);
    srl_config_free(cfg);
}

/* Load an example config, optionally with every "#key = value" line
 * uncommented (so every default is given explicitly). */
static void load_example(unsigned prog, bool uncomment)
{
    char *text = NULL;
    size_t text_size = 0;
    FILE *mem = open_memstream(&text, &text_size);
    assert_non_null(mem);
    srl_config_write_example(mem, prog);
    fclose(mem);
    if (uncomment) {
        /* Setting lines are "#key = value"; prose lines are "# text". */
        char *w = text;
        for (char *r = text; *r; r++) {
            bool line_start = r == text || r[-1] == '\n';
            if (line_start && r[0] == '#' && r[1] != ' ' && r[1] != '\n' && r[1] != '\0')
                continue;
            *w++ = *r;
        }
        *w = '\0';
    }
    srl_config_t *cfg = srl_config_new(prog);
    char path[64], err[512] = "";
    bool ok = load_text(cfg, text, path, err, sizeof err);
    if (!ok)
        print_error("example for 0x%x: %s\n", prog, err);
    assert_true(ok);
    srl_config_free(cfg);
    free(text);
}

/* Every program's example config loads as written (all commented out). */
static void config_example_loads_cleanly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof each_program / sizeof each_program[0]; i++)
        load_example(each_program[i], false);
}

/* Uncommenting every setting of an example gives a valid config too: the
 * defaults, as printed, parse. */
static void config_example_uncommented_loads_cleanly(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof each_program / sizeof each_program[0]; i++)
        load_example(each_program[i], true);
}

/* The example documents each key with its type, default and choices. */
static void config_example_describes_each_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t text_size = 0;
    FILE *mem = open_memstream(&text, &text_size);
    srl_config_write_example(mem, SRL_PROG_PRODUCER);
    fclose(mem);
    assert_non_null(strstr(text, "# Type: enum, one of hub|spoke. Default: hub.\n#role = hub\n"));
    assert_non_null(strstr(text, "# Type: int, 1..1024. Default: 3.\n#topic.partitions = 3\n"));
    assert_non_null(strstr(text, "#kafka.bootstrap.servers = localhost:9092\n"));
    assert_null(strstr(text, "bridge.port")); /* a bridge key */
    free(text);
}

/* --help lists the program's keys only. */
static void config_print_help_lists_program_keys(void **state)
{
    (void)state;
    char *text = NULL;
    size_t text_size = 0;
    FILE *mem = open_memstream(&text, &text_size);
    srl_config_print_help(mem, SRL_PROG_BRIDGE);
    fclose(mem);
    assert_non_null(strstr(text, "  bridge.port=8443  (int, 1..65535)\n"));
    assert_null(strstr(text, "consumer.batch_size"));
    free(text);
}

/* The effective config never shows a secret. */
static void config_write_effective_redacts_secrets(void **state)
{
    (void)state;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    char err[512];
    assert_true(srl_config_set_override(cfg, "bridge.api_key=s3cr3t", err, sizeof err));
    assert_true(srl_config_set_override(cfg, "kafka.sasl.password=hunter2", err, sizeof err));
    char *text = NULL;
    size_t text_size = 0;
    FILE *mem = open_memstream(&text, &text_size);
    srl_config_write_effective(cfg, mem);
    fclose(mem);
    assert_null(strstr(text, "s3cr3t"));
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "# bridge.api_key = <redacted>\n"));
    assert_non_null(strstr(text, "topic.prefix = sysrepl\n"));
    free(text);
    srl_config_free(cfg);
}

/* A reload may change reloadable keys only. */
static void config_check_reload_rejects_restart_key(void **state)
{
    (void)state;
    srl_config_t *running = srl_config_new(SRL_PROG_PRODUCER);
    srl_config_t *reloaded = srl_config_new(SRL_PROG_PRODUCER);
    char err[512];
    assert_true(srl_config_set_override(reloaded, "log.level=debug", err, sizeof err));
    assert_true(srl_config_check_reload(running, reloaded, err, sizeof err));
    assert_true(srl_config_set_override(reloaded, "topic.prefix=other", err, sizeof err));
    assert_false(srl_config_check_reload(running, reloaded, err, sizeof err));
    assert_string_equal(err, "key \"topic.prefix\" changed from \"sysrepl\" to \"other\"; it "
                             "needs a restart");
    srl_config_free(running);
    srl_config_free(reloaded);
}

/* Rewrite path in place (a reload reads the same name again). */
static void rewrite(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Everything the log wrote to capture, malloc'd. */
static char *read_all(FILE *capture)
{
    long size = ftell(capture);
    char *text = calloc(1, (size_t)size + 1);
    rewind(capture);
    assert_int_equal(fread(text, 1, (size_t)size, capture), (size_t)size);
    return text;
}

/* SIGHUP policy: a changed reloadable key is applied and logged; a changed
 * key that needs a restart keeps its running value and says so. */
static void config_reload_applies_reloadable_and_keeps_restart_keys(void **state)
{
    (void)state;
    char path[64], err[512];
    write_tmp("log.level = info\ntopic.prefix = a\nstats.interval_ms = 10s\n", path);
    srl_config_t *cfg = srl_config_new(SRL_PROG_PRODUCER);
    assert_true(srl_config_load_file(cfg, path, err, sizeof err));
    rewrite(path, "log.level = warn\ntopic.prefix = b\nstats.interval_ms = 2s\n"
                  "kafka.acks = 1\nconsumer.batch_size = 5\n");
    FILE *capture = tmpfile();
    srl_log_set_stream(capture);
    srl_config_reload_t r;
    assert_true(srl_config_reload(cfg, "producer", &r, err, sizeof err));
    srl_log_set_stream(NULL);
    assert_int_equal(r.applied, 2);
    assert_int_equal(r.restart, 2); /* topic.prefix, kafka.acks; consumer.* is not ours */
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_LOG_LEVEL), SRL_LOG_WARN);
    assert_int_equal(srl_log_get_level(), SRL_LOG_WARN);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_STATS_INTERVAL_MS), 2000);
    assert_string_equal(srl_config_str(cfg, SRL_KEY_TOPIC_PREFIX), "a");
    char *text = read_all(capture);
    assert_non_null(strstr(text, "msg=\"config key changed; applied\" key=stats.interval_ms "
                                 "old=10s new=2s\n"));
    assert_non_null(strstr(text, "msg=\"config key changed; needs a restart\" key=topic.prefix "
                                 "running=a file=b\n"));
    assert_non_null(strstr(text, "msg=\"config key changed; needs a restart\" key=kafka.acks "
                                 "change=added\n"));
    assert_non_null(strstr(text, " applied=2 needs_restart=2\n"));
    assert_null(strstr(text, "consumer.batch_size"));
    free(text);
    fclose(capture);
    srl_log_set_level(SRL_LOG_INFO);
    srl_config_free(cfg);
    unlink(path);
}

/* A reload that does not load changes nothing and names file:line. */
static void config_reload_broken_file_changes_nothing(void **state)
{
    (void)state;
    char path[64], err[512], want[128];
    write_tmp("stats.interval_ms = 10s\n", path);
    srl_config_t *cfg = srl_config_new(SRL_PROG_BRIDGE);
    assert_true(srl_config_load_file(cfg, path, err, sizeof err));
    rewrite(path, "stats.interval_ms = 2s\nlog.level = loud\n");
    FILE *capture = tmpfile();
    srl_log_set_stream(capture);
    assert_false(srl_config_reload(cfg, "bridge", NULL, err, sizeof err));
    srl_log_set_stream(NULL);
    snprintf(want, sizeof want, "%s:2: key \"log.level\"", path);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_STATS_INTERVAL_MS), 10000);
    char *text = read_all(capture);
    assert_non_null(strstr(text, "level=error component=bridge msg=\"config not reloaded; the "
                                 "running config stays\" reason="));
    free(text);
    fclose(capture);
    srl_config_free(cfg);
    unlink(path);
}

/* A reload reads the -X overrides again too: they still win over the file. */
static void config_reload_keeps_overrides_over_file(void **state)
{
    (void)state;
    char path[64], err[512];
    write_tmp("log.level = info\n", path);
    char *argv[] = {"prog", "-c", path, "-X", "log.level=error", NULL};
    int argc = 5;
    srl_config_t *cfg = srl_config_new(SRL_PROG_CONSUMER);
    assert_true(srl_config_parse_args(cfg, &argc, argv, err, sizeof err));
    rewrite(path, "log.level = debug\nconsumer.batch_size = 7\n");
    FILE *capture = tmpfile();
    srl_log_set_stream(capture);
    srl_config_reload_t r;
    assert_true(srl_config_reload(cfg, "consumer", &r, err, sizeof err));
    srl_log_set_stream(NULL);
    assert_int_equal(r.applied, 1);
    assert_int_equal(srl_config_enum(cfg, SRL_KEY_LOG_LEVEL), SRL_LOG_ERROR);
    assert_int_equal(srl_config_int(cfg, SRL_KEY_CONSUMER_BATCH_SIZE), 7);
    fclose(capture);
    srl_log_set_level(SRL_LOG_INFO);
    srl_config_free(cfg);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_load_file_accepts_comments_quotes_and_blank_lines),
        cmocka_unit_test(config_reload_applies_reloadable_and_keeps_restart_keys),
        cmocka_unit_test(config_reload_broken_file_changes_nothing),
        cmocka_unit_test(config_reload_keeps_overrides_over_file),
        cmocka_unit_test(config_new_holds_typed_defaults),
        cmocka_unit_test(config_load_file_rejects_unknown_key),
        cmocka_unit_test(config_load_file_rejects_non_integer),
        cmocka_unit_test(config_load_file_rejects_partial_number),
        cmocka_unit_test(config_load_file_rejects_out_of_range),
        cmocka_unit_test(config_load_file_rejects_overflowing_number),
        cmocka_unit_test(config_load_file_rejects_bad_duration_unit),
        cmocka_unit_test(config_duration_accepts_units),
        cmocka_unit_test(config_load_file_rejects_bad_enum_value),
        cmocka_unit_test(config_bool_rejects_other_words),
        cmocka_unit_test(config_load_file_reports_missing_file),
        cmocka_unit_test(config_load_file_rejects_duplicate_key),
        cmocka_unit_test(config_load_file_rejects_duplicate_kafka_key),
        cmocka_unit_test(config_load_file_rejects_line_without_equals),
        cmocka_unit_test(config_load_file_rejects_unterminated_quote),
        cmocka_unit_test(config_parse_args_override_wins_over_file),
        cmocka_unit_test(config_parse_args_takes_set_as_long_x),
        cmocka_unit_test(config_parse_args_stops_at_double_dash),
        cmocka_unit_test(config_parse_args_rejects_config_without_file),
        cmocka_unit_test(config_override_error_names_dash_x),
        cmocka_unit_test(config_load_file_rejects_bad_kafka_value),
        cmocka_unit_test(config_override_rejects_unknown_kafka_property),
        cmocka_unit_test(config_kafka_conf_applies_properties),
        cmocka_unit_test(config_load_file_accepts_valid_key_of_other_program),
        cmocka_unit_test(config_load_file_rejects_bad_value_of_other_program_key),
        cmocka_unit_test(config_list_parses_items_and_mask),
        cmocka_unit_test(config_list_rejects_unknown_item),
        cmocka_unit_test(config_list_rejects_duplicate_and_empty_items),
        cmocka_unit_test(config_is_set_only_for_given_keys),
        cmocka_unit_test(config_require_fails_on_empty_value),
        cmocka_unit_test(config_enum_constants_match_table),
        cmocka_unit_test(config_key_handles_match_table_names),
        cmocka_unit_test(config_example_loads_cleanly),
        cmocka_unit_test(config_example_uncommented_loads_cleanly),
        cmocka_unit_test(config_example_describes_each_key),
        cmocka_unit_test(config_print_help_lists_program_keys),
        cmocka_unit_test(config_write_effective_redacts_secrets),
        cmocka_unit_test(config_check_reload_rejects_restart_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
