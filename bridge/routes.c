/*
 * routes.c - the bridge's routes, in one table: method, path, permission
 * and handler of each. A request's headers come here (from http.c, once it
 * has refused NUL bytes and ambiguous framing): it is matched against the
 * table, then refused or admitted in this order, so an unauthenticated
 * caller learns nothing about our kinds:
 *   503  shutting down, or over bridge.max_connections (http.c's checks)
 *   404  no route has this path
 *   405  the route does not take this method (Allow names the one it does)
 *   401  no key or an unknown key; 403 a key without the permission or kind
 *        (/health needs no key)
 *   400  a bad path parameter (partition, fingerprint); 404 an unknown or
 *        not replicated kind
 *   413  Content-Length over bridge.max_body_bytes (http.c's check)
 * An admitted request's handler runs once its body is in.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "bridge.h"
#include "http.h"
#include "metrics.h"
#include "routes.h"
#include "sysrepl/log.h"

#define API SRL_BRIDGE_API_PREFIX

typedef struct route_def {
    srl_route_t id;     /* metrics/log label */
    const char *method; /* "GET" (HEAD too) or "POST" */
    /* The path; {kind}, {partition} and {fingerprint} are parameters. A
     * parameter inside the path is one non-empty segment; the last one
     * takes the rest of the path, so its own check names what is wrong. */
    const char *path;
    unsigned perm;     /* SRL_PERM_* bits, any one is enough; 0: any known key */
    bool open;         /* no key needed */
    bool kind_schemas; /* {kind} may be "schemas": the schema topic */
    srl_http_handler_fn handler;
    bool registry; /* the Schema Registry API: its error form */
} route_def_t;

#define RP (SRL_PERM_PULL | SRL_PERM_PUSH)

static const route_def_t routes[] = {
    {SRL_ROUTE_HEALTH, "GET", "/health", 0, true, false, srl__route_health, false},
    {SRL_ROUTE_HEALTH, "GET", API "/health", 0, true, false, srl__route_health, false},
    {SRL_ROUTE_METRICS, "GET", "/metrics", 0, false, false, srl__route_metrics, false},
    {SRL_ROUTE_METRICS, "GET", API "/metrics", 0, false, false, srl__route_metrics, false},
    /* A metrics key (monitoring) reads /metrics and nothing else. */
    {SRL_ROUTE_STATE, "GET", API "/state", SRL_PERM_PULL | SRL_PERM_PUSH, false, false,
     srl__route_state, false},
    {SRL_ROUTE_SCHEMAS, "GET", API "/schemas/{fingerprint}", SRL_PERM_PULL | SRL_PERM_PUSH, false,
     false, srl__route_schemas, false},
    {SRL_ROUTE_PUSH, "POST", API "/topics/{kind}/records", SRL_PERM_PUSH, false, false,
     srl__route_push, false},
    {SRL_ROUTE_PULL, "GET", API "/topics/{kind}/partitions/{partition}/records", SRL_PERM_PULL,
     false, true, srl__route_pull, false},
    /* The Confluent Schema Registry API at the root (routes_registry.c),
     * for sysrepl's own subjects. A path served with GET and POST has one
     * row per method; the longer paths come first, as a last parameter
     * takes the rest of the path. */
    {SRL_ROUTE_REGISTRY, "GET", "/schemas/ids/{id}/schema", RP, false, false,
     srl__route_registry_schema_text, true},
    {SRL_ROUTE_REGISTRY, "GET", "/schemas/ids/{id}", RP, false, false, srl__route_registry_schema,
     true},
    {SRL_ROUTE_REGISTRY, "GET", "/subjects", RP, false, false, srl__route_registry_subjects, true},
    {SRL_ROUTE_REGISTRY, "GET", "/subjects/{subject}/versions/{version}", RP, false, false,
     srl__route_registry_version, true},
    {SRL_ROUTE_REGISTRY, "GET", "/subjects/{subject}/versions", RP, false, false,
     srl__route_registry_versions, true},
    {SRL_ROUTE_REGISTRY, "POST", "/subjects/{subject}/versions", SRL_PERM_PUSH, false, false,
     srl__route_registry_register, true},
    {SRL_ROUTE_REGISTRY, "POST", "/subjects/{subject}", RP, false, false,
     srl__route_registry_lookup, true},
    {SRL_ROUTE_REGISTRY, "GET", "/config", RP, false, false, srl__route_registry_config, true},
};

/* A path parameter as found in the URL (not NUL-terminated). */
typedef struct capture {
    const char *s;
    size_t n;
    bool found;
} capture_t;

typedef enum {
    PARAM_KIND = 0,
    PARAM_PARTITION,
    PARAM_FINGERPRINT,
    PARAM_ID,
    PARAM_SUBJECT,
    PARAM_VERSION,
    PARAM_COUNT
} param_t;

static const struct {
    const char *name;
    size_t max_len; /* longest segment inside a path */
} params[PARAM_COUNT] = {{"kind", 127}, {"partition", 31}, {"fingerprint", 127},
                         {"id", 31},    {"subject", 255},  {"version", 31}};

/* Match url against a table path; captures[] get the parameters. */
static bool match_path(const char *path, const char *url, capture_t captures[PARAM_COUNT])
{
    const char *p = path, *u = url;
    memset(captures, 0, sizeof(capture_t) * PARAM_COUNT);
    while (*p) {
        if (*p != '{') {
            if (*p++ != *u++)
                return false;
            continue;
        }
        const char *close = strchr(p, '}');
        int param = -1;
        for (int i = 0; i < PARAM_COUNT; i++)
            if (strlen(params[i].name) == (size_t)(close - p - 1) &&
                strncmp(p + 1, params[i].name, (size_t)(close - p - 1)) == 0)
                param = i;
        if (param < 0)
            return false; /* a typo in the table: matches nothing */
        size_t n;
        if (close[1] == '\0') {
            n = strlen(u);
        } else {
            const char *slash = strchr(u, '/');
            n = slash ? (size_t)(slash - u) : strlen(u);
            if (n == 0 || n > params[param].max_len)
                return false;
        }
        captures[param] = (capture_t){u, n, true};
        p = close + 1;
        u += n;
    }
    return *u == '\0';
}

typedef struct route_match {
    const route_def_t *def; /* NULL: no route */
    unsigned status;        /* 0: parameters fine; else the error status */
    int registry_code;      /* its Schema Registry error_code, or 0 */
    char error[384];
    int kind; /* for authorisation: the kind asked for, or -1 */
} route_match_t;

/* Check the path parameters into req; the first bad one is the answer
 * (partition before kind, as a bad partition is a malformed path). */
static void check_params(srl_req_t *req, const route_def_t *def, const capture_t c[PARAM_COUNT],
                         route_match_t *m)
{
    srl_bridge_t *b = req->b;
    if (c[PARAM_FINGERPRINT].found) {
        const char *p = c[PARAM_FINGERPRINT].s;
        size_t n = c[PARAM_FINGERPRINT].n;
        bool hex = n == 16;
        for (size_t i = 0; hex && i < n; i++)
            hex = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
                  (p[i] >= 'A' && p[i] <= 'F');
        if (!hex) {
            m->status = MHD_HTTP_BAD_REQUEST;
            snprintf(m->error, sizeof(m->error),
                     "schema fingerprint must be 16 hex digits, got \"%.40s\"", p);
            return;
        }
        for (size_t i = 0; i < 16; i++)
            req->fingerprint[i] = (char)((p[i] >= 'A' && p[i] <= 'F') ? p[i] + 32 : p[i]);
        req->fingerprint[16] = '\0';
    }
    if (c[PARAM_ID].found) {
        char seg[32];
        int64_t id = 0;
        snprintf(seg, sizeof(seg), "%.*s", (int)c[PARAM_ID].n, c[PARAM_ID].s);
        if (c[PARAM_ID].n >= sizeof(seg) || !srl__parse_num(seg, 1, INT32_MAX, &id)) {
            m->status = MHD_HTTP_NOT_FOUND;
            m->registry_code = 40403;
            snprintf(m->error, sizeof(m->error),
                     "Schema not found: id must be an integer from 1 to 2147483647, got \"%.40s\"",
                     seg);
            return;
        }
        req->schema_id = (int32_t)id;
    }
    if (c[PARAM_VERSION].found) {
        char seg[32];
        int64_t v = 0;
        snprintf(seg, sizeof(seg), "%.*s", (int)c[PARAM_VERSION].n, c[PARAM_VERSION].s);
        if (strcmp(seg, "latest") == 0 || strcmp(seg, "-1") == 0) {
            req->version = -1;
        } else if (c[PARAM_VERSION].n < sizeof(seg) && srl__parse_num(seg, 1, INT32_MAX, &v)) {
            req->version = (int32_t)v;
        } else {
            m->status = MHD_HTTP_UNPROCESSABLE_CONTENT;
            m->registry_code = 42202;
            snprintf(m->error, sizeof(m->error),
                     "Invalid version: \"%.40s\" is neither \"latest\" nor an integer from 1 to "
                     "2147483647",
                     seg);
            return;
        }
    }
    if (c[PARAM_SUBJECT].found) {
        /* Our subjects are <topic>-value (TopicNameStrategy), one per
         * replicated kind; the kind is authorised like a topic's. */
        snprintf(req->subject, sizeof(req->subject), "%.*s", (int)c[PARAM_SUBJECT].n,
                 c[PARAM_SUBJECT].s);
        bool found = false;
        for (int k = 0; k < SRL_KIND_COUNT && !found; k++) {
            size_t n = strlen(b->topics[k]);
            if ((b->kinds & (1u << k)) && strncmp(req->subject, b->topics[k], n) == 0 &&
                strcmp(req->subject + n, "-value") == 0) {
                found = true;
                req->kind = (srl_kind_t)k;
                m->kind = k;
            }
        }
        if (!found) {
            m->status = MHD_HTTP_NOT_FOUND;
            m->registry_code = 40401;
            snprintf(m->error, sizeof(m->error),
                     "Subject '%.200s' not found (this bridge serves <topic>-value of %s.*)",
                     req->subject, b->prefix);
            return;
        }
    }
    if (c[PARAM_PARTITION].found) {
        char pseg[32];
        int64_t part = 0;
        snprintf(pseg, sizeof(pseg), "%.*s", (int)c[PARAM_PARTITION].n, c[PARAM_PARTITION].s);
        if (!srl__parse_num(pseg, 0, INT32_MAX, &part)) {
            m->status = MHD_HTTP_BAD_REQUEST;
            snprintf(m->error, sizeof(m->error),
                     "partition must be a non-negative integer, got \"%.40s\"", pseg);
            return;
        }
        req->partition = (int32_t)part;
    }
    if (c[PARAM_KIND].found) {
        char seg[128];
        srl_kind_t kind;
        snprintf(seg, sizeof(seg), "%.*s", (int)c[PARAM_KIND].n, c[PARAM_KIND].s);
        if (def->kind_schemas && strcmp(seg, "schemas") == 0) {
            req->kind = SRL_BRIDGE_SCHEMAS;
            return;
        }
        if (!srl_kind_parse(seg, &kind)) {
            m->status = MHD_HTTP_NOT_FOUND;
            snprintf(m->error, sizeof(m->error),
                     "unknown kind \"%.60s\" (kinds: assessment-types, vulnerability-assessments, "
                     "policies)",
                     seg);
            return;
        }
        if (!(b->kinds & (1u << kind))) {
            m->status = MHD_HTTP_NOT_FOUND;
            snprintf(m->error, sizeof(m->error), "kind %s is not replicated by this bridge",
                     srl_kind_name(kind));
            return;
        }
        req->kind = kind;
        m->kind = (int)kind;
    }
}

static void match_route(srl_req_t *req, const char *url, const char *method, route_match_t *m)
{
    capture_t c[PARAM_COUNT];
    memset(m, 0, sizeof(*m));
    m->kind = -1;
    /* The row of this path and method; else the first row of the path (a
     * 405 names its method). */
    const route_def_t *first = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (match_path(routes[i].path, url, c)) {
            bool post = strcmp(routes[i].method, "POST") == 0;
            bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
            if (post ? strcmp(method, "POST") == 0 : is_get) {
                m->def = &routes[i];
                break;
            }
            if (!first)
                first = &routes[i];
        }
    if (!m->def)
        m->def = first;
    if (m->def) {
        match_path(m->def->path, url, c);
        check_params(req, m->def, c, m);
        return;
    }
    m->status = MHD_HTTP_NOT_FOUND;
    snprintf(m->error, sizeof(m->error), "no such route: %.120s (the API is under %s)", url,
             SRL_BRIDGE_API_PREFIX);
}

enum MHD_Result srl_routes_on_headers(srl_req_t *req, const char *url, const char *method)
{
    srl_bridge_t *b = req->b;
    enum MHD_Result rc;
    route_match_t m;
    match_route(req, url, method, &m);
    bool post = m.def && strcmp(m.def->method, "POST") == 0;
    req->route = m.def ? m.def->id : SRL_ROUTE_OTHER;
    req->registry_style = m.def && m.def->registry;
    req->allow = post ? "POST" : "GET, HEAD";

    if (srl__http_refuse_busy(req, &rc))
        return rc;
    if (!m.def)
        return srl__respond_error(req, m.status, NULL, "%s", m.error);

    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool method_ok = post ? strcmp(method, "POST") == 0 : is_get;
    if (!method_ok)
        return srl__respond_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, NULL,
                                  "method %.16s not allowed on %.120s (use %s)", method, url,
                                  m.def->method);
    req->head = strcmp(method, "HEAD") == 0;

    if (!m.def->open) {
        const char *xkey = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-ApiKey");
        const char *authz = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION);
        char why[256];
        const srl_bridge_key_t *key = NULL;
        srl_auth_result_t a = srl_bridge_authorize(atomic_load(&b->keys), xkey, authz, m.def->perm,
                                                   m.kind, &key, why, sizeof(why));
        req->key = key;
        if (a == SRL_AUTH_UNAUTHENTICATED)
            return srl__respond_error(req, MHD_HTTP_UNAUTHORIZED, NULL, "%s", why);
        if (a == SRL_AUTH_FORBIDDEN) /* logged by http.c with the key's name */
            return srl__respond_error(req, MHD_HTTP_FORBIDDEN, NULL, "%s", why);
    }
    /* Path errors (bad partition, unknown kind) come after authorisation,
     * so an unauthenticated caller learns nothing about our kinds. */
    if (m.status) {
        req->registry_code = m.registry_code;
        return srl__respond_error(req, m.status, NULL, "%s", m.error);
    }
    if (srl__http_refuse_too_large(req, &rc))
        return rc;
    req->handler = m.def->handler;
    return MHD_YES;
}
