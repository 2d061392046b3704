/*
 * test_log.c - logfmt lines: layout, quoting and escaping, the level
 * threshold, and the sink hook. Lines are captured with
 * srl_log_set_stream() on a tmpfile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysrepl/log.h"

static FILE *capture;

static int setup(void **state)
{
    (void)state;
    capture = tmpfile();
    if (capture == NULL)
        return -1;
    srl_log_set_stream(capture);
    srl_log_set_level(SRL_LOG_INFO);
    srl_log_set_sink(NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srl_log_set_stream(NULL);
    srl_log_set_sink(NULL, NULL);
    fclose(capture);
    return 0;
}

/* Everything written so far, malloc'd. */
static char *captured(void)
{
    long size = ftell(capture);
    char *text = calloc(1, (size_t)size + 1);
    rewind(capture);
    assert_int_equal(fread(text, 1, (size_t)size, capture), (size_t)size);
    return text;
}

/* The part of a line after "ts=... ", which varies. */
static const char *after_ts(const char *line)
{
    const char *sp = strchr(line, ' ');
    assert_non_null(sp);
    return sp + 1;
}

/* A line is ts, level, component, msg, then the caller's key=value tail. */
static void log_line_has_logfmt_layout(void **state)
{
    (void)state;
    srl_log(SRL_LOG_WARN, "consumer", "record dead-lettered",
            "topic=%s partition=%d offset=%lld reason=%s", srl_log_q("x"), 0, 1234LL,
            srl_log_q("unknown schema fingerprint 9f3c"));
    char *text = captured();
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                             "\\.[0-9]{3}Z ",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
    assert_string_equal(after_ts(text),
                        "level=warn component=consumer msg=\"record dead-lettered\" topic=x "
                        "partition=0 offset=1234 reason=\"unknown schema fingerprint 9f3c\"\n");
    free(text);
}

/* Without a tail the line ends after msg; a one-word msg is not quoted. */
static void log_line_without_tail_ends_after_msg(void **state)
{
    (void)state;
    srl_log(SRL_LOG_INFO, "producer", "started", NULL);
    char *text = captured();
    assert_string_equal(after_ts(text), "level=info component=producer msg=started\n");
    free(text);
}

/* Quotes, backslashes, newlines and control bytes are escaped inside
 * quotes; UTF-8 passes through. */
static void log_quote_escapes_special_characters(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(srl_log_quote(buf, sizeof buf, "plain"), 5);
    assert_string_equal(buf, "plain");
    srl_log_quote(buf, sizeof buf, "");
    assert_string_equal(buf, "\"\"");
    srl_log_quote(buf, sizeof buf, "a=b");
    assert_string_equal(buf, "\"a=b\"");
    srl_log_quote(buf, sizeof buf, "say \"hi\"\\\n\t\x01");
    assert_string_equal(buf, "\"say \\\"hi\\\"\\\\\\n\\t\\u0001\"");
    srl_log_quote(buf, sizeof buf, "caf\xc3\xa9");
    assert_string_equal(buf, "caf\xc3\xa9");
}

/* A value too long for the buffer is cut, stays a closed quoted string,
 * and reports the full length. */
static void log_quote_truncates_to_closed_string(void **state)
{
    (void)state;
    char buf[12];
    size_t full = srl_log_quote(buf, sizeof buf, "hello wide world");
    assert_int_equal(full, 18);
    assert_string_equal(buf, "\"hello ...\"");
}

/* Truncation never splits a UTF-8 character. */
static void log_quote_truncation_keeps_utf8_whole(void **state)
{
    (void)state;
    char buf[10];
    srl_log_quote(buf, sizeof buf, "a b\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_string_equal(buf, "\"a b...\"");
}

/* A raw newline in the tail cannot forge a second line. */
static void log_tail_newline_stays_on_one_line(void **state)
{
    (void)state;
    srl_log(SRL_LOG_ERROR, "bridge", "bad request", "reason=%s", "x\nlevel=info");
    char *text = captured();
    assert_string_equal(after_ts(text),
                        "level=error component=bridge msg=\"bad request\" reason=x level=info\n");
    free(text);
}

/* Lines below the threshold are dropped; set_level moves it. */
static void log_level_threshold_drops_lower_levels(void **state)
{
    (void)state;
    srl_log(SRL_LOG_DEBUG, "t", "hidden", NULL);
    srl_log_set_level(SRL_LOG_DEBUG);
    assert_true(srl_log_enabled(SRL_LOG_DEBUG));
    srl_log(SRL_LOG_DEBUG, "t", "shown", NULL);
    srl_log_set_level(SRL_LOG_ERROR);
    srl_log(SRL_LOG_WARN, "t", "hidden", NULL);
    char *text = captured();
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "level=debug component=t msg=shown\n"));
    free(text);
}

/* Level names parse back to their levels. */
static void log_level_parse_accepts_names(void **state)
{
    (void)state;
    srl_log_level_t lvl;
    assert_true(srl_log_level_parse("WARN", &lvl));
    assert_int_equal(lvl, SRL_LOG_WARN);
    assert_string_equal(srl_log_level_name(SRL_LOG_ERROR), "error");
    assert_false(srl_log_level_parse("verbose", &lvl));
}

typedef struct {
    int calls;
    srl_log_level_t lvl;
    char component[32], msg[64], kv[128];
} sink_seen_t;

static void record_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                        const char *kv)
{
    sink_seen_t *seen = ctx;
    seen->calls++;
    seen->lvl = lvl;
    snprintf(seen->component, sizeof seen->component, "%s", component);
    snprintf(seen->msg, sizeof seen->msg, "%s", msg);
    snprintf(seen->kv, sizeof seen->kv, "%s", kv);
}

/* The sink gets level, component, msg and the formatted tail. */
static void log_sink_receives_parts(void **state)
{
    (void)state;
    sink_seen_t seen = {0};
    srl_log_set_sink(record_sink, &seen);
    srl_log(SRL_LOG_WARN, "consumer", "lag high", "lag=%d", 42);
    srl_log(SRL_LOG_DEBUG, "consumer", "below threshold", NULL);
    srl_log_set_sink(NULL, NULL);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.lvl, SRL_LOG_WARN);
    assert_string_equal(seen.component, "consumer");
    assert_string_equal(seen.msg, "lag high");
    assert_string_equal(seen.kv, "lag=42");
}

static void logging_sink(void *ctx, srl_log_level_t lvl, const char *component, const char *msg,
                         const char *kv)
{
    (void)lvl, (void)component, (void)msg, (void)kv;
    int *calls = ctx;
    (*calls)++;
    srl_log(SRL_LOG_ERROR, "sink", "store write failed", NULL);
}

/* A sink that logs neither deadlocks nor recurses: its line goes to the
 * stream only. */
static void log_sink_logging_does_not_recurse(void **state)
{
    (void)state;
    int calls = 0;
    srl_log_set_sink(logging_sink, &calls);
    srl_log(SRL_LOG_INFO, "t", "event", NULL);
    srl_log_set_sink(NULL, NULL);
    assert_int_equal(calls, 1);
    char *text = captured();
    assert_non_null(strstr(text, "msg=event\n"));
    assert_non_null(strstr(text, "component=sink msg=\"store write failed\"\n"));
    free(text);
}

/* A tail longer than the stack buffers is written whole. */
static void log_long_tail_written_whole(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    srl_log(SRL_LOG_INFO, "t", "big", "v=%s end=1", big);
    char *text = captured();
    assert_non_null(strstr(text, big));
    assert_non_null(strstr(text, " end=1\n"));
    free(text);
}

#define THREADS 8
#define LINES 200

static void *log_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < LINES; i++)
        srl_log(SRL_LOG_INFO, "thread", "tick", "i=%d pad=%s", i,
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return NULL;
}

/* Lines from many threads never interleave. */
static void log_concurrent_lines_stay_whole(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = captured();
    int lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        assert_int_equal(strncmp(line, "ts=", 3), 0);
        assert_non_null(strstr(line, " pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                     "xxxxxxxxxxxxxxxxxxxxxxx"));
        lines++;
    }
    assert_int_equal(lines, THREADS * LINES);
    free(text);
}

/* A value printed without srl_log_q that holds spaces is quoted whole
 * (the bridge's `reason=Broker: Not leader for partition`). */
static void log_unquoted_value_with_spaces_is_quoted(void **state)
{
    (void)state;
    srl_log(SRL_LOG_WARN, "bridge", "tail consumer error", "topic=%s partition=%d reason=%s", "t",
            2, "Broker: Not leader for partition");
    char *text = captured();
    assert_string_equal(after_ts(text), "level=warn component=bridge msg=\"tail consumer error\" "
                                        "topic=t partition=2 "
                                        "reason=\"Broker: Not leader for partition\"\n");
    free(text);
}

/* Text before the first key=value is kept, under detail. */
static void log_text_before_first_key_goes_under_detail(void **state)
{
    (void)state;
    srl_log(SRL_LOG_ERROR, "t", "usage", "(see --help) argument=%s", "-z");
    char *text = captured();
    assert_string_equal(after_ts(text),
                        "level=error component=t msg=usage detail=\"(see --help)\" argument=-z\n");
    free(text);
}

/* A value quoted with srl_log_q comes out exactly as srl_log_q wrote it. */
static void log_quoted_value_passes_unchanged(void **state)
{
    (void)state;
    const char *v = "a \"b\" \\ c\td=e \x01 \xc3\xa9";
    char want[256];
    snprintf(want, sizeof want, "level=info component=t msg=m v=%s n=1\n", srl_log_q(v));
    srl_log(SRL_LOG_INFO, "t", "m", "v=%s n=%d", srl_log_q(v), 1);
    char *text = captured();
    assert_string_equal(after_ts(text), want);
    free(text);
}

/* log.format = json: the same fields, one object per line; numbers stay
 * numbers, everything else is a string. */
static void log_json_format_writes_same_fields(void **state)
{
    (void)state;
    srl_log_set_format(SRL_LOG_FORMAT_JSON);
    srl_log(SRL_LOG_WARN, "consumer", "record dead-lettered", "topic=%s offset=%d reason=%s id=%s",
            "x", 1234, srl_log_q("bad \"schema\"\n"), "0x1f");
    srl_log_set_format(SRL_LOG_FORMAT_LOGFMT);
    char *text = captured();
    const char *rest = strstr(text, "\",\"level\"");
    assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
    assert_non_null(rest);
    assert_string_equal(rest, "\",\"level\":\"warn\",\"component\":\"consumer\","
                              "\"msg\":\"record dead-lettered\",\"topic\":\"x\",\"offset\":1234,"
                              "\"reason\":\"bad \\\"schema\\\"\\n\",\"id\":\"0x1f\"}\n");
    free(text);
}

int main(void)
{
    /* The exact lines here are without the test-suite marker of repaired
     * values (srl_log_unquoted=, only with SRL_LOG_DIR; log.h). */
    unsetenv("SRL_LOG_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(log_line_has_logfmt_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(log_line_without_tail_ends_after_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(log_quote_escapes_special_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(log_quote_truncates_to_closed_string, setup, teardown),
        cmocka_unit_test_setup_teardown(log_quote_truncation_keeps_utf8_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(log_tail_newline_stays_on_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(log_level_threshold_drops_lower_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(log_level_parse_accepts_names, setup, teardown),
        cmocka_unit_test_setup_teardown(log_sink_receives_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(log_sink_logging_does_not_recurse, setup, teardown),
        cmocka_unit_test_setup_teardown(log_long_tail_written_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(log_concurrent_lines_stay_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(log_unquoted_value_with_spaces_is_quoted, setup, teardown),
        cmocka_unit_test_setup_teardown(log_text_before_first_key_goes_under_detail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(log_quoted_value_passes_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(log_json_format_writes_same_fields, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
