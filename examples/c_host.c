/*
 * c_host.c — an example C host for shopauth (spec §6).
 *
 * It drives two authorizations through the C ABI, with a fake transport in
 * place of real HTTP:
 *
 *   1. KEY:    a custom `key` platform "mykey"; authorize with a token;
 *              the store is authorized at once.
 *   2. oauth2: a custom `oauth2` platform "myshop"; authorize (URL) gives an
 *              auth_url; the "seller" comes back through oauth_redirect with a
 *              code and the state nonce; the engine asks for a token_create
 *              HTTP request; the fake transport answers it with a token; the
 *              store becomes authorized and the seller is redirected.
 *
 * Build (static library):
 *   cargo build --release
 *   cc -std=c11 -Wall -Wextra -Iinclude examples/c_host.c
 *      target/release/libshopauth.a -lpthread -ldl -lm -o c_host
 * or against the shared library:
 *   cc -std=c11 -Iinclude examples/c_host.c -Ltarget/release -lshopauth
 *      -Wl,-rpath,$PWD/target/release -o c_host
 * or, after `cargo cinstall`:
 *   cc examples/c_host.c $(pkg-config --cflags --libs shopauth) -o c_host
 *
 * Exits 0 when both stores end authorized, 1 otherwise. JSON is handled with
 * a few strstr-based helpers: enough for the engine's compact output, not a
 * general JSON parser.
 */
#include "shopauth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char CONFIG[] =
    "{\"secret\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
    "\"apps\":{\"myshop\":{\"app_key\":\"cid\",\"app_secret\":\"sec\","
    "\"redirect_uri\":\"https://host.example/cb\"}},"
    "\"platforms\":{"
    "\"mykey\":{\"kind\":\"key\",\"credential\":\"token\"},"
    "\"myshop\":{\"kind\":\"oauth2\",\"authorize_url\":\"https://as.example/authorize\","
    "\"token_url\":\"https://as.example/token\"}}}";

/* The host owns the clock: Unix epoch milliseconds. */
static int64_t now_ms = 1700000000000LL;

static int failures = 0;

#define EXPECT(cond)                                                           \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                          \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* ---- minimal JSON helpers ------------------------------------------------ */

/* Finds the value of the first `"key":` in json; returns a pointer to its
 * first character (after whitespace), or NULL. */
static const char *json_value(const char *json, const char *key) {
    size_t klen = strlen(key);
    const char *p = json;
    while ((p = strchr(p, '"')) != NULL) {
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
            const char *q = p + 2 + klen;
            while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
            if (*q == ':') {
                q++;
                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
                return q;
            }
        }
        p++;
    }
    return NULL;
}

/* Copies the string value of `key` (simple escapes decoded) into out.
 * Returns 1 when found and it fit, else 0 (out is then ""). */
static int json_string(const char *json, const char *key, char *out, size_t cap) {
    const char *v = json_value(json, key);
    size_t n = 0;
    if (cap == 0) return 0;
    out[0] = '\0';
    if (v == NULL || *v != '"') return 0;
    for (v++; *v && *v != '"'; v++) {
        char c = *v;
        if (c == '\\') {
            v++;
            switch (*v) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '\0': return 0;
                default: c = *v; break; /* \" \\ \/ (\uXXXX is not decoded) */
            }
        }
        if (n + 1 >= cap) {
            out[0] = '\0';
            return 0;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return *v == '"';
}

static long json_long(const char *json, const char *key, long fallback) {
    const char *v = json_value(json, key);
    if (v == NULL) return fallback;
    return strtol(v, NULL, 10);
}

/* Writes `in` as the contents of a JSON string (without the quotes). */
static int json_escape(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (; *in; in++) {
        const char *rep = NULL;
        char buf[8];
        switch (*in) {
            case '"': rep = "\\\""; break;
            case '\\': rep = "\\\\"; break;
            case '\n': rep = "\\n"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            default:
                if ((unsigned char)*in < 0x20) {
                    snprintf(buf, sizeof buf, "\\u%04x", (unsigned)(unsigned char)*in);
                    rep = buf;
                }
        }
        if (rep) {
            size_t l = strlen(rep);
            if (n + l >= cap) return 0;
            memcpy(out + n, rep, l);
            n += l;
        } else {
            if (n + 1 >= cap) return 0;
            out[n++] = *in;
        }
    }
    out[n] = '\0';
    return 1;
}

/* ---- talking to the engine ----------------------------------------------- */

static const char *status_name(shopauth_status s) {
    switch (s) {
        case SHOPAUTH_OK: return "OK";
        case SHOPAUTH_REJECTED: return "REJECTED";
        case SHOPAUTH_EMPTY: return "EMPTY";
        case SHOPAUTH_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
        case SHOPAUTH_PANIC: return "PANIC";
        case SHOPAUTH_POISONED: return "POISONED";
    }
    return "?";
}

/* Sends one input; returns the reply (free with shopauth_string_free). */
static char *send_input(shopauth_engine *engine, const char *input, shopauth_status expected) {
    char *reply = NULL;
    shopauth_status s = shopauth_engine_handle(engine, input, strlen(input), now_ms, &reply);
    printf("  -> %s\n  <- [%s] %s\n", input, status_name(s), reply ? reply : "(none)");
    if (s != expected) {
        fprintf(stderr, "unexpected status %s (wanted %s) for %s\n", status_name(s),
                status_name(expected), input);
        failures++;
    }
    return reply;
}

/* ---- the fake transport: plays the oauth2 authorization server ------------ */

static char last_notify_body[4096];

/* Answers one http_request output; writes the http_response/http_failure
 * input to send back into `answer`. */
static void fake_transport(const char *request, char *answer, size_t cap) {
    char request_id[128], purpose[64], url[1024], method[16];
    char body[4096];
    json_string(request, "request_id", request_id, sizeof request_id);
    json_string(request, "purpose", purpose, sizeof purpose);
    json_string(request, "url", url, sizeof url);
    json_string(request, "method", method, sizeof method);
    if (!json_string(request, "body", body, sizeof body)) body[0] = '\0';
    printf("  [transport] %s %s (%s)\n", method, url, purpose);

    if (strcmp(purpose, "token_create") == 0 && strcmp(url, "https://as.example/token") == 0) {
        /* A real authorization server would check all of this. */
        EXPECT(strcmp(method, "POST") == 0);
        EXPECT(strstr(body, "grant_type=authorization_code") != NULL);
        EXPECT(strstr(body, "code=abc") != NULL);
        EXPECT(strstr(body, "code_verifier=") != NULL);
        EXPECT(strstr(body, "redirect_uri=https%3A%2F%2Fhost.example%2Fcb") != NULL);
        {
            const char *token =
                "{\"access_token\":\"AT\",\"refresh_token\":\"RT\",\"expires_in\":3600}";
            char escaped[256];
            json_escape(token, escaped, sizeof escaped);
            snprintf(answer, cap,
                     "{\"type\":\"http_response\",\"request_id\":\"%s\",\"status\":200,"
                     "\"headers\":[[\"Content-Type\",\"application/json\"]],\"body\":\"%s\"}",
                     request_id, escaped);
        }
        return;
    }
    if (strcmp(purpose, "notify") == 0) {
        snprintf(last_notify_body, sizeof last_notify_body, "%s", body);
        snprintf(answer, cap,
                 "{\"type\":\"http_response\",\"request_id\":\"%s\",\"status\":204,\"body\":\"\"}",
                 request_id);
        return;
    }
    /* Anything else: this fake network has no such host. */
    snprintf(answer, cap,
             "{\"type\":\"http_failure\",\"request_id\":\"%s\",\"error\":\"connection refused\"}",
             request_id);
}

/* Drains every queued output, answering http_request outputs through the
 * fake transport (whose answers may queue more outputs). Counts transitions
 * to `authorized` and SUCCESS redirects. */
static int authorized_transitions = 0;
static int success_redirects = 0;

static void drain(shopauth_engine *engine) {
    for (;;) {
        char *output = NULL;
        shopauth_status s = shopauth_engine_poll_output(engine, &output);
        if (s == SHOPAUTH_EMPTY) {
            EXPECT(output == NULL);
            break;
        }
        if (s != SHOPAUTH_OK || output == NULL) {
            fprintf(stderr, "poll_output: %s\n", status_name(s));
            failures++;
            shopauth_string_free(output);
            break;
        }
        printf("  output: %s\n", output);
        {
            char type[32];
            json_string(output, "type", type, sizeof type);
            if (strcmp(type, "http_request") == 0) {
                char answer[8192];
                char *reply;
                fake_transport(output, answer, sizeof answer);
                reply = send_input(engine, answer, SHOPAUTH_OK);
                shopauth_string_free(reply);
            } else if (strcmp(type, "transition") == 0) {
                char to[32];
                json_string(output, "to", to, sizeof to);
                if (strcmp(to, "authorized") == 0) authorized_transitions++;
            } else if (strcmp(type, "redirect") == 0) {
                char location[2048];
                json_string(output, "location", location, sizeof location);
                if (strstr(location, "auth_status=SUCCESS") != NULL) success_redirects++;
            }
        }
        shopauth_string_free(output);
    }
}

/* Queries a store and returns 1 when its state is `want`. */
static int store_state_is(shopauth_engine *engine, const char *store_id, const char *want) {
    char input[256], state[32];
    char *reply;
    int ok;
    snprintf(input, sizeof input, "{\"type\":\"query\",\"client_id\":\"biz-1\",\"store_id\":\"%s\"}",
             store_id);
    reply = send_input(engine, input, SHOPAUTH_OK);
    ok = reply != NULL && json_string(reply, "state", state, sizeof state) && strcmp(state, want) == 0;
    shopauth_string_free(reply);
    return ok;
}

static void key_flow(shopauth_engine *engine) {
    char *reply;
    int before = authorized_transitions;
    printf("== KEY authorization (platform mykey)\n");
    reply = send_input(engine,
                       "{\"type\":\"register_store\",\"client_id\":\"biz-1\",\"store_id\":\"key-store\","
                       "\"platform\":\"mykey\"}",
                       SHOPAUTH_OK);
    shopauth_string_free(reply);
    now_ms += 1000;
    reply = send_input(engine,
                       "{\"type\":\"authorize\",\"client_id\":\"biz-1\",\"store_id\":\"key-store\","
                       "\"auth_type\":\"KEY\",\"auth_info\":{\"token\":\"private-app-token\"}}",
                       SHOPAUTH_OK);
    EXPECT(reply != NULL && json_long(reply, "code", 0) == 200);
    shopauth_string_free(reply);
    drain(engine);
    EXPECT(authorized_transitions == before + 1);
    EXPECT(store_state_is(engine, "key-store", "authorized"));

    reply = send_input(engine,
                       "{\"type\":\"credentials\",\"client_id\":\"biz-1\",\"store_id\":\"key-store\"}",
                       SHOPAUTH_OK);
    {
        char token[64];
        EXPECT(reply != NULL && json_string(reply, "token", token, sizeof token) &&
               strcmp(token, "private-app-token") == 0);
    }
    shopauth_string_free(reply);

    /* The same token for another store is refused (auth_info_taken). */
    reply = send_input(engine,
                       "{\"type\":\"register_store\",\"client_id\":\"biz-1\",\"store_id\":\"key-store-2\","
                       "\"platform\":\"mykey\"}",
                       SHOPAUTH_OK);
    shopauth_string_free(reply);
    reply = send_input(engine,
                       "{\"type\":\"authorize\",\"client_id\":\"biz-1\",\"store_id\":\"key-store-2\","
                       "\"auth_type\":\"KEY\",\"auth_info\":{\"token\":\"private-app-token\"}}",
                       SHOPAUTH_REJECTED);
    EXPECT(reply != NULL && json_long(reply, "code", 0) == 900005);
    shopauth_string_free(reply);
    drain(engine);
}

static void oauth2_flow(shopauth_engine *engine) {
    char *reply;
    char auth_url[2048], nonce[512], input[2048];
    const char *state;
    size_t len;
    int before = authorized_transitions;
    int64_t deadline;

    printf("== oauth2 authorization (platform myshop)\n");
    reply = send_input(engine,
                       "{\"type\":\"register_store\",\"client_id\":\"biz-1\",\"store_id\":\"shop-store\","
                       "\"platform\":\"myshop\",\"notify_url\":\"https://biz.example/notify\","
                       "\"notify_secret\":\"n0tify\"}",
                       SHOPAUTH_OK);
    shopauth_string_free(reply);
    now_ms += 1000;
    reply = send_input(engine,
                       "{\"type\":\"authorize\",\"client_id\":\"biz-1\",\"store_id\":\"shop-store\","
                       "\"auth_type\":\"URL\",\"redirect_url\":\"https://biz.example/done?x=1\"}",
                       SHOPAUTH_OK);
    EXPECT(reply != NULL && json_string(reply, "auth_url", auth_url, sizeof auth_url));
    shopauth_string_free(reply);
    drain(engine);
    printf("  seller is sent to %s\n", auth_url);
    EXPECT(strncmp(auth_url, "https://as.example/authorize?", 29) == 0);
    EXPECT(strstr(auth_url, "client_id=cid") != NULL);
    EXPECT(strstr(auth_url, "code_challenge_method=S256") != NULL);

    /* The request TTL is pending now. */
    deadline = shopauth_engine_poll_timeout(engine);
    printf("  next timeout at %lld\n", (long long)deadline);
    EXPECT(deadline > now_ms);

    /* The authorization server sends the seller back with code and state. */
    state = strstr(auth_url, "?state=");
    if (state == NULL) state = strstr(auth_url, "&state=");
    nonce[0] = '\0';
    if (state != NULL) {
        state += 7;
        len = strcspn(state, "&#");
        if (len < sizeof nonce) {
            memcpy(nonce, state, len);
            nonce[len] = '\0';
        }
    }
    EXPECT(nonce[0] != '\0');
    now_ms += 20 * 1000;
    snprintf(input, sizeof input,
             "{\"type\":\"oauth_redirect\",\"platform\":\"myshop\",\"query\":\"code=abc&state=%s\"}", nonce);
    reply = send_input(engine, input, SHOPAUTH_OK);
    EXPECT(reply != NULL && json_long(reply, "code", 0) == 200);
    shopauth_string_free(reply);

    /* The token_create request comes out; the transport answers it. */
    now_ms += 300;
    drain(engine);
    EXPECT(authorized_transitions == before + 1);
    EXPECT(success_redirects == 1);
    EXPECT(strstr(last_notify_body, "\"SUCCESS\"") != NULL);
    EXPECT(store_state_is(engine, "shop-store", "authorized"));

    /* The nonce is spent: a replay is invalid_state. */
    reply = send_input(engine, input, SHOPAUTH_REJECTED);
    EXPECT(reply != NULL && json_long(reply, "code", 0) == 900007);
    shopauth_string_free(reply);

    reply = send_input(engine,
                       "{\"type\":\"credentials\",\"client_id\":\"biz-1\",\"store_id\":\"shop-store\"}",
                       SHOPAUTH_OK);
    {
        char token[64];
        EXPECT(reply != NULL && json_string(reply, "access_token", token, sizeof token) &&
               strcmp(token, "AT") == 0);
    }
    shopauth_string_free(reply);

    /* The refresh is scheduled before the token expires (3600 s). */
    deadline = shopauth_engine_poll_timeout(engine);
    printf("  next timeout at %lld (refresh)\n", (long long)deadline);
    EXPECT(deadline > now_ms && deadline < now_ms + 3600 * 1000LL);
}

/* The host persists the snapshot; a new process restores it. */
static void persist_and_restore(shopauth_engine *engine) {
    char *snapshot = NULL, *error = NULL;
    shopauth_engine *restored = NULL;
    shopauth_status s;
    printf("== snapshot and restore\n");
    s = shopauth_engine_snapshot(engine, &snapshot);
    EXPECT(s == SHOPAUTH_OK && snapshot != NULL);
    if (snapshot == NULL) return;
    printf("  snapshot: %zu bytes\n", strlen(snapshot));
    s = shopauth_engine_new(CONFIG, strlen(CONFIG), &restored, &error);
    EXPECT(s == SHOPAUTH_OK);
    shopauth_string_free(error);
    error = NULL;
    if (restored != NULL) {
        s = shopauth_engine_restore(restored, snapshot, strlen(snapshot), &error);
        EXPECT(s == SHOPAUTH_OK);
        if (error) fprintf(stderr, "restore: %s\n", error);
        shopauth_string_free(error);
        EXPECT(store_state_is(restored, "key-store", "authorized"));
        EXPECT(store_state_is(restored, "shop-store", "authorized"));
        EXPECT(shopauth_engine_poll_timeout(restored) == shopauth_engine_poll_timeout(engine));
        shopauth_engine_free(restored);
    }
    shopauth_string_free(snapshot);
}

int main(void) {
    shopauth_engine *engine = NULL;
    char *error = NULL;
    shopauth_status s;

    printf("shopauth %s\n", shopauth_version());
    s = shopauth_engine_new(CONFIG, strlen(CONFIG), &engine, &error);
    if (s != SHOPAUTH_OK) {
        fprintf(stderr, "configuration refused (%s): %s\n", status_name(s), error ? error : "");
        shopauth_string_free(error);
        return 1;
    }

    key_flow(engine);
    oauth2_flow(engine);
    persist_and_restore(engine);

    shopauth_engine_free(engine);
    if (failures != 0) {
        fprintf(stderr, "c_host: %d expectation(s) failed\n", failures);
        return 1;
    }
    printf("c_host: both stores authorized\n");
    return 0;
}
