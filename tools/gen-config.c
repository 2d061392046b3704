/*
 * gen-config.c - writes the example configs under deploy/examples/ and
 * docs/config-reference.md, all from the key table (sysrepl/config_keys.def),
 * so the committed files never disagree with what the programs accept.
 *
 *   sysrepl-gen-config [--root DIR]           write the files under DIR
 *   sysrepl-gen-config --check [--root DIR]   compare instead; exit 1 when a
 *                                             file differs or does not load
 *
 * DIR defaults to the source tree the binary was built from. `ninja
 * gen-config` runs the first form; tests/unit/test_config_examples.sh the
 * second.
 *
 * An example is srl_config_write_example() for one program, under a header
 * saying where the file goes, with the few settings every deployment must
 * choose (instance.id, role, store.dsn, ...) uncommented in place and given
 * example values. --check also loads each example with its program's key set
 * (and with the CLI's, where the example says `sysrepl -c` can share it), so
 * an example that the program would refuse fails the check.
 */
#include "sysrepl/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One example setting: replaces the "#key = default" line of the
 * generated example with "key = value". The key is a name, not a handle
 * (config.h): it is the text matched in and written to the file, and
 * render_example fails on a name the generated example does not show. */
typedef struct {
    const char *key;
    const char *value;
} setting_t;

typedef struct {
    const char *path;         /* relative to the root */
    unsigned prog;            /* the program whose keys it shows */
    unsigned also_loads_with; /* other programs that can read it as is (0: none) */
    const char *header;       /* lines before the generated part */
    setting_t settings[12];   /* {NULL} terminated */
} example_t;

static const example_t examples[] = {
    {"deploy/examples/hub.conf",
     SRL_PROG_PRODUCER,
     SRL_PROG_CLI,
     "# hub.conf - sysrepl-producer on the hub (install as /etc/sysrepl/producer.conf).\n"
     "#\n"
     "# The hub owns the content: its store's triggers fill the outbox, and the\n"
     "# producer publishes each change to the compacted topics. The settings every\n"
     "# hub must choose are uncommented below with example values; every other key\n"
     "# shows its default. Only keys the admin CLI also knows are set, so\n"
     "# `sysrepl -c /etc/sysrepl/producer.conf status` reads the same file.\n"
     "# store.dsn: keep the password out of this file (passfile=, mode 0600).\n"
     "# See docs/operations.md and docs/config-reference.md.\n"
     "#\n",
     {{"instance.id", "hub-1"},
      {"role", "hub"},
      {"store.dsn",
       "\"host=db.hub.example dbname=sysrepl user=sysrepl passfile=/etc/sysrepl/pgpass\""},
      {"kafka.bootstrap.servers", "kafka1.hub.example:9092,kafka2.hub.example:9092"},
      {NULL, NULL}}},
    {"deploy/examples/hub-bridge.conf",
     SRL_PROG_BRIDGE,
     0,
     "# hub-bridge.conf - sysrepl-bridge on the hub (install as /etc/sysrepl/bridge.conf).\n"
     "#\n"
     "# The bridge serves the Replication API (the seed's \"incoming\" side) next to\n"
     "# the broker, for spokes (and push instances) that cannot reach Kafka: they\n"
     "# run with transport = http and bridge.url pointing here. It has no store.\n"
     "# API keys live in bridge.keys_file (see docs/operations.md, \"Rotating API\n"
     "# keys\"); TLS is on unless bridge.plain_http.\n"
     "#\n",
     {{"instance.id", "hub-1"},
      {"role", "hub"},
      {"kafka.bootstrap.servers", "kafka1.hub.example:9092,kafka2.hub.example:9092"},
      {"bridge.listen", "0.0.0.0"},
      {"bridge.tls_cert", "/etc/sysrepl/tls/bridge.crt"},
      {"bridge.tls_key", "/etc/sysrepl/tls/bridge.key"},
      {"bridge.keys_file", "/etc/sysrepl/bridge-keys"},
      {NULL, NULL}}},
    {"deploy/examples/spoke.conf",
     SRL_PROG_CONSUMER,
     SRL_PROG_CLI,
     "# spoke.conf - sysrepl-consumer on a spoke that reaches Kafka directly\n"
     "# (install as /etc/sysrepl/consumer.conf).\n"
     "#\n"
     "# The spoke mirrors the topics into its own store: its first sync (and every\n"
     "# `sysrepl-consumer --replay`) replaces whatever content the store held.\n"
     "# Give each spoke its own instance.id. Only keys the admin CLI also knows are\n"
     "# set, so `sysrepl -c /etc/sysrepl/consumer.conf status` reads the same file.\n"
     "# See docs/operations.md and docs/config-reference.md.\n"
     "#\n",
     {{"instance.id", "spoke-1"},
      {"role", "spoke"},
      {"store.dsn", "\"host=localhost dbname=sysrepl user=sysrepl passfile=/etc/sysrepl/pgpass\""},
      {"kafka.bootstrap.servers", "kafka1.hub.example:9092,kafka2.hub.example:9092"},
      {NULL, NULL}}},
    {"deploy/examples/spoke-http.conf",
     SRL_PROG_CONSUMER,
     0,
     "# spoke-http.conf - sysrepl-consumer on a spoke that cannot reach Kafka: it\n"
     "# pulls through the hub's sysrepl-bridge over HTTPS (the seed's \"outgoing\"\n"
     "# side). Install as /etc/sysrepl/consumer.conf, mode 0640, group sysrepl:\n"
     "# it holds the API key. kafka.* is not used with transport = http.\n"
     "# The admin CLI does not know transport/bridge.*: give it its own file\n"
     "# (instance.id, role, store.dsn) or -X options.\n"
     "# See docs/operations.md and docs/config-reference.md.\n"
     "#\n",
     {{"instance.id", "spoke-2"},
      {"role", "spoke"},
      {"store.dsn", "\"host=localhost dbname=sysrepl user=sysrepl passfile=/etc/sysrepl/pgpass\""},
      {"transport", "http"},
      {"bridge.url", "https://hub.example:8443"},
      {"bridge.api_key", "REPLACE-WITH-THIS-SPOKES-API-KEY"},
      {"bridge.ca_file", "/etc/sysrepl/tls/hub-ca.crt"},
      {NULL, NULL}}},
};

/* The setting that replaces line, or NULL. A setting line of the generated
 * example is "#key = value"; prose lines start "# ". */
static const setting_t *setting_for_line(const example_t *ex, const char *line)
{
    if (line[0] != '#' || line[1] == ' ' || line[1] == '\0')
        return NULL;
    for (const setting_t *s = ex->settings; s->key; s++) {
        size_t n = strlen(s->key);
        if (strncmp(line + 1, s->key, n) == 0 && strncmp(line + 1 + n, " = ", 3) == 0)
            return s;
    }
    return NULL;
}

/* The text of one example in a malloc'd string (caller frees), or NULL
 * with a message on stderr. Every setting must replace exactly one line of
 * the generated part, so a key renamed in the table fails here. */
static char *render_example(const example_t *ex)
{
    char *generated = NULL, *text = NULL;
    size_t generated_size = 0, text_size = 0;
    FILE *gen = open_memstream(&generated, &generated_size);
    FILE *out = NULL;
    bool ok = false;
    if (!gen)
        goto cleanup;
    srl_config_write_example(gen, ex->prog);
    if (fclose(gen) != 0) {
        gen = NULL;
        goto cleanup;
    }
    gen = NULL;

    out = open_memstream(&text, &text_size);
    if (!out)
        goto cleanup;
    fputs(ex->header, out);
    unsigned used = 0; /* bit i: settings[i] placed */
    for (char *line = generated; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        const setting_t *s = setting_for_line(ex, line);
        if (s) {
            fprintf(out, "%s = %s\n", s->key, s->value);
            used |= 1u << (s - ex->settings);
        } else
            fprintf(out, "%s\n", line);
        line = nl ? nl + 1 : NULL;
    }
    for (const setting_t *s = ex->settings; s->key; s++)
        if (!(used & (1u << (s - ex->settings)))) {
            fprintf(stderr,
                    "gen-config: %s: key \"%s\" is not in the generated example; "
                    "was it renamed in sysrepl/config_keys.def?\n",
                    ex->path, s->key);
            goto cleanup;
        }
    ok = true;

cleanup:
    if (gen)
        fclose(gen);
    if (out && fclose(out) != 0)
        ok = false;
    free(generated);
    if (!ok) {
        if (!out && !text)
            fprintf(stderr, "gen-config: %s: out of memory\n", ex->path);
        free(text);
        return NULL;
    }
    return text;
}

static char *render_reference(void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return NULL;
    srl_config_write_reference(out);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The whole file in a malloc'd string, or NULL (errno set). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    char buf[8192];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, mem);
    bool ok = mem && !ferror(f);
    fclose(f);
    if (mem && fclose(mem) != 0)
        ok = false;
    if (!ok) {
        free(text);
        return NULL;
    }
    return text;
}

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "gen-config: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "gen-config: writing %s failed: %s\n", path, strerror(errno));
    return ok;
}

/* Compares the file with what the table generates now; names the first
 * differing line. */
static bool check_file(const char *path, const char *want)
{
    char *have = read_file(path);
    if (!have) {
        fprintf(stderr, "gen-config: %s: %s\n", path, strerror(errno));
        return false;
    }
    bool same = strcmp(have, want) == 0;
    if (!same) {
        int line = 1;
        const char *h = have, *w = want;
        for (; *h && *h == *w; h++, w++)
            if (*h == '\n')
                line++;
        fprintf(stderr,
                "gen-config: %s:%d differs from what the key table generates; "
                "run `ninja -C <build> gen-config` and commit the result\n",
                path, line);
    }
    free(have);
    return same;
}

/* The example loads with the key set of prog, as the program would load it. */
static bool check_loads(const char *path, unsigned prog, const char *who)
{
    srl_config_t *cfg = srl_config_new(prog);
    char err[512] = "";
    bool ok = cfg && srl_config_load_file(cfg, path, err, sizeof err);
    if (!ok)
        fprintf(stderr, "gen-config: %s does not load for %s: %s\n", path, who,
                cfg ? err : "out of memory");
    srl_config_free(cfg);
    return ok;
}

int main(int argc, char **argv)
{
    const char *root = SRL_SOURCE_DIR;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            check = true;
        else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            root = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--check] [--root DIR]\n", argv[0]);
            return 2;
        }
    }

    bool ok = true;
    char path[4096];
    size_t n_examples = sizeof examples / sizeof examples[0];
    for (size_t i = 0; i <= n_examples; i++) {
        const example_t *ex = i < n_examples ? &examples[i] : NULL;
        const char *rel = ex ? ex->path : "docs/config-reference.md";
        int n = snprintf(path, sizeof path, "%s/%s", root, rel);
        if (n < 0 || (size_t)n >= sizeof path) {
            fprintf(stderr, "gen-config: path too long: %s/%s\n", root, rel);
            return 1;
        }
        char *text = ex ? render_example(ex) : render_reference();
        if (!text) {
            ok = false;
            continue;
        }
        if (check) {
            ok &= check_file(path, text);
            if (ex) {
                ok &= check_loads(path, ex->prog, "its program");
                if (ex->also_loads_with)
                    ok &= check_loads(path, ex->also_loads_with, "the admin CLI");
            }
        } else if (write_file(path, text))
            printf("wrote %s\n", path);
        else
            ok = false;
        free(text);
    }
    return ok ? 0 : 1;
}
