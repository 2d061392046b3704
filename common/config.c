/*
 * config.c - the configuration loader: defaults from the key table, one
 * file, -X overrides; typed and validated at load time; plus the generated
 * --help, example config and markdown reference (see config.h).
 *
 * Every value, the defaults included, goes through parse_value(), so what
 * the table promises (types, ranges, choices) is what the loader enforces.
 * Values live in one slot per table row; the accessors take a handle
 * (srl_key_t), the slot's index, and only the file, -X (config_set) and
 * the kafka.* properties are looked up by name.
 */
#include "sysrepl/config.h"

#include "sysrepl/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The typed value of one key. */
typedef struct {
    bool set;      /* given in a file or with -X */
    int file_line; /* line in the file being loaded that set it, else 0 */
    char *text;    /* as given (enum, list: canonical spelling) */
    long long num; /* int, duration_ms; bool 0/1; enum index */
    char **items;  /* list items, canonical spelling */
    size_t nitems;
    unsigned mask; /* list: bit i = i-th choice present */
} slot_t;

typedef struct {
    char *name; /* without "kafka." */
    char *value;
    int file_line;
} kafka_prop_t;

struct srl_config {
    unsigned progs;
    slot_t *slots; /* one per row of srl_config_keys (the kafka. row unused) */
    kafka_prop_t *kafka;
    size_t nkafka, kafka_cap;
    /* Where the values came from, in order, for srl_config_reload:
     * "F<path>" for a file, "X<key=value>" for an override. */
    char **sources;
    size_t nsources;
};

#define KAFKA_PREFIX "kafka."
#define KAFKA_PREFIX_LEN (sizeof KAFKA_PREFIX - 1)

static const struct {
    unsigned bit;
    const char *program;
    const char *short_name;
} programs[] = {
    {SRL_PROG_PRODUCER, "sysrepl-producer", "producer"},
    {SRL_PROG_CONSUMER, "sysrepl-consumer", "consumer"},
    {SRL_PROG_BRIDGE, "sysrepl-bridge", "bridge"},
    {SRL_PROG_CLI, "sysrepl", "cli"},
};

/* ---- small helpers ------------------------------------------------------ */

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr == NULL || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* A truncated message is still a useful message. */
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* "a, b" list of program names in mask; use_short picks "producer" style. */
static void program_names(unsigned mask, bool use_short, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        if (!(mask & programs[i].bit))
            continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                         use_short ? programs[i].short_name : programs[i].program);
        if (n < 0 || (size_t)n >= size - len)
            return;
        len += (size_t)n;
    }
}

static bool is_kafka_secret(const char *prop)
{
    return strstr(prop, "password") != NULL || strstr(prop, "secret") != NULL ||
           strcmp(prop, "ssl.key.pem") == 0 || strcmp(prop, "sasl.oauthbearer.config") == 0;
}

/* A secret kafka.* value "@/path" is read from that file (kafka.sasl.password
 * = @/etc/sysrepl/kafka.password), so the password is never on a command
 * line nor in the config file. The file's content up to its first line end
 * is the value; a missing, unreadable or empty file is an error naming the
 * key and the path (never the content). The caller frees the result. */
static char *read_secret_file(const char *where, const char *key, const char *path, char *errstr,
                              size_t errstr_size)
{
    char buf[4096];
    const char *sep = where[0] ? ": " : "";
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        set_err(errstr, errstr_size, "%s%skey \"%s\": cannot read the secret file %s: %s", where,
                sep, key, path, strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool failed = ferror(f) != 0;
    bool too_long = n == sizeof buf - 1 && fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (failed || too_long || buf[0] == '\0') {
        set_err(errstr, errstr_size, "%s%skey \"%s\": the secret file %s is %s", where, sep, key,
                path,
                failed     ? "unreadable"
                : too_long ? "longer than 4095 bytes"
                           : "empty");
        return NULL;
    }
    char *v = strdup(buf);
    memset(buf, 0, sizeof buf);
    if (v == NULL)
        set_err(errstr, errstr_size, "out of memory");
    return v;
}

static const char *type_name(srl_conf_type_t t)
{
    switch (t) {
    case SRL_CONF_STRING:
        return "string";
    case SRL_CONF_INT:
        return "int";
    case SRL_CONF_BOOL:
        return "bool";
    case SRL_CONF_ENUM:
        return "enum";
    case SRL_CONF_LIST:
        return "list";
    case SRL_CONF_DURATION_MS:
        return "duration_ms";
    case SRL_CONF_KAFKA:
        return "kafka";
    }
    return "?";
}

/* Index of s (len bytes) among "a|b|c" choices, case-insensitive, or -1. */
static int choice_index(const char *choices, const char *s, size_t len)
{
    int idx = 0;
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t clen = bar ? (size_t)(bar - p) : strlen(p);
        if (clen == len && strncasecmp(p, s, len) == 0)
            return idx;
        if (bar == NULL)
            return -1;
        p = bar + 1;
    }
}

/* Malloc'd copy of the idx-th choice. */
static char *choice_dup(const char *choices, int idx)
{
    const char *p = choices;
    for (int i = 0; i < idx; i++)
        p = strchr(p, '|') + 1;
    const char *bar = strchr(p, '|');
    return strndup(p, bar ? (size_t)(bar - p) : strlen(p));
}

/* "1h", "7d", "30s", "1500ms", "0": the largest unit that divides ms. */
static void format_duration(long long ms, char *buf, size_t size)
{
    static const struct {
        long long mult;
        const char *unit;
    } units[] = {{86400000LL, "d"}, {3600000LL, "h"}, {60000LL, "m"}, {1000LL, "s"}};
    if (ms == 0) {
        snprintf(buf, size, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].mult == 0) {
            snprintf(buf, size, "%lld%s", ms / units[i].mult, units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%lldms", ms);
}

static void format_range(const srl_config_key_t *k, char *buf, size_t size)
{
    if (k->type == SRL_CONF_DURATION_MS) {
        char lo[32], hi[32];
        format_duration(k->min, lo, sizeof lo);
        format_duration(k->max, hi, sizeof hi);
        snprintf(buf, size, "%s..%s", lo, hi);
    } else {
        snprintf(buf, size, "%lld..%lld", k->min, k->max);
    }
}

static void slot_clear(slot_t *s)
{
    free(s->text);
    for (size_t i = 0; i < s->nitems; i++)
        free(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* ---- typed parsing ------------------------------------------------------ */

/* Strict decimal: optional sign, digits, nothing else. *end_out (if given)
 * receives the first byte after the digits instead of requiring the end. */
static bool parse_ll(const char *s, long long *out, const char **end_out, bool *overflow)
{
    *overflow = false;
    if (!(isdigit((unsigned char)s[0]) ||
          ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        *overflow = true;
    if (end_out != NULL)
        *end_out = end;
    else if (*end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_duration(const char *s, long long *out, bool *overflow)
{
    static const struct {
        const char *unit;
        long long mult;
    } units[] = {{"", 1},        {"ms", 1},      {"s", 1000},    {"m", 60000},
                 {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *end;
    long long v;
    if (!parse_ll(s, &v, &end, overflow))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        if (*overflow || v > LLONG_MAX / units[i].mult || v < LLONG_MIN / units[i].mult)
            *overflow = true;
        else
            *out = v * units[i].mult;
        return true;
    }
    return false;
}

/* Parse text as key k into a fresh slot *out. On failure writes why
 * (without the key; the caller says where and which key). */
static bool parse_value(const srl_config_key_t *k, const char *text, slot_t *out, char *why,
                        size_t why_size)
{
    memset(out, 0, sizeof *out);
    bool overflow = false;
    long long v = 0;

    switch (k->type) {
    case SRL_CONF_STRING:
    case SRL_CONF_KAFKA:
        break;
    case SRL_CONF_INT:
    case SRL_CONF_DURATION_MS:
        if (k->type == SRL_CONF_INT && !parse_ll(text, &v, NULL, &overflow)) {
            set_err(why, why_size, "value \"%s\" is not an integer", text);
            return false;
        }
        if (k->type == SRL_CONF_DURATION_MS && !parse_duration(text, &v, &overflow)) {
            set_err(
                why, why_size,
                "value \"%s\" is not a duration (milliseconds, or a number with unit ms, s, m, h, d)",
                text);
            return false;
        }
        if (overflow || v < k->min || v > k->max) {
            char range[80];
            format_range(k, range, sizeof range);
            set_err(why, why_size, "value \"%s\" is out of range %s", text, range);
            return false;
        }
        out->num = v;
        break;
    case SRL_CONF_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        bool found = false;
        for (size_t i = 0; i < 4 && !found; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                out->num = 1;
                found = true;
            } else if (strcasecmp(text, no[i]) == 0) {
                out->num = 0;
                found = true;
            }
        }
        if (!found) {
            set_err(why, why_size, "value \"%s\" is not a boolean (true|false|yes|no|on|off|1|0)",
                    text);
            return false;
        }
        break;
    }
    case SRL_CONF_ENUM: {
        int idx = choice_index(k->choices, text, strlen(text));
        if (idx < 0) {
            set_err(why, why_size, "value \"%s\" is not one of %s", text, k->choices);
            return false;
        }
        out->num = idx;
        out->text = choice_dup(k->choices, idx);
        if (out->text == NULL)
            goto oom;
        return true;
    }
    case SRL_CONF_LIST: {
        size_t cap = 1;
        for (const char *p = text; *p; p++)
            cap += *p == ',';
        out->items = calloc(cap, sizeof *out->items);
        if (out->items == NULL)
            goto oom;
        size_t text_len = 0;
        const char *p = text;
        while (isspace((unsigned char)*p))
            p++;
        /* An empty value is an empty list (then the min check speaks);
         * otherwise every comma-separated item must be a choice. */
        while (*p != '\0') {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            const char *a = p, *b = end;
            while (a < b && isspace((unsigned char)*a))
                a++;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            if (a == b) {
                set_err(why, why_size, "value \"%s\" has an empty item", text);
                goto fail;
            }
            int idx = choice_index(k->choices, a, (size_t)(b - a));
            if (idx < 0) {
                set_err(why, why_size, "value \"%s\": \"%.*s\" is not one of %s", text,
                        (int)(b - a), a, k->choices);
                goto fail;
            }
            if (out->mask & (1u << idx)) {
                set_err(why, why_size, "value \"%s\": \"%.*s\" is listed twice", text, (int)(b - a),
                        a);
                goto fail;
            }
            out->mask |= 1u << idx;
            out->items[out->nitems] = choice_dup(k->choices, idx);
            if (out->items[out->nitems] == NULL)
                goto oom;
            text_len += strlen(out->items[out->nitems]) + 1;
            out->nitems++;
            if (comma == NULL)
                break;
            p = comma + 1;
            if (*p == '\0') { /* "a," */
                set_err(why, why_size, "value \"%s\" has an empty item", text);
                goto fail;
            }
        }
        if ((long long)out->nitems < k->min) {
            set_err(why, why_size, "value \"%s\" must name at least %lld of %s", text, k->min,
                    k->choices);
            goto fail;
        }
        /* Canonical text: items joined by ',' so it re-loads as given. */
        out->text = malloc(text_len + 1);
        if (out->text == NULL)
            goto oom;
        size_t at = 0;
        for (size_t i = 0; i < out->nitems; i++) {
            size_t n = strlen(out->items[i]);
            if (i > 0)
                out->text[at++] = ',';
            memcpy(out->text + at, out->items[i], n);
            at += n;
        }
        out->text[at] = '\0';
        return true;
    }
    }
    out->text = strdup(text);
    if (out->text == NULL)
        goto oom;
    return true;

oom:
    set_err(why, why_size, "out of memory");
fail:
    slot_clear(out);
    return false;
}

/* ---- key lookup --------------------------------------------------------- */

/* By name, and a linear search: the names here come from a file line or -X
 * (config_set), which only the table can resolve; code that knows its key
 * uses the handle, which indexes the table (slot_of). */
const srl_config_key_t *srl_config_key_find(const char *name)
{
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA) {
            if (strncmp(name, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0 &&
                name[KAFKA_PREFIX_LEN] != '\0')
                return k;
        } else if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest key of the program to a misspelt one, or NULL. */
static const char *suggest_key(unsigned progs, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* only suggest within two edits */
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA || !(k->progs & progs))
            continue;
        size_t d = edit_distance(name, k->name);
        if (d < best_d) {
            best_d = d;
            best = k->name;
        }
    }
    return best;
}

/* The slot of key: the table is indexed by handle, so no lookup. Aborts on
 * a key of another type than type_mask allows, the kafka. row or a value
 * that is no handle (a cast): that is a bug in the caller, found by the
 * first test that runs it. */
static slot_t *slot_of(const srl_config_t *cfg, srl_key_t key, unsigned type_mask)
{
    if ((unsigned)key >= SRL_KEY__COUNT) {
        fprintf(stderr, "sysrepl: config key handle %d is not in the key table\n", (int)key);
        abort();
    }
    const srl_config_key_t *k = &srl_config_keys[key];
    if (k->type == SRL_CONF_KAFKA || !(type_mask & (1u << k->type))) {
        fprintf(stderr, "sysrepl: config key \"%s\" is a %s, read with the wrong accessor\n",
                k->name, type_name(k->type));
        abort();
    }
    return &cfg->slots[key];
}

#define T(t) (1u << (t))

/* ---- setting values ----------------------------------------------------- */

/* The message for a value librdkafka rejected: "where: key "kafka.x": ...",
 * naming the value unless the property is a secret. */
static void kafka_error(char *errstr, size_t errstr_size, const char *where, const char *key,
                        const char *value, rd_kafka_conf_res_t res, char *rderr)
{
    size_t n = strlen(rderr);
    while (n > 0 && isspace((unsigned char)rderr[n - 1]))
        rderr[--n] = '\0'; /* some librdkafka messages end in a newline */
    const char *sep = *where ? ": " : "";
    if (res == RD_KAFKA_CONF_UNKNOWN)
        set_err(errstr, errstr_size, "%s%sunknown key \"%s\": %s", where, sep, key, rderr);
    else if (!is_kafka_secret(key + KAFKA_PREFIX_LEN))
        set_err(errstr, errstr_size, "%s%skey \"%s\": value \"%s\": %s", where, sep, key, value,
                rderr);
    else if (*value == '\0' || strstr(rderr, value) == NULL)
        set_err(errstr, errstr_size, "%s%skey \"%s\": %s", where, sep, key, rderr);
    else
        set_err(errstr, errstr_size,
                "%s%skey \"%s\": value rejected by librdkafka (not shown: secret)", where, sep,
                key);
}

/* Set key to value. where is "path:line" or "-X"; file_line > 0 enables the
 * duplicate check of a file load. By name: the key is what the file or -X
 * says, so it may be misspelt, and the error suggests the nearest name. */
static bool config_set(srl_config_t *cfg, const char *where, int file_line, const char *key,
                       const char *value, char *errstr, size_t errstr_size)
{
    const srl_config_key_t *k = srl_config_key_find(key);
    if (k == NULL) {
        const char *hint = suggest_key(cfg->progs, key);
        if (hint != NULL)
            set_err(errstr, errstr_size, "%s: unknown key \"%s\" (did you mean \"%s\"?)", where,
                    key, hint);
        else
            set_err(errstr, errstr_size, "%s: unknown key \"%s\"", where, key);
        return false;
    }
    /* A key of another sysrepl program is accepted (and still validated):
     * a hub runs the producer and the bridge from one file. Only keys no
     * program knows are errors. */

    if (k->type == SRL_CONF_KAFKA) {
        const char *prop = key + KAFKA_PREFIX_LEN;
        kafka_prop_t *prev = NULL;
        for (size_t i = 0; i < cfg->nkafka; i++)
            if (strcmp(cfg->kafka[i].name, prop) == 0)
                prev = &cfg->kafka[i];
        if (prev != NULL && file_line > 0 && prev->file_line > 0) {
            set_err(errstr, errstr_size, "%s: key \"%s\" given twice (first at line %d)", where,
                    key, prev->file_line);
            return false;
        }
        char *v = NULL;
        if (is_kafka_secret(prop) && value[0] == '@') {
            v = read_secret_file(where, key, value + 1, errstr, errstr_size);
            if (v == NULL)
                return false;
        } else if ((v = strdup(value)) == NULL) {
            goto oom;
        }
        /* Validate now, on a scratch conf, so a bad value stops the program
         * at start naming the line instead of failing later in rd_kafka_new. */
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        char rderr[512];
        rd_kafka_conf_res_t res = rd_kafka_conf_set(scratch, prop, v, rderr, sizeof rderr);
        rd_kafka_conf_destroy(scratch);
        if (res != RD_KAFKA_CONF_OK) {
            kafka_error(errstr, errstr_size, where, key, v, res, rderr);
            free(v);
            return false;
        }
        if (prev != NULL) {
            free(prev->value);
            prev->value = v;
            prev->file_line = file_line;
            return true;
        }
        if (cfg->nkafka == cfg->kafka_cap) {
            size_t cap = cfg->kafka_cap ? cfg->kafka_cap * 2 : 8;
            kafka_prop_t *grown = realloc(cfg->kafka, cap * sizeof *grown);
            if (grown == NULL) {
                free(v);
                goto oom;
            }
            cfg->kafka = grown;
            cfg->kafka_cap = cap;
        }
        kafka_prop_t *kp = &cfg->kafka[cfg->nkafka];
        kp->name = strdup(prop);
        if (kp->name == NULL) {
            free(v);
            goto oom;
        }
        kp->value = v;
        kp->file_line = file_line;
        cfg->nkafka++;
        return true;
    }

    slot_t *slot = &cfg->slots[k - srl_config_keys];
    if (file_line > 0 && slot->file_line > 0) {
        set_err(errstr, errstr_size, "%s: key \"%s\" given twice (first at line %d)", where, key,
                slot->file_line);
        return false;
    }
    slot_t fresh;
    char why[384];
    if (!parse_value(k, value, &fresh, why, sizeof why)) {
        set_err(errstr, errstr_size, "%s: key \"%s\": %s", where, key, why);
        return false;
    }
    slot_clear(slot);
    *slot = fresh;
    slot->set = true;
    slot->file_line = file_line;
    return true;

oom:
    set_err(errstr, errstr_size, "%s: key \"%s\": out of memory", where, key);
    return false;
}

/* ---- lifecycle ---------------------------------------------------------- */

srl_config_t *srl_config_new(unsigned prog_mask)
{
    srl_config_t *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return NULL;
    cfg->progs = prog_mask;
    cfg->slots = calloc(srl_config_key_count, sizeof *cfg->slots);
    if (cfg->slots == NULL)
        goto fail;
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA)
            continue;
        char why[256];
        if (!parse_value(k, k->def, &cfg->slots[i], why, sizeof why)) {
            /* A bad default is a bug in config_keys.c; the unit tests
             * create every program's config, so it never ships. */
            fprintf(stderr, "sysrepl: default of config key \"%s\": %s\n", k->name, why);
            abort();
        }
    }
    return cfg;
fail:
    srl_config_free(cfg);
    return NULL;
}

void srl_config_free(srl_config_t *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->slots != NULL)
        for (size_t i = 0; i < srl_config_key_count; i++)
            slot_clear(&cfg->slots[i]);
    free(cfg->slots);
    for (size_t i = 0; i < cfg->nkafka; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    for (size_t i = 0; i < cfg->nsources; i++)
        free(cfg->sources[i]);
    free(cfg->sources);
    free(cfg);
}

/* Remember a source ('F' file, 'X' override) so a reload reads the same.
 * Out of memory: a reload would then miss it, so say so at load time. */
static bool remember_source(srl_config_t *cfg, char kind, const char *text, char *errstr,
                            size_t errstr_size)
{
    char **grown = realloc(cfg->sources, (cfg->nsources + 1) * sizeof *grown);
    char *entry = NULL;
    if (grown != NULL) {
        cfg->sources = grown;
        if (asprintf(&entry, "%c%s", kind, text) < 0)
            entry = NULL;
    }
    if (entry == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return false;
    }
    cfg->sources[cfg->nsources++] = entry;
    return true;
}

/* ---- the file ----------------------------------------------------------- */

static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* Split one line in place. Returns true with *key NULL for a blank or
 * comment line; false with why set on a syntax error. */
static bool split_line(char *line, char **key, char **value, char *why, size_t why_size)
{
    *key = *value = NULL;
    char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return true;

    char *eq = strchr(p, '=');
    if (eq == NULL) {
        set_err(why, why_size, "expected \"key = value\"");
        return false;
    }
    char *kend = eq;
    while (kend > p && isspace((unsigned char)kend[-1]))
        kend--;
    *kend = '\0';
    if (kend == p) {
        set_err(why, why_size, "expected \"key = value\", found no key before '='");
        return false;
    }
    for (char *c = p; *c; c++) {
        if (!is_key_char(*c)) {
            set_err(why, why_size, "invalid key \"%s\"", p);
            return false;
        }
    }
    *key = p;

    char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    if (*v == '"') {
        /* Quoted: \" and \\ are escapes; any other backslash is literal
         * (Windows-style paths survive). Unescape in place. */
        char *in = v + 1, *out = v;
        for (;;) {
            if (*in == '\0') {
                set_err(why, why_size, "key \"%s\": missing closing quote", *key);
                return false;
            }
            if (*in == '"')
                break;
            if (*in == '\\' && (in[1] == '"' || in[1] == '\\'))
                in++;
            *out++ = *in++;
        }
        *out = '\0';
        in++;
        while (isspace((unsigned char)*in))
            in++;
        if (*in != '\0' && *in != '#') {
            set_err(why, why_size, "key \"%s\": unexpected text after the closing quote", *key);
            return false;
        }
    } else {
        /* A '#' starts a comment at the start of the value or after
         * whitespace; "a#b" keeps its '#'. */
        for (char *c = v; *c; c++) {
            if (*c == '#' && (c == v || isspace((unsigned char)c[-1]))) {
                *c = '\0';
                break;
            }
        }
        char *end = v + strlen(v);
        while (end > v && isspace((unsigned char)end[-1]))
            end--;
        *end = '\0';
    }
    *value = v;
    return true;
}

bool srl_config_load_file(srl_config_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    bool ok = false;
    char *line = NULL;
    size_t line_cap = 0;
    if (!remember_source(cfg, 'F', path, errstr, errstr_size))
        return false;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        set_err(errstr, errstr_size, "%s: cannot open config file: %s", path, strerror(errno));
        return false;
    }
    /* Duplicates are checked within this file only: forget earlier lines. */
    for (size_t i = 0; i < srl_config_key_count; i++)
        cfg->slots[i].file_line = 0;
    for (size_t i = 0; i < cfg->nkafka; i++)
        cfg->kafka[i].file_line = 0;

    int lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if ((size_t)n != strlen(line)) {
            set_err(errstr, errstr_size, "%s:%d: line contains a NUL byte", path, lineno);
            goto cleanup;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *text = line;
        if (lineno == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
            text += 3; /* UTF-8 byte order mark from some editors */

        char *key, *value, why[384];
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!split_line(text, &key, &value, why, sizeof why)) {
            set_err(errstr, errstr_size, "%s: %s", where, why);
            goto cleanup;
        }
        if (key == NULL)
            continue;
        if (!config_set(cfg, where, lineno, key, value, errstr, errstr_size))
            goto cleanup;
    }
    if (ferror(f)) {
        set_err(errstr, errstr_size, "%s: read error: %s", path, strerror(errno));
        goto cleanup;
    }
    ok = true;

cleanup:
    free(line);
    fclose(f);
    return ok;
}

bool srl_config_set_override(srl_config_t *cfg, const char *key_value, char *errstr,
                             size_t errstr_size)
{
    const char *eq = strchr(key_value, '=');
    if (eq == NULL) {
        set_err(errstr, errstr_size, "-X: expected key=value, got \"%s\"", key_value);
        return false;
    }
    if (!remember_source(cfg, 'X', key_value, errstr, errstr_size))
        return false;
    const char *a = key_value, *b = eq;
    while (a < b && isspace((unsigned char)*a))
        a++;
    while (b > a && isspace((unsigned char)b[-1]))
        b--;
    char *key = strndup(a, (size_t)(b - a));
    if (key == NULL) {
        set_err(errstr, errstr_size, "-X: out of memory");
        return false;
    }
    bool ok;
    if (*key == '\0') {
        set_err(errstr, errstr_size, "-X: expected key=value, got \"%s\"", key_value);
        ok = false;
    } else {
        ok = config_set(cfg, "-X", 0, key, eq + 1, errstr, errstr_size);
    }
    free(key);
    return ok;
}

/* The value of option opt ("-c" / "--config") at argv[*i], or NULL when
 * argv[*i] is not that option. Sets *missing when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *short_opt,
                                const char *long_opt, bool *missing)
{
    const char *a = argv[*i];
    size_t slen = strlen(short_opt);
    if (strcmp(a, short_opt) == 0 || (long_opt != NULL && strcmp(a, long_opt) == 0)) {
        if (*i + 1 >= argc) {
            *missing = true;
            return a;
        }
        return argv[++*i];
    }
    if (long_opt != NULL) {
        size_t llen = strlen(long_opt);
        if (strncmp(a, long_opt, llen) == 0 && a[llen] == '=')
            return a + llen + 1;
    }
    if (strncmp(a, short_opt, slen) == 0 && a[slen] != '\0')
        return a + slen;
    return NULL;
}

bool srl_config_parse_args(srl_config_t *cfg, int *argc, char **argv, char *errstr,
                           size_t errstr_size)
{
    bool ok = false;
    const char *path = NULL;
    size_t noverrides = 0;
    const char **overrides = calloc((size_t)*argc + 1, sizeof *overrides);
    if (overrides == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return false;
    }

    /* Pick out ours, keep the rest in order; argv entries are only moved,
     * so the strings overrides points to stay valid. */
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        bool missing = false;
        const char *v;
        if ((v = option_value(*argc, argv, &i, "-c", "--config", &missing)) != NULL) {
            if (missing || *v == '\0') {
                set_err(errstr, errstr_size, "%s needs a file name", argv[i]);
                goto cleanup;
            }
            if (path != NULL) {
                set_err(errstr, errstr_size, "-c/--config given twice (\"%s\" and \"%s\")", path,
                        v);
                goto cleanup;
            }
            path = v;
        } else if ((v = option_value(*argc, argv, &i, "-X", "--set", &missing)) != NULL) {
            if (missing) {
                set_err(errstr, errstr_size, "%s needs key=value", argv[i]);
                goto cleanup;
            }
            overrides[noverrides++] = v;
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = NULL;

    if (path != NULL && !srl_config_load_file(cfg, path, errstr, errstr_size))
        goto cleanup;
    for (size_t i = 0; i < noverrides; i++)
        if (!srl_config_set_override(cfg, overrides[i], errstr, errstr_size))
            goto cleanup;
    ok = true;

cleanup:
    free(overrides);
    return ok;
}

/* ---- accessors ---------------------------------------------------------- */

const char *srl_config_str(const srl_config_t *cfg, srl_key_t key)
{
    return slot_of(cfg, key, T(SRL_CONF_STRING) | T(SRL_CONF_ENUM))->text;
}

long long srl_config_int(const srl_config_t *cfg, srl_key_t key)
{
    return slot_of(cfg, key, T(SRL_CONF_INT) | T(SRL_CONF_DURATION_MS))->num;
}

bool srl_config_bool(const srl_config_t *cfg, srl_key_t key)
{
    return slot_of(cfg, key, T(SRL_CONF_BOOL))->num != 0;
}

int srl_config_enum(const srl_config_t *cfg, srl_key_t key)
{
    return (int)slot_of(cfg, key, T(SRL_CONF_ENUM))->num;
}

size_t srl_config_list(const srl_config_t *cfg, srl_key_t key, const char *const **items)
{
    const slot_t *s = slot_of(cfg, key, T(SRL_CONF_LIST));
    if (items != NULL)
        *items = (const char *const *)s->items;
    return s->nitems;
}

unsigned srl_config_mask(const srl_config_t *cfg, srl_key_t key)
{
    return slot_of(cfg, key, T(SRL_CONF_LIST))->mask;
}

bool srl_config_is_set(const srl_config_t *cfg, srl_key_t key)
{
    return slot_of(cfg, key, ~0u)->set;
}

bool srl_config_require(const srl_config_t *cfg, srl_key_t key, char *errstr, size_t errstr_size)
{
    const char *v = slot_of(cfg, key, T(SRL_CONF_STRING))->text;
    if (v != NULL && *v != '\0')
        return true;
    const char *name = srl_config_keys[key].name;
    set_err(errstr, errstr_size,
            "key \"%s\" is required: set it in the config file or with -X %s=...", name, name);
    return false;
}

/* By name: librdkafka's properties are open-ended, so they have no handles. */
bool srl_config_kafka_is_set(const srl_config_t *cfg, const char *property)
{
    for (size_t i = 0; i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].name, property) == 0)
            return true;
    return false;
}

size_t srl_config_kafka_count(const srl_config_t *cfg)
{
    return cfg->nkafka;
}

bool srl_config_kafka_get(const srl_config_t *cfg, size_t i, const char **name, const char **value)
{
    if (i >= cfg->nkafka)
        return false;
    if (name != NULL)
        *name = cfg->kafka[i].name;
    if (value != NULL)
        *value = cfg->kafka[i].value;
    return true;
}

bool srl_config_kafka_conf(const srl_config_t *cfg, rd_kafka_conf_t *conf, char *errstr,
                           size_t errstr_size)
{
    for (size_t i = 0; i < cfg->nkafka; i++) {
        char rderr[512];
        const kafka_prop_t *kp = &cfg->kafka[i];
        rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, kp->name, kp->value, rderr, sizeof rderr);
        if (res != RD_KAFKA_CONF_OK) {
            char key[512];
            snprintf(key, sizeof key, KAFKA_PREFIX "%s", kp->name);
            kafka_error(errstr, errstr_size, "", key, kp->value, res, rderr);
            return false;
        }
    }
    return true;
}

bool srl_config_check_reload(const srl_config_t *running, const srl_config_t *reloaded,
                             char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA || k->reloadable)
            continue;
        const char *a = running->slots[i].text, *b = reloaded->slots[i].text;
        if (strcmp(a, b) == 0)
            continue;
        if (k->secret)
            set_err(errstr, errstr_size, "key \"%s\" changed; it needs a restart", k->name);
        else
            set_err(errstr, errstr_size,
                    "key \"%s\" changed from \"%s\" to \"%s\"; it needs a restart", k->name, a, b);
        return false;
    }
    /* librdkafka properties are fixed once a handle exists. */
    bool same = running->nkafka == reloaded->nkafka;
    for (size_t i = 0; same && i < running->nkafka; i++)
        same = strcmp(running->kafka[i].name, reloaded->kafka[i].name) == 0 &&
               strcmp(running->kafka[i].value, reloaded->kafka[i].value) == 0;
    if (!same) {
        set_err(errstr, errstr_size, "kafka.* properties changed; they need a restart");
        return false;
    }
    return true;
}

/* ---- reload (SIGHUP) ----------------------------------------------------- */

void srl_config_apply_log(const srl_config_t *cfg)
{
    srl_log_set_level((srl_log_level_t)srl_config_enum(cfg, SRL_KEY_LOG_LEVEL));
    srl_log_set_format((srl_log_format_t)srl_config_enum(cfg, SRL_KEY_LOG_FORMAT));
}

/* The value of a kafka. property in cfg, or NULL. */
static const char *kafka_value(const srl_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].name, name) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

/* One line for a kafka. property that differs (always "needs a restart":
 * librdkafka reads its properties once). Values are not logged: a
 * property may hold a password. */
static void log_kafka_change(const char *component, const char *name, const char *was,
                             const char *now, size_t *restart)
{
    if (was != NULL && now != NULL && strcmp(was, now) == 0)
        return;
    char key[256];
    snprintf(key, sizeof key, KAFKA_PREFIX "%s", name);
    srl_log(SRL_LOG_WARN, component, "config key changed; needs a restart", "key=%s change=%s",
            srl_log_q(key),
            was == NULL   ? "added"
            : now == NULL ? "removed"
                          : "value");
    (*restart)++;
}

bool srl_config_reload(srl_config_t *running, const char *component, srl_config_reload_t *result,
                       char *errstr, size_t errstr_size)
{
    srl_config_reload_t r = {0};
    srl_config_t *fresh = srl_config_new(running->progs);
    const char *file = "";
    bool ok = fresh != NULL;
    if (!ok)
        set_err(errstr, errstr_size, "out of memory");
    for (size_t i = 0; ok && i < running->nsources; i++) {
        const char *src = running->sources[i];
        if (src[0] == 'F')
            file = src + 1;
        ok = src[0] == 'F' ? srl_config_load_file(fresh, src + 1, errstr, errstr_size)
                           : srl_config_set_override(fresh, src + 1, errstr, errstr_size);
    }
    if (!ok) {
        srl_log(SRL_LOG_ERROR, component, "config not reloaded; the running config stays",
                "reason=%s", srl_log_q(errstr));
        srl_config_free(fresh);
        if (result != NULL)
            *result = r;
        return false;
    }

    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA || !(k->progs & running->progs))
            continue; /* another program's key in a shared file: not ours */
        slot_t *was = &running->slots[i], *now = &fresh->slots[i];
        if (strcmp(was->text, now->text) == 0)
            continue;
        const char *old_v = k->secret ? "<redacted>" : was->text;
        const char *new_v = k->secret ? "<redacted>" : now->text;
        if (!k->reloadable) {
            srl_log(SRL_LOG_WARN, component, "config key changed; needs a restart",
                    "key=%s running=%s file=%s", k->name, srl_log_q(old_v), srl_log_q(new_v));
            r.restart++;
            continue;
        }
        srl_log(SRL_LOG_INFO, component, "config key changed; applied", "key=%s old=%s new=%s",
                k->name, srl_log_q(old_v), srl_log_q(new_v));
        /* Move the new value in: pointers from srl_config_str to the
         * old one are invalid from here (config.h). */
        slot_clear(was);
        *was = *now;
        memset(now, 0, sizeof *now);
        r.applied++;
    }
    for (size_t i = 0; i < fresh->nkafka; i++)
        log_kafka_change(component, fresh->kafka[i].name,
                         kafka_value(running, fresh->kafka[i].name), fresh->kafka[i].value,
                         &r.restart);
    for (size_t i = 0; i < running->nkafka; i++)
        if (kafka_value(fresh, running->kafka[i].name) == NULL)
            log_kafka_change(component, running->kafka[i].name, running->kafka[i].value, NULL,
                             &r.restart);

    srl_log(SRL_LOG_INFO, component, "config reloaded", "file=%s applied=%zu needs_restart=%zu",
            srl_log_q(*file ? file : "(none)"), r.applied, r.restart);
    /* Last, so the reload's own lines pass the old threshold and format. */
    srl_config_apply_log(running);
    srl_config_free(fresh);
    if (result != NULL)
        *result = r;
    return true;
}

/* ---- generated text ----------------------------------------------------- */

/* Write value so that the file syntax reads it back unchanged. */
static void write_value(FILE *out, const char *v)
{
    size_t len = strlen(v);
    bool quote = len == 0 || isspace((unsigned char)v[0]) || isspace((unsigned char)v[len - 1]) ||
                 v[0] == '"' || strchr(v, '#') != NULL;
    if (!quote) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

/* "int, 1..1024" / "enum: hub|spoke" / ...: the type and what it allows. */
static void describe_type(const srl_config_key_t *k, char *buf, size_t size)
{
    char range[80];
    switch (k->type) {
    case SRL_CONF_INT:
        format_range(k, range, sizeof range);
        snprintf(buf, size, "int, %s", range);
        break;
    case SRL_CONF_DURATION_MS:
        format_range(k, range, sizeof range);
        snprintf(buf, size, "duration_ms, %s", range);
        break;
    case SRL_CONF_ENUM:
        snprintf(buf, size, "enum, one of %s", k->choices);
        break;
    case SRL_CONF_LIST:
        snprintf(buf, size, "list of %s, comma-separated, at least %lld", k->choices, k->min);
        break;
    case SRL_CONF_BOOL:
        snprintf(buf, size, "bool, true|false");
        break;
    case SRL_CONF_STRING:
    case SRL_CONF_KAFKA:
        snprintf(buf, size, "%s", type_name(k->type));
        break;
    }
}

void srl_config_print_help(FILE *out, unsigned prog_mask)
{
    fprintf(out, "Configuration (-c FILE with \"key = value\" lines, then -X key=value;\n"
                 "durations are milliseconds or take a unit: 500ms, 30s, 5m, 1h, 7d):\n");
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (!(k->progs & prog_mask))
            continue;
        char type[160];
        describe_type(k, type, sizeof type);
        if (k->type == SRL_CONF_KAFKA) {
            fprintf(out, "  kafka.<property>=VALUE\n      %s\n", k->desc);
            continue;
        }
        fprintf(out, "  %s=", k->name);
        write_value(out, k->def);
        fprintf(out, "  (%s%s%s)\n      %s\n", type, k->reloadable ? ", reloadable" : "",
                k->secret ? ", secret" : "", k->desc);
    }
}

void srl_config_write_example(FILE *out, unsigned prog_mask)
{
    char names[128];
    program_names(prog_mask, false, names, sizeof names);
    fprintf(out,
            "# sysrepl configuration for %s.\n"
            "# Generated from the key table (common/config_keys.c); every key is shown\n"
            "# commented out with its default: uncomment a line to change it.\n"
            "# Syntax: key = value; '#' after whitespace starts a comment;\n"
            "# \"...\" quotes a value (\\\" and \\\\ escape). -X key=value on the command\n"
            "# line overrides this file. Durations (duration_ms) are milliseconds, or a\n"
            "# number with a unit: 500ms, 30s, 5m, 1h, 7d.\n",
            names);
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (!(k->progs & prog_mask))
            continue;
        char type[160];
        describe_type(k, type, sizeof type);
        fprintf(out, "\n# %s\n", k->desc);
        if (k->type == SRL_CONF_KAFKA) {
            fprintf(out, "#%s\n", k->def);
            continue;
        }
        fprintf(out, "# Type: %s. Default: ", type);
        write_value(out, k->def);
        fprintf(out, ".%s%s\n#%s = ", k->reloadable ? " Reloadable." : "",
                k->secret ? " Secret: never logged." : "", k->name);
        write_value(out, k->def);
        fputc('\n', out);
    }
}

/* Markdown table cell text: escape what markdown would eat. */
static void write_md(FILE *out, const char *s)
{
    for (const char *c = s; *c; c++) {
        switch (*c) {
        case '|':
            fputs("\\|", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        default:
            fputc(*c, out);
        }
    }
}

void srl_config_write_reference(FILE *out)
{
    fputs("# Configuration reference\n"
          "\n"
          "<!-- Generated by srl_config_write_reference() from common/config_keys.c; do not edit.\n"
          "     Regenerate: SRL_UPDATE_DOCS=1 <build>/tests/unit_test_config -->\n"
          "\n"
          "Every program reads one file of `key = value` lines (`-c FILE` or\n"
          "`--config FILE`), then `-X key=value` (`--set key=value`) overrides from\n"
          "the command line; `--print-config` prints the result, secrets redacted.\n"
          "`#` starts a comment (at the start of a line, or after whitespace);\n"
          "values may be quoted `\"...\"` (escapes `\\\"` and `\\\\`). An unknown key, a bad\n"
          "value, a key the program does not use or a key given twice in the file\n"
          "stops the program at start, naming the file, line (or `-X`) and key.\n"
          "\n"
          "Types: `int` is decimal; `bool` is true/false/yes/no/on/off/1/0;\n"
          "`duration_ms` is milliseconds, or a number with unit `ms`, `s`, `m`, `h`, `d`\n"
          "(`30s`, `7d`); `list` is comma-separated choices.\n"
          "\n"
          "*Reload*: on SIGHUP (`systemctl reload`) every daemon reads the same file\n"
          "and `-X` overrides again and logs one line per changed key of its own: a\n"
          "`yes` key takes its new value at once (\"config key changed; applied\"); a\n"
          "`no` key keeps its running value until a restart (\"config key changed;\n"
          "needs a restart\"), and so do `kafka.*` properties. A file that does not\n"
          "load changes nothing; the error line names the file, line and key.\n"
          "\n"
          "| Key | Type | Default | Allowed | Programs | Reload | Description |\n"
          "|---|---|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        char progs[128], allowed[160] = "";
        program_names(k->progs, true, progs, sizeof progs);
        if (k->type == SRL_CONF_INT || k->type == SRL_CONF_DURATION_MS)
            format_range(k, allowed, sizeof allowed);
        else if (k->type == SRL_CONF_ENUM || k->type == SRL_CONF_LIST)
            snprintf(allowed, sizeof allowed, "%s", k->choices);
        else if (k->type == SRL_CONF_BOOL)
            snprintf(allowed, sizeof allowed, "true|false");

        if (k->type == SRL_CONF_KAFKA)
            fputs("| `kafka.<property>` | kafka | | any librdkafka property | ", out);
        else {
            fprintf(out, "| `%s` | %s | `", k->name, type_name(k->type));
            write_md(out, *k->def ? k->def : "\"\"");
            fputs("`", out);
            slot_t def;
            char why[64];
            /* Durations: also the plain milliseconds ("1h" is 3600000). */
            if (k->type == SRL_CONF_DURATION_MS && parse_value(k, k->def, &def, why, sizeof why)) {
                char ms[32];
                snprintf(ms, sizeof ms, "%lld", def.num);
                if (strcmp(ms, k->def) != 0)
                    fprintf(out, " (%s ms)", ms);
                slot_clear(&def);
            }
            fputs(" | ", out);
            write_md(out, allowed);
            fputs(" | ", out);
        }
        fprintf(out, "%s | %s | ", progs, k->reloadable ? "yes" : "no");
        write_md(out, k->desc);
        fputs(k->secret ? " (secret) |\n" : " |\n", out);
    }
}

void srl_config_write_effective(const srl_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < srl_config_key_count; i++) {
        const srl_config_key_t *k = &srl_config_keys[i];
        if (k->type == SRL_CONF_KAFKA || !(k->progs & cfg->progs))
            continue;
        const char *v = cfg->slots[i].text;
        if (k->secret && *v != '\0') {
            fprintf(out, "# %s = <redacted>\n", k->name);
            continue;
        }
        fprintf(out, "%s = ", k->name);
        write_value(out, v);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->nkafka; i++) {
        const kafka_prop_t *kp = &cfg->kafka[i];
        if (is_kafka_secret(kp->name)) {
            fprintf(out, "# kafka.%s = <redacted>\n", kp->name);
            continue;
        }
        fprintf(out, "kafka.%s = ", kp->name);
        write_value(out, kp->value);
        fputc('\n', out);
    }
}
