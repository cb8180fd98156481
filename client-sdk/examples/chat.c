/*
 * chat.c: a walk through the Feige C SDK, and its end-to-end test.
 *
 *   chat <server host:port> <name suffix> [<silent host:port>]
 *
 * Two users register, log in and become friends; alice sends bob a message; bob, woken through the wakeup
 * descriptor, takes it with feige_poll_event; alice reads it back with history.
 * Then the error paths (NULL handles, invalid UTF-8, unknown method, malformed params) and
 * shutdown: a request in flight completes exactly once, cancelled if shutdown beat it, and
 * later calls are refused. With a third address (a server that accepts and never answers),
 * a request that waits for the connection is shut down and must come back cancelled.
 *
 * Exit status 0 when every check passed. Build (see docs/sdk.md):
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iclient-sdk/include chat.c \
 *      target/debug/libfeige.a -lpthread -ldl -lm -o chat
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feige.h"

static int failures = 0;

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (cond) {                                                              \
            printf("ok   %s\n", what);                                           \
        } else {                                                                 \
            printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__);               \
            failures++;                                                          \
        }                                                                        \
    } while (0)

/* Stops at once: the rest of the walk depends on this step. */
#define REQUIRE(cond, what)                                                      \
    do {                                                                         \
        CHECK(cond, what);                                                       \
        if (!(cond)) {                                                           \
            exit(2);                                                             \
        }                                                                        \
    } while (0)

/* The wakeup callback runs on an SDK thread: it only counts, under a mutex. */
static pthread_mutex_t wakeups_lock = PTHREAD_MUTEX_INITIALIZER;
static int wakeups = 0;

static void on_wakeup(void *user_data) {
    int *counter = (int *)user_data;
    pthread_mutex_lock(&wakeups_lock);
    (*counter)++;
    pthread_mutex_unlock(&wakeups_lock);
}

static int wakeup_count(void) {
    int n;
    pthread_mutex_lock(&wakeups_lock);
    n = wakeups;
    pthread_mutex_unlock(&wakeups_lock);
    return n;
}

static const char *event_json(const FeigeEvent *ev) {
    const char *json = NULL;
    size_t len = 0;
    if (feige_event_json(ev, &json, &len) != FEIGE_OK || json[len] != '\0') {
        return "";
    }
    return json;
}

/* Copies the string value of "key" out of flat JSON; ids are decimal strings. */
static int json_string(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    const char *start;
    const char *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    start = strstr(json, pattern);
    if (start == NULL) {
        return 0;
    }
    start += strlen(pattern);
    end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= size) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

static void print_event(const char *who, const FeigeEvent *ev) {
    printf("     %s event kind=%d request=%llu status=%d %s\n", who, (int)feige_event_kind(ev),
           (unsigned long long)feige_event_request_id(ev), (int)feige_event_status(ev),
           event_json(ev));
}

static FeigeClient *new_client(const char *server, const char *device, int timeout_ms) {
    char config[256];
    FeigeClient *client = NULL;
    int32_t rc;
    snprintf(config, sizeof config,
             "{\"server\":\"%s\",\"device\":\"%s\",\"request_timeout_ms\":%d}", server, device,
             timeout_ms);
    rc = feige_client_new(config, &client);
    REQUIRE(rc == FEIGE_OK && client != NULL, "feige_client_new");
    return client;
}

static uint64_t call(FeigeClient *client, const char *method, const char *params) {
    uint64_t id = 0;
    int32_t rc = feige_call(client, method, params, &id);
    if (rc != FEIGE_OK) {
        printf("     feige_call(%s) = %d %s\n", method, (int)rc, feige_status_str(rc));
    }
    REQUIRE(rc == FEIGE_OK && id != 0, method);
    return id;
}

/* Waits for the completion of request `id`, printing other events; NULL after 60 s. */
static FeigeEvent *await_response(FeigeClient *client, const char *who, uint64_t id) {
    int waited = 0;
    while (waited < 60000) {
        FeigeEvent *ev = NULL;
        int32_t rc = feige_wait_event(client, 100, &ev);
        if (rc == FEIGE_NO_EVENT) {
            waited += 100;
            continue;
        }
        if (rc != FEIGE_OK) {
            printf("     feige_wait_event = %d %s\n", (int)rc, feige_status_str(rc));
            return NULL;
        }
        print_event(who, ev);
        if (feige_event_kind(ev) == FEIGE_EVENT_RESPONSE && feige_event_request_id(ev) == id) {
            return ev;
        }
        feige_event_free(ev);
    }
    return NULL;
}

/* Runs a call to completion; returns its event when it succeeded. */
static FeigeEvent *call_ok(FeigeClient *client, const char *who, const char *method,
                           const char *params) {
    FeigeEvent *ev = await_response(client, who, call(client, method, params));
    REQUIRE(ev != NULL, "a completion arrives");
    REQUIRE(feige_event_status(ev) == FEIGE_OK, method);
    return ev;
}

/* Bob's side: sleep in poll() on the wakeup descriptor, drain with feige_poll_event. */
static int receive_via_fd(FeigeClient *client, const char *text) {
    int fd = -1;
    int waited = 0;
    int found = 0;
    REQUIRE(feige_client_wakeup_fd(client, &fd) == FEIGE_OK && fd >= 0, "wakeup fd");
    while (!found && waited < 60000) {
        struct pollfd p;
        int ready;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        ready = poll(&p, 1, 100);
        if (ready <= 0) {
            waited += 100;
            continue;
        }
        for (;;) {
            FeigeEvent *ev = NULL;
            int32_t rc = feige_poll_event(client, &ev);
            if (rc == FEIGE_NO_EVENT) {
                break;
            }
            REQUIRE(rc == FEIGE_OK, "feige_poll_event after the fd became readable");
            print_event("bob", ev);
            if (feige_event_kind(ev) == FEIGE_EVENT_PUSH &&
                strstr(event_json(ev), "\"type\":\"message\"") != NULL &&
                strstr(event_json(ev), text) != NULL) {
                found = 1;
            }
            feige_event_free(ev);
        }
        /* Drained: if the fd still reads as ready, an event must be waiting. */
        p.revents = 0;
        if (poll(&p, 1, 0) > 0) {
            FeigeEvent *ev = NULL;
            CHECK(feige_poll_event(client, &ev) == FEIGE_OK, "the fd is readable only while events wait");
            feige_event_free(ev);
        }
    }
    return found;
}

static void error_paths(FeigeClient *client) {
    uint64_t id = 12345;
    FeigeEvent *ev = NULL;
    FeigeClient *none = NULL;
    const char *json = NULL;
    int fd = -1;

    CHECK(feige_client_new(NULL, &none) == FEIGE_ERR_NULL && none == NULL, "new: NULL config");
    CHECK(feige_client_new("{\"server\":\"h:1\"}", NULL) == FEIGE_ERR_NULL, "new: NULL out");
    CHECK(feige_client_new("{\"server\":", &none) == FEIGE_ERR_JSON && none == NULL,
          "new: malformed config");
    CHECK(feige_client_new("{\"device\":\"x\"}", &none) == FEIGE_ERR_PARAMS && none == NULL,
          "new: config without a server");
    CHECK(feige_call(NULL, "login", "{}", &id) == FEIGE_ERR_NULL && id == 12345,
          "call: NULL client, out untouched");
    CHECK(feige_call(client, NULL, "{}", &id) == FEIGE_ERR_NULL, "call: NULL method");
    CHECK(feige_call(client, "ping", NULL, NULL) == FEIGE_ERR_NULL, "call: NULL request id");
    CHECK(feige_call(client, "lo\xffgin", "{}", &id) == FEIGE_ERR_UTF8, "call: invalid UTF-8 method");
    CHECK(feige_call(client, "login", "{\"username\":\"\xc3\x28\"}", &id) == FEIGE_ERR_UTF8,
          "call: invalid UTF-8 params");
    CHECK(feige_call(client, "no_such_method", "{}", &id) == FEIGE_ERR_UNKNOWN_METHOD,
          "call: unknown method");
    CHECK(feige_call(client, "login", "{\"username\":", &id) == FEIGE_ERR_JSON,
          "call: malformed params");
    CHECK(feige_call(client, "login", "[1,2]", &id) == FEIGE_ERR_PARAMS, "call: params not an object");
    CHECK(feige_call(client, "login", "{\"username\":\"a\"}", &id) == FEIGE_ERR_PARAMS,
          "call: missing field");
    printf("     feige_last_error: %s\n", feige_last_error());
    CHECK(strcmp(feige_last_error(), "login: missing \"password\"") == 0,
          "last_error explains the refusal");
    CHECK(feige_call(client, "send_message", "{\"to_user\":\"x\",\"text\":\"t\"}", &id) ==
              FEIGE_ERR_PARAMS,
          "call: an id that is not a number");
    CHECK(id == 12345, "call: request id untouched by refusals");
    CHECK(feige_poll_event(NULL, &ev) == FEIGE_ERR_NULL, "poll: NULL client");
    CHECK(feige_poll_event(client, NULL) == FEIGE_ERR_NULL, "poll: NULL out");
    CHECK(feige_wait_event(NULL, 0, &ev) == FEIGE_ERR_NULL, "wait: NULL client");
    CHECK(feige_event_kind(NULL) == FEIGE_ERR_NULL, "event_kind(NULL)");
    CHECK(feige_event_status(NULL) == FEIGE_ERR_NULL, "event_status(NULL)");
    CHECK(feige_event_request_id(NULL) == 0, "event_request_id(NULL)");
    CHECK(feige_event_json(NULL, &json, NULL) == FEIGE_ERR_NULL && json == NULL, "event_json(NULL)");
    CHECK(feige_client_wakeup_fd(NULL, &fd) == FEIGE_ERR_NULL && fd == -1, "wakeup_fd: NULL client");
    CHECK(feige_client_set_wakeup(NULL, on_wakeup, NULL) == FEIGE_ERR_NULL, "set_wakeup: NULL client");
    CHECK(feige_client_shutdown(NULL, 0) == FEIGE_ERR_NULL, "shutdown: NULL client");
    CHECK(strcmp(feige_status_str(-9999), "unknown status") == 0, "status_str: unknown code");
    CHECK(strlen(feige_status_str(FEIGE_ERR_CANCELLED)) > 0, "status_str: known code");
    feige_client_free(NULL);
    feige_event_free(NULL);
}

/* Shuts down with a request in flight; it must complete exactly once; then nothing more. */
static void shutdown_with_request_in_flight(FeigeClient *client, const char *who, int must_cancel) {
    uint64_t id = call(client, "whoami", "{}");
    uint64_t refused = 0;
    int completions = 0;
    int cancelled = 0;
    int closed = 0;
    int32_t rc;
    FeigeEvent *ev = NULL;

    rc = feige_client_shutdown(client, 2000);
    CHECK(rc == FEIGE_OK || rc == FEIGE_ERR_TIMEOUT, "shutdown");
    CHECK(feige_client_shutdown(client, 0) == FEIGE_OK, "second shutdown is a no-op");
    CHECK(feige_call(client, "ping", "{}", &refused) == FEIGE_ERR_SHUT_DOWN && refused == 0,
          "call after shutdown is refused");
    while ((rc = feige_poll_event(client, &ev)) == FEIGE_OK) {
        print_event(who, ev);
        if (feige_event_kind(ev) == FEIGE_EVENT_RESPONSE && feige_event_request_id(ev) == id) {
            completions++;
            if (feige_event_status(ev) == FEIGE_ERR_CANCELLED) {
                cancelled = strstr(event_json(ev), "\"code\":\"CANCELLED\"") != NULL;
            }
        }
        closed = feige_event_kind(ev) == FEIGE_EVENT_STATE &&
                 strstr(event_json(ev), "\"state\":\"closed\"") != NULL;
        feige_event_free(ev);
    }
    CHECK(rc == FEIGE_ERR_SHUT_DOWN, "drained after shutdown: FEIGE_ERR_SHUT_DOWN");
    CHECK(feige_wait_event(client, -1, &ev) == FEIGE_ERR_SHUT_DOWN, "wait after shutdown returns");
    CHECK(completions == 1, "the request in flight completed exactly once");
    CHECK(closed, "the last event is {\"state\":\"closed\"}");
    if (must_cancel) {
        CHECK(cancelled, "the request in flight was cancelled");
    }
}

int main(int argc, char **argv) {
    char alice_name[64], bob_name[64], params[512], alice_id[32], bob_id[32], request_id[32];
    const char *server;
    FeigeClient *alice;
    FeigeClient *bob;
    FeigeEvent *ev;

    if (argc < 3) {
        fprintf(stderr, "usage: %s <server host:port> <name suffix> [<silent host:port>]\n", argv[0]);
        return 64;
    }
    server = argv[1];
    snprintf(alice_name, sizeof alice_name, "alice_%s", argv[2]);
    snprintf(bob_name, sizeof bob_name, "bob_%s", argv[2]);

    printf("libfeige %s (ABI %u), header %s (ABI %d)\n", feige_version(),
           (unsigned)feige_abi_version(), FEIGE_VERSION, FEIGE_ABI_VERSION);
    CHECK(feige_abi_version() == FEIGE_ABI_VERSION, "library and header ABI match");
    CHECK(strcmp(feige_version(), FEIGE_VERSION) == 0, "library and header versions match");

    alice = new_client(server, "alice-pc", 30000);
    bob = new_client(server, "bob-pc", 30000);
    CHECK(feige_client_set_wakeup(alice, on_wakeup, &wakeups) == FEIGE_OK, "set_wakeup");

    snprintf(params, sizeof params,
             "{\"username\":\"%s\",\"password\":\"password123\",\"nickname\":\"Alice\"}", alice_name);
    ev = call_ok(alice, "alice", "register", params);
    REQUIRE(json_string(event_json(ev), "user_id", alice_id, sizeof alice_id), "register -> user_id");
    feige_event_free(ev);
    CHECK(wakeup_count() > 0, "the wakeup callback ran");

    snprintf(params, sizeof params,
             "{\"username\":\"%s\",\"password\":\"password123\",\"nickname\":\"Bob\"}", bob_name);
    ev = call_ok(bob, "bob", "register", params);
    REQUIRE(json_string(event_json(ev), "user_id", bob_id, sizeof bob_id), "register -> user_id");
    feige_event_free(ev);

    snprintf(params, sizeof params, "{\"username\":\"%s\",\"password\":\"password123\"}", alice_name);
    ev = call_ok(alice, "alice", "login", params);
    CHECK(strstr(event_json(ev), "\"token\":\"") != NULL, "login -> token");
    feige_event_free(ev);

    snprintf(params, sizeof params, "{\"username\":\"%s\",\"password\":\"wrong password\"}", bob_name);
    ev = await_response(bob, "bob", call(bob, "login", params));
    REQUIRE(ev != NULL, "a completion arrives");
    CHECK(feige_event_status(ev) == FEIGE_ERR_SERVER &&
              strstr(event_json(ev), "\"code\":\"BAD_CREDENTIALS\"") != NULL,
          "login with a wrong password -> FEIGE_ERR_SERVER, BAD_CREDENTIALS");
    feige_event_free(ev);

    snprintf(params, sizeof params, "{\"username\":\"%s\",\"password\":\"password123\"}", bob_name);
    ev = call_ok(bob, "bob", "login", params);
    feige_event_free(ev);

    /* 1:1 messages need friendship (the server's default): alice asks, bob accepts. */
    snprintf(params, sizeof params, "{\"to_user\":\"%s\",\"message\":\"hi, alice here\"}", bob_id);
    ev = call_ok(alice, "alice", "friend_request", params);
    REQUIRE(json_string(event_json(ev), "request_id", request_id, sizeof request_id),
            "friend_request -> request_id");
    feige_event_free(ev);
    snprintf(params, sizeof params, "{\"request_id\":\"%s\",\"accept\":true}", request_id);
    ev = call_ok(bob, "bob", "friend_respond", params);
    CHECK(strstr(event_json(ev), "\"accepted\":true") != NULL, "friend_respond -> accepted");
    feige_event_free(ev);

    snprintf(params, sizeof params, "{\"to_user\":\"%s\",\"text\":\"hello bob, \xe4\xbd\xa0\xe5\xa5\xbd\"}", bob_id);
    ev = call_ok(alice, "alice", "send_message", params);
    CHECK(strstr(event_json(ev), "\"seq\":\"1\"") != NULL, "send_message -> seq \"1\"");
    feige_event_free(ev);

    CHECK(receive_via_fd(bob, "hello bob, \xe4\xbd\xa0\xe5\xa5\xbd"),
          "bob receives the message through the wakeup fd and feige_poll_event");

    snprintf(params, sizeof params, "{\"peer_user\":\"%s\",\"limit\":10}", bob_id);
    ev = call_ok(alice, "alice", "history", params);
    CHECK(strstr(event_json(ev), "hello bob") != NULL, "history returns the message");
    CHECK(strstr(event_json(ev), alice_id) != NULL, "history names the sender");
    feige_event_free(ev);

    error_paths(alice);

    shutdown_with_request_in_flight(bob, "bob", 0);
    feige_client_free(bob);
    shutdown_with_request_in_flight(alice, "alice", 0);
    feige_client_free(alice);

    if (argc > 3) {
        /* Connected at TCP level, but the Hello is never answered: the request waits. */
        FeigeClient *stuck = new_client(argv[3], "stuck-pc", 60000);
        shutdown_with_request_in_flight(stuck, "stuck", 1);
        feige_client_free(stuck);
    }

    printf("%s: %d failure(s)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}
