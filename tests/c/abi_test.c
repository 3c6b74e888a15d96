/*
 * abi_test.c — exercises every function of the shopauth C ABI (spec §6):
 * NULL in every pointer position, bad UTF-8, JSON that is not an object,
 * missing and unknown types, input over 16 MiB, the poll functions,
 * snapshot/restore (round trip, garbage, foreign configuration), take_changes,
 * the fleet calls (load, unload, route: a store moved between two engines)
 * and several threads on one engine. Asserts the statuses the spec gives.
 *
 *   cc -std=c11 -Wall -Wextra -Iinclude tests/c/abi_test.c
 *      target/debug/libshopauth.a -lpthread -ldl -lm -o abi_test && ./abi_test
 *
 * Exits 0 when every check passes, 1 otherwise. Run by tests/c_programs.rs
 * and, under valgrind and ASan/UBSan, by scripts/sanitizers.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include "shopauth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        checks++;                                                                      \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_STATUS(got, want)                                                        \
    do {                                                                               \
        shopauth_status got_ = (got);                                                  \
        checks++;                                                                      \
        if (got_ != (want)) {                                                          \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: status %s, wanted %s: %s\n", __FILE__, __LINE__,    \
                    status_name(got_), status_name(want), #got);                       \
        }                                                                              \
    } while (0)

#define SECRET "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define OTHER_SECRET "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define CONFIG_WITH(secret)                                                            \
    "{\"secret\":\"" secret "\","                                                      \
    "\"apps\":{\"myshop\":{\"app_key\":\"cid\",\"app_secret\":\"sec\","                \
    "\"redirect_uri\":\"https://host.example/cb\"}},"                                  \
    "\"platforms\":{\"mykey\":{\"kind\":\"key\",\"credential\":\"token\"},"            \
    "\"myshop\":{\"kind\":\"oauth2\",\"authorize_url\":\"https://as.example/authorize\"," \
    "\"token_url\":\"https://as.example/token\"}}}"

static const char CONFIG[] = CONFIG_WITH(SECRET);
static const char OTHER_CONFIG[] = CONFIG_WITH(OTHER_SECRET);

static const int64_t T0 = 1700000000000LL;
#define MIB16 ((size_t)16 * 1024 * 1024)

static const char *status_name(shopauth_status s) {
    switch (s) {
        case SHOPAUTH_OK: return "OK";
        case SHOPAUTH_REJECTED: return "REJECTED";
        case SHOPAUTH_EMPTY: return "EMPTY";
        case SHOPAUTH_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
        case SHOPAUTH_PANIC: return "PANIC";
        case SHOPAUTH_POISONED: return "POISONED";
    }
    return "(unknown status)";
}

static shopauth_engine *new_engine(const char *config) {
    shopauth_engine *e = NULL;
    char *err = NULL;
    shopauth_status s = shopauth_engine_new(config, strlen(config), &e, &err);
    if (s != SHOPAUTH_OK || e == NULL) {
        fprintf(stderr, "shopauth_engine_new: %s %s\n", status_name(s), err ? err : "");
        shopauth_string_free(err);
        exit(1);
    }
    if (err != NULL) {
        fprintf(stderr, "shopauth_engine_new wrote an error on OK: %s\n", err);
        failures++;
        shopauth_string_free(err);
    }
    return e;
}

/* handle() with a NUL-terminated input; the reply is returned through *reply. */
static shopauth_status handle(shopauth_engine *e, const char *input, int64_t now, char **reply) {
    return shopauth_engine_handle(e, input, strlen(input), now, reply);
}

/* The numeric "code" of an envelope, or -1. */
static long code_of(const char *reply) {
    const char *p;
    if (reply == NULL) return -1;
    p = strstr(reply, "\"code\":");
    if (p == NULL) return -1;
    p += 7;
    while (*p == ' ') p++;
    return strtol(p, NULL, 10);
}

/* Handles input and checks its status and, when given, the reply's code. */
static void expect_handle(shopauth_engine *e, const char *input, size_t len, shopauth_status want,
                          long want_code, const char *what) {
    char *reply = NULL;
    shopauth_status s = shopauth_engine_handle(e, input, len, T0, &reply);
    checks++;
    if (s != want) {
        failures++;
        fprintf(stderr, "handle(%s): status %s, wanted %s; reply %.300s\n", what, status_name(s),
                status_name(want), reply ? reply : "(none)");
    }
    checks++;
    if (reply == NULL) {
        failures++;
        fprintf(stderr, "handle(%s): no reply written\n", what);
    } else if (want_code >= 0 && code_of(reply) != want_code) {
        failures++;
        fprintf(stderr, "handle(%s): code %ld, wanted %ld; reply %.300s\n", what, code_of(reply),
                want_code, reply);
    }
    shopauth_string_free(reply);
}

#define EXPECT_HANDLE(e, lit, want, code) expect_handle((e), (lit), strlen(lit), (want), (code), (lit))

static char *snapshot_of(const shopauth_engine *e) {
    char *snap = NULL;
    CHECK_STATUS(shopauth_engine_snapshot(e, &snap), SHOPAUTH_OK);
    CHECK(snap != NULL);
    return snap;
}

/* Checks the engine's snapshot equals `before` (the engine is unchanged). */
static void expect_unchanged(const shopauth_engine *e, const char *before, const char *what) {
    char *after = snapshot_of(e);
    checks++;
    if (after == NULL || before == NULL || strcmp(after, before) != 0) {
        failures++;
        fprintf(stderr, "engine changed by %s\n", what);
    }
    shopauth_string_free(after);
}

/* -------------------------------------------------------------------------- */

static void test_version(void) {
    const char *v = shopauth_version();
    CHECK(v != NULL);
    CHECK(v != NULL && strlen(v) > 0);
    CHECK(v != NULL && strchr(v, '.') != NULL);
    CHECK(shopauth_version() == v); /* static */
}

static void test_new(void) {
    shopauth_engine *e = NULL;
    char *err = NULL;
    shopauth_status s;
    size_t big_len = MIB16 + 1;
    char *big;

    /* NULL in each pointer position. */
    CHECK_STATUS(shopauth_engine_new(NULL, 10, &e, &err), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(e == NULL);
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_new(NULL, 0, &e, &err), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(e == NULL);
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_new(CONFIG, strlen(CONFIG), NULL, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_new(NULL, 0, NULL, NULL), SHOPAUTH_INVALID_ARGUMENT);
    /* error_out may be NULL. */
    CHECK_STATUS(shopauth_engine_new(CONFIG, strlen(CONFIG), &e, NULL), SHOPAUTH_OK);
    CHECK(e != NULL);
    shopauth_engine_free(e);
    e = NULL;

    /* A configuration with a bad field: REJECTED, with the field's path. */
    {
        const char bad[] = "{\"secret\":\"00\"}";
        CHECK_STATUS(shopauth_engine_new(bad, strlen(bad), &e, &err), SHOPAUTH_REJECTED);
        CHECK(e == NULL);
        CHECK(err != NULL && strstr(err, "secret") != NULL);
        shopauth_string_free(err);
        err = NULL;
        CHECK_STATUS(shopauth_engine_new(bad, strlen(bad), &e, NULL), SHOPAUTH_REJECTED);
        CHECK(e == NULL);
    }
    {
        const char bad[] = "{\"secret\":\"" SECRET "\",\"platforms\":{\"p\":{\"kind\":\"nope\"}}}";
        CHECK_STATUS(shopauth_engine_new(bad, strlen(bad), &e, &err), SHOPAUTH_REJECTED);
        CHECK(e == NULL);
        CHECK(err != NULL && strstr(err, "platforms") != NULL);
        CHECK(err == NULL || strstr(err, SECRET) == NULL); /* never the secret */
        shopauth_string_free(err);
        err = NULL;
    }
    /* Text that is no configuration at all: refused (INVALID_ARGUMENT or
     * REJECTED), never a crash, never an engine. */
    {
        const char *cases[] = {"", "not json", "[]", "null", "{", "\xff\xfe\xfd", "{\"secret\":\"\xc3\x28\"}"};
        size_t i;
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            s = shopauth_engine_new(cases[i], strlen(cases[i]), &e, &err);
            CHECK(s == SHOPAUTH_INVALID_ARGUMENT || s == SHOPAUTH_REJECTED);
            CHECK(e == NULL);
            shopauth_string_free(err);
            err = NULL;
        }
    }
    /* Over 16 MiB. */
    big = malloc(big_len);
    CHECK(big != NULL);
    if (big != NULL) {
        memset(big, ' ', big_len);
        memcpy(big, CONFIG, strlen(CONFIG));
        s = shopauth_engine_new(big, big_len, &e, &err);
        CHECK(s == SHOPAUTH_INVALID_ARGUMENT || s == SHOPAUTH_REJECTED);
        CHECK(e == NULL);
        shopauth_string_free(err);
        err = NULL;
        free(big);
    }
    /* A configuration inside a longer buffer: the length delimits it. */
    {
        char buf[sizeof CONFIG + 16];
        memcpy(buf, CONFIG, strlen(CONFIG));
        memcpy(buf + strlen(CONFIG), "garbage garbage", 16);
        CHECK_STATUS(shopauth_engine_new(buf, strlen(CONFIG), &e, &err), SHOPAUTH_OK);
        CHECK(err == NULL);
        shopauth_engine_free(e);
        e = NULL;
    }
    shopauth_engine_free(NULL); /* a no-op */
    shopauth_string_free(NULL); /* a no-op */
}

static void test_handle_null_pointers(void) {
    shopauth_engine *e = new_engine(CONFIG);
    const char *reg = "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"mykey\"}";
    char *reply = NULL;

    /* NULL engine. */
    CHECK_STATUS(handle(NULL, reg, T0, &reply), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(reply == NULL || code_of(reply) == 900002);
    shopauth_string_free(reply);
    reply = NULL;
    /* NULL input, with and without a length. */
    CHECK_STATUS(shopauth_engine_handle(e, NULL, 10, T0, &reply), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(reply != NULL && code_of(reply) == 900002);
    shopauth_string_free(reply);
    reply = NULL;
    CHECK_STATUS(shopauth_engine_handle(e, NULL, 0, T0, &reply), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(reply != NULL && code_of(reply) == 900002);
    shopauth_string_free(reply);
    reply = NULL;
    /* NULL reply_out: INVALID_ARGUMENT and the input is not applied. */
    CHECK_STATUS(handle(e, reg, T0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_handle(NULL, NULL, 0, T0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_handle(e, NULL, 0, T0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_handle(NULL, reg, strlen(reg), T0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    {
        int64_t t;
        CHECK_STATUS(shopauth_engine_poll_output(e, &reply), SHOPAUTH_EMPTY);
        CHECK(reply == NULL);
        t = shopauth_engine_poll_timeout(e);
        CHECK(t == -1);
    }
    /* ... so registering now succeeds (no store_exists). */
    EXPECT_HANDLE(e, reg, SHOPAUTH_OK, 200);
    EXPECT_HANDLE(e, reg, SHOPAUTH_REJECTED, 900009);
    shopauth_engine_free(e);
}

static void test_handle_bad_input(void) {
    shopauth_engine *e = new_engine(CONFIG);
    char *before;
    size_t i;

    EXPECT_HANDLE(e, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"mykey\"}",
                  SHOPAUTH_OK, 200);
    before = snapshot_of(e);

    /* Not UTF-8. */
    {
        const char *cases[] = {
            "\xff",
            "\xc3\x28",
            "\xed\xa0\x80",     /* a surrogate */
            "\xc0\xaf",         /* an overlong encoding */
            "\xf4\x90\x80\x80", /* above U+10FFFF */
            "{\"type\":\"query\",\"client_id\":\"c\xff\",\"store_id\":\"s1\"}",
            "{\"type\":\"register_store\",\"client_id\":\"c2\",\"store_id\":\"\xe2\x82\",\"platform\":\"mykey\"}",
        };
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
            expect_handle(e, cases[i], strlen(cases[i]), SHOPAUTH_INVALID_ARGUMENT, 900002, "bad utf-8");
    }
    /* Not a JSON object, malformed JSON, no or unknown type. */
    {
        const char *cases[] = {
            "",
            " ",
            "not json",
            "[]",
            "[{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}]",
            "42",
            "-1.5e300",
            "\"register_store\"",
            "null",
            "true",
            "{",
            "}",
            "{\"type\":\"query\",}",
            "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"} trailing",
            "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}{}",
            "{}",
            "{\"client_id\":\"c1\",\"store_id\":\"s1\"}",
            "{\"type\":null}",
            "{\"type\":42}",
            "{\"type\":[\"query\"]}",
            "{\"type\":\"\"}",
            "{\"type\":\"no_such_type\",\"client_id\":\"c1\",\"store_id\":\"s1\"}",
            "{\"type\":\"QUERY\",\"client_id\":\"c1\",\"store_id\":\"s1\"}",
            "{\"type\":\"query \",\"client_id\":\"c1\",\"store_id\":\"s1\"}",
        };
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
            expect_handle(e, cases[i], strlen(cases[i]), SHOPAUTH_INVALID_ARGUMENT, 900002, cases[i]);
    }
    /* An embedded NUL: the length, not a terminator, delimits the input. */
    {
        const char with_nul[] = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}\0{}";
        expect_handle(e, with_nul, sizeof with_nul - 1, SHOPAUTH_INVALID_ARGUMENT, 900002, "embedded NUL");
        expect_handle(e, "\0", 1, SHOPAUTH_INVALID_ARGUMENT, 900002, "a lone NUL");
    }
    /* A message inside a longer buffer is read as given (no NUL needed). */
    {
        const char buf[] = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}GARBAGE";
        expect_handle(e, buf, strlen(buf) - 7, SHOPAUTH_OK, 200, "prefix of a buffer");
    }
    /* Field errors are rule refusals: REJECTED, 900002, kind illegal_param. */
    {
        const char *cases[] = {
            "{\"type\":\"register_store\",\"client_id\":\"c1\",\"platform\":\"mykey\"}",
            "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"\",\"platform\":\"mykey\"}",
            "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":"
            "\"12345678901234567890123456789012345678901234567890123456789012345\",\"platform\":\"mykey\"}",
            "{\"type\":\"register_store\",\"client_id\":7,\"store_id\":\"s2\",\"platform\":\"mykey\"}",
            "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"PASSWORD\"}",
            "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"KEY\"}",
            "{\"type\":\"http_response\",\"request_id\":\"nope\",\"status\":\"200\",\"body\":\"\"}",
        };
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *reply = NULL;
            shopauth_status s = handle(e, cases[i], T0, &reply);
            checks++;
            if (s != SHOPAUTH_REJECTED || code_of(reply) != 900002 || strstr(reply, "illegal_param") == NULL) {
                failures++;
                fprintf(stderr, "field error %s: status %s reply %s\n", cases[i], status_name(s),
                        reply ? reply : "(none)");
            }
            shopauth_string_free(reply);
        }
    }
    /* Deeply nested JSON: refused one way or the other, never a crash. */
    {
        const size_t depth = 200000;
        const char *head = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"x\":";
        size_t hl = strlen(head), n = hl + 2 * depth + 1;
        char *deep = malloc(n);
        CHECK(deep != NULL);
        if (deep != NULL) {
            char *reply = NULL;
            shopauth_status s;
            memcpy(deep, head, hl);
            memset(deep + hl, '[', depth);
            memset(deep + hl + depth, ']', depth);
            deep[n - 1] = '}';
            s = shopauth_engine_handle(e, deep, n, T0, &reply);
            CHECK(s == SHOPAUTH_INVALID_ARGUMENT || s == SHOPAUTH_REJECTED || s == SHOPAUTH_OK);
            CHECK(reply != NULL);
            shopauth_string_free(reply);
            /* Nested objects as the message itself. */
            memset(deep, '{', depth);
            reply = NULL;
            s = shopauth_engine_handle(e, deep, depth, T0, &reply);
            CHECK_STATUS(s, SHOPAUTH_INVALID_ARGUMENT);
            shopauth_string_free(reply);
            free(deep);
        }
    }
    /* Over 16 MiB: INVALID_ARGUMENT, with a real buffer of that length. */
    {
        const char *msg = "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"big\",\"platform\":\"mykey\"}";
        size_t n = MIB16 + 1;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (big != NULL) {
            memset(big, ' ', n);
            memcpy(big, msg, strlen(msg));
            expect_handle(e, big, n, SHOPAUTH_INVALID_ARGUMENT, 900002, "16 MiB + 1 of valid JSON");
            /* A long string value rather than whitespace. */
            memset(big, 'a', n);
            {
                const char *head = "{\"type\":\"query\",\"store_id\":\"s1\",\"client_id\":\"";
                memcpy(big, head, strlen(head));
            }
            big[n - 2] = '"';
            big[n - 1] = '}';
            expect_handle(e, big, n, SHOPAUTH_INVALID_ARGUMENT, 900002, "16 MiB + 1 string");
            /* Exactly 16 MiB is within the limit: parsed, and refused by a
             * rule (client_id longer than 64). */
            big[MIB16 - 2] = '"';
            big[MIB16 - 1] = '}';
            expect_handle(e, big, MIB16, SHOPAUTH_REJECTED, 900002, "exactly 16 MiB");
            free(big);
        }
    }
    /* Nothing above changed the engine. */
    expect_unchanged(e, before, "refused inputs");
    shopauth_string_free(before);
    {
        char *out = NULL;
        CHECK_STATUS(shopauth_engine_poll_output(e, &out), SHOPAUTH_EMPTY);
        CHECK(out == NULL);
    }
    /* ... and it still works. */
    EXPECT_HANDLE(e, "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}", SHOPAUTH_OK, 200);
    shopauth_engine_free(e);
}

static void test_times(void) {
    /* Negative, backwards and extreme times never panic. */
    const int64_t times[] = {T0, -1, 0, T0 - 1000, INT64_MIN, INT64_MAX, T0};
    shopauth_engine *e = new_engine(CONFIG);
    size_t i;
    EXPECT_HANDLE(e, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"myshop\"}",
                  SHOPAUTH_OK, 200);
    for (i = 0; i < sizeof times / sizeof times[0]; i++) {
        char *reply = NULL, *outs = NULL;
        shopauth_status s;
        s = handle(e, "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}", times[i], &reply);
        CHECK_STATUS(s, SHOPAUTH_OK);
        shopauth_string_free(reply);
        CHECK_STATUS(shopauth_engine_handle_timeout(e, times[i]), SHOPAUTH_OK);
        CHECK_STATUS(shopauth_engine_poll_outputs(e, &outs), SHOPAUTH_OK);
        shopauth_string_free(outs);
    }
    shopauth_engine_free(e);

    /* Deadlines computed near the end of time. */
    e = new_engine(CONFIG);
    {
        const char *inputs[] = {
            "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"myshop\"}",
            "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"URL\"}",
            "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"platform\":\"mykey\"}",
            "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"auth_type\":\"KEY\","
            "\"auth_info\":{\"token\":\"t\"}}",
            "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}",
        };
        for (i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
            char *reply = NULL;
            shopauth_status s = handle(e, inputs[i], INT64_MAX - 5, &reply);
            CHECK(s == SHOPAUTH_OK || s == SHOPAUTH_REJECTED);
            CHECK(reply != NULL);
            shopauth_string_free(reply);
        }
        {
            char *outs = NULL, *snap = NULL;
            shopauth_status s = shopauth_engine_handle_timeout(e, INT64_MAX);
            CHECK_STATUS(s, SHOPAUTH_OK);
            (void)shopauth_engine_poll_timeout(e);
            CHECK_STATUS(shopauth_engine_poll_outputs(e, &outs), SHOPAUTH_OK);
            shopauth_string_free(outs);
            CHECK_STATUS(shopauth_engine_snapshot(e, &snap), SHOPAUTH_OK);
            shopauth_string_free(snap);
        }
    }
    shopauth_engine_free(e);
}

/* handle_drain: the reply and every drained output in one text, with its length. */
static void test_handle_drain(void) {
    shopauth_engine *e = new_engine(CONFIG);
    const char *reg = "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"d1\",\"platform\":\"mykey\"}";
    const char *auth = "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"d1\",\"auth_type\":\"KEY\","
                       "\"auth_info\":{\"token\":\"tok-d\"}}";
    char *out = NULL;
    size_t len = 99;

    CHECK_STATUS(shopauth_engine_handle_drain(e, reg, strlen(reg), T0, NULL, &len), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(len == 99);
    CHECK_STATUS(shopauth_engine_handle_drain(NULL, NULL, 0, T0, NULL, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_handle_drain(NULL, reg, strlen(reg), T0, &out, &len), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out != NULL && code_of(out) == 900002 && strstr(out, "\"outputs\":[]}") != NULL);
    CHECK(out != NULL && len == strlen(out));
    shopauth_string_free(out);
    out = NULL;

    CHECK_STATUS(shopauth_engine_handle_drain(e, reg, strlen(reg), T0, &out, &len), SHOPAUTH_OK);
    CHECK(out != NULL && strncmp(out, "{\"reply\":{\"code\":200", 20) == 0 && len == strlen(out));
    shopauth_string_free(out);
    out = NULL;
    /* The transition comes out with the reply; the queue is empty after. */
    CHECK_STATUS(shopauth_engine_handle_drain(e, auth, strlen(auth), T0, &out, NULL), SHOPAUTH_OK);
    CHECK(out != NULL && strstr(out, "\"outputs\":[{\"type\":\"transition\"") != NULL);
    shopauth_string_free(out);
    out = NULL;
    CHECK_STATUS(shopauth_engine_poll_output(e, &out), SHOPAUTH_EMPTY);
    /* A refusal and a non-input still hand out both parts. */
    CHECK_STATUS(shopauth_engine_handle_drain(e, reg, strlen(reg), T0, &out, &len), SHOPAUTH_REJECTED);
    CHECK(out != NULL && code_of(out) == 900009 && len == strlen(out));
    shopauth_string_free(out);
    out = NULL;
    CHECK_STATUS(shopauth_engine_handle_drain(e, "\xff", 1, T0, &out, &len), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out != NULL && code_of(out) == 900002 && strstr(out, "\"outputs\":[]}") != NULL);
    shopauth_string_free(out);
    shopauth_engine_free(e);
}

static void test_timeout_and_polls(void) {
    shopauth_engine *e = new_engine(CONFIG);
    char *out = NULL;
    int64_t t;

    /* handle_timeout */
    CHECK_STATUS(shopauth_engine_handle_timeout(NULL, T0), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_handle_timeout(e, T0), SHOPAUTH_OK);

    /* poll_timeout */
    CHECK(shopauth_engine_poll_timeout(NULL) == -1);
    CHECK(shopauth_engine_poll_timeout(e) == -1);

    /* poll_output / poll_outputs on nothing */
    CHECK_STATUS(shopauth_engine_poll_output(NULL, &out), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK_STATUS(shopauth_engine_poll_output(e, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_output(NULL, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_output(e, &out), SHOPAUTH_EMPTY);
    CHECK(out == NULL);
    CHECK_STATUS(shopauth_engine_poll_outputs(NULL, &out), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK_STATUS(shopauth_engine_poll_outputs(e, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_outputs(NULL, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_outputs(e, &out), SHOPAUTH_OK);
    CHECK(out != NULL && strcmp(out, "[]") == 0);
    shopauth_string_free(out);
    out = NULL;

    /* Something to poll: a KEY authorization (one transition at least). */
    EXPECT_HANDLE(e, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"mykey\"}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(e,
                  "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"KEY\","
                  "\"auth_info\":{\"token\":\"tok-1\"}}",
                  SHOPAUTH_OK, 200);
    /* A NULL out pointer takes nothing from the queue. */
    CHECK_STATUS(shopauth_engine_poll_output(e, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_outputs(e, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_poll_output(e, &out), SHOPAUTH_OK);
    CHECK(out != NULL && out[0] == '{' && strstr(out, "\"type\":\"transition\"") != NULL);
    shopauth_string_free(out);
    out = NULL;
    /* Drain the rest one by one. */
    while (shopauth_engine_poll_output(e, &out) == SHOPAUTH_OK) {
        CHECK(out != NULL && out[0] == '{');
        shopauth_string_free(out);
        out = NULL;
    }
    CHECK(out == NULL);

    /* poll_outputs returns everything queued as one array. */
    EXPECT_HANDLE(e, "{\"type\":\"revoke\",\"client_id\":\"c1\",\"store_id\":\"s1\"}", SHOPAUTH_OK, 200);
    CHECK_STATUS(shopauth_engine_poll_outputs(e, &out), SHOPAUTH_OK);
    CHECK(out != NULL && strncmp(out, "[{", 2) == 0 && out[strlen(out) - 1] == ']');
    CHECK(out != NULL && strstr(out, "\"revoked\"") != NULL);
    shopauth_string_free(out);
    out = NULL;
    CHECK_STATUS(shopauth_engine_poll_outputs(e, &out), SHOPAUTH_OK);
    CHECK(out != NULL && strcmp(out, "[]") == 0);
    shopauth_string_free(out);
    out = NULL;
    CHECK_STATUS(shopauth_engine_poll_output(e, &out), SHOPAUTH_EMPTY);

    /* A URL authorization sets the request TTL timer. */
    EXPECT_HANDLE(e, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"platform\":\"myshop\"}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(e, "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"auth_type\":\"URL\"}",
                  SHOPAUTH_OK, 200);
    t = shopauth_engine_poll_timeout(e);
    CHECK(t > T0);
    CHECK(t <= T0 + 3600 * 1000LL);
    /* Firing it ends the attempt (failed, timeout) and clears the timer. */
    CHECK_STATUS(shopauth_engine_handle_timeout(e, t), SHOPAUTH_OK);
    CHECK_STATUS(shopauth_engine_poll_outputs(e, &out), SHOPAUTH_OK);
    CHECK(out != NULL && strstr(out, "\"failed\"") != NULL && strstr(out, "\"timeout\"") != NULL);
    shopauth_string_free(out);
    CHECK(shopauth_engine_poll_timeout(e) == -1);
    shopauth_engine_free(e);
}

/* Replaces the value of the top-level "version" with a far-future major. */
static char *with_version_bumped(const char *snap) {
    const char *v = strstr(snap, "\"version\":");
    const char *end;
    char *out;
    const char *repl;
    size_t head, tail;
    if (v == NULL) return NULL;
    v += 10;
    while (*v == ' ') v++;
    if (*v == '"') {
        end = strchr(v + 1, '"');
        if (end == NULL) return NULL;
        end++;
        repl = "\"999.0.0\"";
    } else {
        end = v;
        while (*end == '-' || *end == '.' || (*end >= '0' && *end <= '9')) end++;
        repl = "999";
    }
    head = (size_t)(v - snap);
    tail = strlen(end);
    out = malloc(head + strlen(repl) + tail + 1);
    if (out == NULL) return NULL;
    memcpy(out, snap, head);
    memcpy(out + head, repl, strlen(repl));
    memcpy(out + head + strlen(repl), end, tail + 1);
    return out;
}

static void test_snapshot_restore(void) {
    shopauth_engine *a = new_engine(CONFIG);
    shopauth_engine *b = new_engine(CONFIG);
    shopauth_engine *other = new_engine(OTHER_CONFIG);
    char *snap = NULL, *err = NULL, *before, *foreign;
    const char *q1 = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}";
    const char *q2 = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s2\"}";
    size_t i;

    EXPECT_HANDLE(a, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"mykey\"}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(a,
                  "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"KEY\","
                  "\"auth_info\":{\"token\":\"tok-1\"}}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(a, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"platform\":\"myshop\"}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(a, "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s2\",\"auth_type\":\"URL\"}",
                  SHOPAUTH_OK, 200);

    /* snapshot: NULL pointers. */
    CHECK_STATUS(shopauth_engine_snapshot(NULL, &snap), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(snap == NULL);
    CHECK_STATUS(shopauth_engine_snapshot(a, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_snapshot(NULL, NULL), SHOPAUTH_INVALID_ARGUMENT);
    snap = snapshot_of(a);
    CHECK(snap != NULL && snap[0] == '{' && strstr(snap, "\"version\"") != NULL);
    CHECK(snap != NULL && strstr(snap, SECRET) == NULL); /* never the engine secret */
    CHECK(snap != NULL && strstr(snap, "\"sec\"") == NULL); /* nor the app secret */

    /* restore: NULL pointers. */
    CHECK_STATUS(shopauth_engine_restore(NULL, snap, strlen(snap), &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_restore(b, NULL, 10, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_restore(b, NULL, 0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_restore(NULL, NULL, 0, NULL), SHOPAUTH_INVALID_ARGUMENT);

    /* Garbage: INVALID_ARGUMENT, the engine unchanged. */
    EXPECT_HANDLE(b, "{\"type\":\"register_store\",\"client_id\":\"c9\",\"store_id\":\"s9\",\"platform\":\"mykey\"}",
                  SHOPAUTH_OK, 200);
    before = snapshot_of(b);
    {
        const char *cases[] = {"", "garbage", "[]", "null", "42", "{", "\xff\xfe", "{\"version\":\"\xc3\x28\"}"};
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            shopauth_status s = shopauth_engine_restore(b, cases[i], strlen(cases[i]), &err);
            checks++;
            if (s != SHOPAUTH_INVALID_ARGUMENT) {
                failures++;
                fprintf(stderr, "restore(%s): %s, wanted INVALID_ARGUMENT\n", cases[i], status_name(s));
            }
            shopauth_string_free(err);
            err = NULL;
            expect_unchanged(b, before, "a garbage snapshot");
        }
    }
    /* Something JSON but not a snapshot; a truncated snapshot. */
    {
        shopauth_status s = shopauth_engine_restore(b, "{}", 2, &err);
        CHECK(s == SHOPAUTH_INVALID_ARGUMENT || s == SHOPAUTH_REJECTED);
        shopauth_string_free(err);
        err = NULL;
        expect_unchanged(b, before, "{}");
        CHECK_STATUS(shopauth_engine_restore(b, snap, strlen(snap) / 2, &err), SHOPAUTH_INVALID_ARGUMENT);
        shopauth_string_free(err);
        err = NULL;
        expect_unchanged(b, before, "a truncated snapshot");
        CHECK_STATUS(shopauth_engine_restore(b, snap, strlen(snap) - 1, NULL), SHOPAUTH_INVALID_ARGUMENT);
        expect_unchanged(b, before, "a truncated snapshot");
    }
    /* Over 16 MiB (the limit of handle inputs): a snapshot of any size
       restores (spec §3); here the snapshot padded with white space. */
    {
        size_t n = MIB16 + 1;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (big != NULL) {
            shopauth_engine *c = new_engine(CONFIG);
            char *again;
            memset(big, ' ', n);
            memcpy(big, snap, strlen(snap));
            CHECK_STATUS(shopauth_engine_restore(c, big, n, &err), SHOPAUTH_OK);
            CHECK(err == NULL);
            again = snapshot_of(c);
            CHECK(again != NULL && strcmp(again, snap) == 0);
            shopauth_string_free(again);
            shopauth_engine_free(c);
            free(big);
        }
    }
    /* Another configuration: REJECTED, unchanged. */
    foreign = snapshot_of(other);
    CHECK_STATUS(shopauth_engine_restore(b, foreign, strlen(foreign), &err), SHOPAUTH_REJECTED);
    CHECK(err != NULL && strlen(err) > 0);
    CHECK(err == NULL || (strstr(err, SECRET) == NULL && strstr(err, OTHER_SECRET) == NULL));
    shopauth_string_free(err);
    err = NULL;
    CHECK_STATUS(shopauth_engine_restore(b, foreign, strlen(foreign), NULL), SHOPAUTH_REJECTED);
    expect_unchanged(b, before, "a foreign snapshot");
    shopauth_string_free(foreign);
    /* Another major version: REJECTED, unchanged. */
    {
        char *bumped = with_version_bumped(snap);
        CHECK(bumped != NULL);
        if (bumped != NULL) {
            CHECK_STATUS(shopauth_engine_restore(b, bumped, strlen(bumped), &err), SHOPAUTH_REJECTED);
            shopauth_string_free(err);
            err = NULL;
            expect_unchanged(b, before, "a snapshot of another version");
            free(bumped);
        }
    }
    shopauth_string_free(before);

    /* Round trip: b continues as a does. */
    CHECK_STATUS(shopauth_engine_restore(b, snap, strlen(snap), &err), SHOPAUTH_OK);
    CHECK(err == NULL);
    shopauth_string_free(err);
    err = NULL;
    {
        const char *qs[] = {q1, q2};
        for (i = 0; i < 2; i++) {
            char *ra = NULL, *rb = NULL;
            CHECK_STATUS(handle(a, qs[i], T0 + 10, &ra), SHOPAUTH_OK);
            CHECK_STATUS(handle(b, qs[i], T0 + 10, &rb), SHOPAUTH_OK);
            CHECK(ra != NULL && rb != NULL && strcmp(ra, rb) == 0);
            shopauth_string_free(ra);
            shopauth_string_free(rb);
        }
    }
    CHECK(shopauth_engine_poll_timeout(a) == shopauth_engine_poll_timeout(b));
    /* The store registered in b before the restore is gone. */
    EXPECT_HANDLE(b, "{\"type\":\"query\",\"client_id\":\"c9\",\"store_id\":\"s9\"}", SHOPAUTH_REJECTED, 940002);
    /* Restoring into the engine the snapshot came from is fine too. */
    CHECK_STATUS(shopauth_engine_restore(a, snap, strlen(snap), NULL), SHOPAUTH_OK);
    /* A snapshot inside a longer buffer: the length delimits it. */
    {
        size_t n = strlen(snap);
        char *buf = malloc(n + 8);
        CHECK(buf != NULL);
        if (buf != NULL) {
            memcpy(buf, snap, n);
            memcpy(buf + n, "GARBAGE", 8);
            CHECK_STATUS(shopauth_engine_restore(b, buf, n, NULL), SHOPAUTH_OK);
            free(buf);
        }
    }

    shopauth_string_free(snap);
    shopauth_engine_free(a);
    shopauth_engine_free(b);
    shopauth_engine_free(other);
}

/* Several threads on one engine: calls are serialized inside. */
#define THREADS 4
#define PER_THREAD 100

struct worker {
    shopauth_engine *engine;
    int index;
    int bad;
};

/* -------------------------------------------------------------------------- */

/* The text of the first `"record":{…}` object in `changes` (a change entry's
 * record), copied; the records of this test hold no braces inside strings. */
static char *first_record(const char *changes) {
    const char *p = strstr(changes, "\"record\":{");
    const char *q;
    int depth = 0;
    char *out;
    if (p == NULL) return NULL;
    p += strlen("\"record\":");
    for (q = p; *q; q++) {
        if (*q == '{') depth++;
        if (*q == '}' && --depth == 0) break;
    }
    if (*q == '\0') return NULL;
    out = malloc((size_t)(q - p) + 2);
    if (out == NULL) return NULL;
    memcpy(out, p, (size_t)(q - p) + 1);
    out[q - p + 1] = '\0';
    return out;
}

static void test_fleet(void) {
    shopauth_engine *a = new_engine(CONFIG);
    shopauth_engine *b = new_engine(CONFIG);
    const char *query = "{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}";
    char *out = NULL, *err = NULL, *record, *load, *before;
    size_t n;
    EXPECT_HANDLE(a, "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"platform\":\"mykey\"}",
                  SHOPAUTH_OK, 200);
    EXPECT_HANDLE(a, "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"s1\",\"auth_type\":\"KEY\",\"auth_info\":{\"token\":\"tok-c\"}}",
                  SHOPAUTH_OK, 200);
    CHECK_STATUS(shopauth_engine_poll_outputs(a, &out), SHOPAUTH_OK);
    shopauth_string_free(out);
    /* take_changes: NULL pointers, then the store's entry */
    CHECK_STATUS(shopauth_engine_take_changes(NULL, &out), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK_STATUS(shopauth_engine_take_changes(a, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_take_changes(a, &out), SHOPAUTH_OK);
    record = out ? first_record(out) : NULL;
    CHECK(record != NULL);
    shopauth_string_free(out);
    if (record == NULL) return;
    n = strlen(record) + 32;
    load = malloc(n);
    if (load == NULL) exit(1);
    snprintf(load, n, "{\"stores\":[%s]}", record);

    /* NULL pointers */
    CHECK_STATUS(shopauth_engine_load(NULL, load, strlen(load), &err), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(err != NULL);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_load(b, NULL, 5, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_load(b, NULL, 0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_unload(NULL, NULL, 0, NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_unload(b, NULL, 0, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_route(b, query, strlen(query), NULL), SHOPAUTH_INVALID_ARGUMENT);
    CHECK_STATUS(shopauth_engine_route(NULL, query, strlen(query), &out), SHOPAUTH_INVALID_ARGUMENT);
    CHECK(out != NULL && strcmp(out, "{\"ref\":null,\"store_id\":null}") == 0);
    shopauth_string_free(out);
    CHECK_STATUS(shopauth_engine_route(b, NULL, 0, &out), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(out);

    /* bad bytes and texts: INVALID_ARGUMENT, nothing changed */
    before = snapshot_of(b);
    CHECK_STATUS(shopauth_engine_load(b, "\xff\xfe", 2, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_load(b, "nope", 4, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_unload(b, "[1]", 3, &err), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(err);
    CHECK_STATUS(shopauth_engine_route(b, "\xff", 1, &out), SHOPAUTH_INVALID_ARGUMENT);
    shopauth_string_free(out);
    CHECK_STATUS(shopauth_engine_route(b, "[1]", 3, &out), SHOPAUTH_OK);
    CHECK(out != NULL && strcmp(out, "{\"ref\":null,\"store_id\":null}") == 0);
    shopauth_string_free(out);
    expect_unchanged(b, before, "refused loads");
    shopauth_string_free(before);

    /* the store moves: b answers for it, a forgets it */
    err = NULL;
    CHECK_STATUS(shopauth_engine_load(b, load, strlen(load), &err), SHOPAUTH_OK);
    CHECK(err == NULL);
    CHECK_STATUS(shopauth_engine_route(b, query, strlen(query), &out), SHOPAUTH_OK);
    CHECK(out != NULL && strstr(out, "\"store_id\":\"s1\"") != NULL && strstr(out, "\"ref\":\"") != NULL);
    shopauth_string_free(out);
    EXPECT_HANDLE(b, query, SHOPAUTH_OK, 200);
    CHECK_STATUS(shopauth_engine_load(b, load, strlen(load), &err), SHOPAUTH_REJECTED);
    CHECK(err != NULL && strstr(err, "already_loaded") != NULL && strstr(err, "tok-c") == NULL);
    shopauth_string_free(err);
    {
        const char *un = "{\"store_ids\":[\"s1\"]}";
        CHECK_STATUS(shopauth_engine_unload(a, un, strlen(un), &err), SHOPAUTH_OK);
        CHECK(err == NULL);
        CHECK_STATUS(shopauth_engine_unload(a, un, strlen(un), NULL), SHOPAUTH_OK);
    }
    EXPECT_HANDLE(a, query, SHOPAUTH_REJECTED, 940002);
    free(record);
    free(load);
    shopauth_engine_free(a);
    shopauth_engine_free(b);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < PER_THREAD; i++) {
        char input[256];
        char *reply = NULL, *outs = NULL, *snap = NULL;
        shopauth_status s;
        snprintf(input, sizeof input,
                 "{\"type\":\"register_store\",\"client_id\":\"c1\",\"store_id\":\"t%d-%d\",\"platform\":\"mykey\"}",
                 w->index, i);
        s = handle(w->engine, input, T0 + i, &reply);
        if (s != SHOPAUTH_OK) w->bad++;
        shopauth_string_free(reply);
        reply = NULL;
        snprintf(input, sizeof input,
                 "{\"type\":\"authorize\",\"client_id\":\"c1\",\"store_id\":\"t%d-%d\",\"auth_type\":\"KEY\","
                 "\"auth_info\":{\"token\":\"tok-%d-%d\"}}",
                 w->index, i, w->index, i);
        s = handle(w->engine, input, T0 + i, &reply);
        if (s != SHOPAUTH_OK) w->bad++;
        shopauth_string_free(reply);
        if (shopauth_engine_poll_outputs(w->engine, &outs) != SHOPAUTH_OK) w->bad++;
        shopauth_string_free(outs);
        if (shopauth_engine_handle_timeout(w->engine, T0 + i) != SHOPAUTH_OK) w->bad++;
        (void)shopauth_engine_poll_timeout(w->engine);
        if (i % 25 == 0) {
            if (shopauth_engine_snapshot(w->engine, &snap) != SHOPAUTH_OK) w->bad++;
            shopauth_string_free(snap);
        }
    }
    return NULL;
}

static void test_threads(void) {
    shopauth_engine *e = new_engine(CONFIG);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    int i;
    char *snap;
    for (i = 0; i < THREADS; i++) {
        workers[i].engine = e;
        workers[i].index = i;
        workers[i].bad = 0;
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].bad == 0);
    }
    snap = snapshot_of(e);
    CHECK(snap != NULL && strstr(snap, "t3-99") != NULL);
    shopauth_string_free(snap);
    shopauth_engine_free(e);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    test_version();
    test_new();
    test_handle_null_pointers();
    test_handle_bad_input();
    test_times();
    test_timeout_and_polls();
    test_handle_drain();
    test_snapshot_restore();
    test_fleet();
    test_threads();
    printf("abi_test: %d checks, %d failed\n", checks, failures);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
