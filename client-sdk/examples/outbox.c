/*
 * outbox.c: the persistent outbox across application restarts, and its end-to-end test
 * (client-sdk/ffi/tests/outbox.rs runs it).
 *
 *   outbox login   <server> <outbox file> <username>     log in, print TOKEN <hex>
 *   outbox queue   <server> <outbox file> <to user id> <prefix> <n> [crash]
 *                  queue n sends (server down), plus one cancelled with cancel_send; exit
 *                  (with "crash": _exit at once, the client never freed, as in a crash)
 *   outbox deliver <server> <outbox file> <token> <count>
 *                  resume the session; wait until count queued sends are "sent", in order;
 *                  then page forward through them with history's after_seq, and check
 *                  the conversation list's last_seq
 *
 * Each run is a fresh client, as after an application restart: what it finds queued comes
 * from the outbox file alone. Exit status 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static FeigeClient *new_client(const char *server, const char *outbox) {
    char config[1024];
    FeigeClient *client = NULL;
    snprintf(config, sizeof config,
             "{\"server\":\"%s\",\"device\":\"outbox-pc\",\"outbox_file\":\"%s\","
             "\"backoff_initial_ms\":50,\"backoff_max_ms\":200,\"backoff_jitter_percent\":20}",
             server, outbox);
    if (feige_client_new(config, &client) != FEIGE_OK || client == NULL) {
        printf("FAIL feige_client_new: %s\n", feige_last_error());
        exit(2);
    }
    return client;
}

static uint64_t call(FeigeClient *client, const char *method, const char *params) {
    uint64_t id = 0;
    int32_t rc = feige_call(client, method, params, &id);
    if (rc != FEIGE_OK) {
        printf("FAIL feige_call(%s) = %s: %s\n", method, feige_status_str(rc), feige_last_error());
        exit(2);
    }
    return id;
}

/* Waits up to 60 s for the completion of `id`; its JSON is copied to `out`. */
static int32_t await_response(FeigeClient *client, uint64_t id, char *out, size_t size) {
    int waited;
    for (waited = 0; waited < 60000;) {
        FeigeEvent *ev = NULL;
        int32_t rc = feige_wait_event(client, 100, &ev);
        if (rc == FEIGE_NO_EVENT) {
            waited += 100;
            continue;
        }
        if (rc != FEIGE_OK) {
            return rc;
        }
        if (feige_event_kind(ev) == FEIGE_EVENT_RESPONSE && feige_event_request_id(ev) == id) {
            int32_t status = feige_event_status(ev);
            snprintf(out, size, "%s", event_json(ev));
            feige_event_free(ev);
            return status;
        }
        printf("     event %s\n", event_json(ev));
        feige_event_free(ev);
    }
    return FEIGE_ERR_TIMEOUT;
}

static int do_login(const char *server, const char *outbox, const char *username) {
    char params[256];
    char result[4096];
    char token[256];
    FeigeClient *client = new_client(server, outbox);
    snprintf(params, sizeof params, "{\"username\":\"%s\",\"password\":\"password123\"}",
             username);
    CHECK(await_response(client, call(client, "login", params), result, sizeof result) ==
              FEIGE_OK,
          "login");
    CHECK(json_string(result, "token", token, sizeof token), "the session's token");
    printf("TOKEN %s\n", token);
    feige_client_free(client);
    return failures;
}

static int do_queue(const char *server, const char *outbox, const char *to, const char *prefix,
                    int n, int crash) {
    char params[256];
    char result[4096];
    char id[32];
    char previous[32] = "";
    int i;
    int growing = 1;
    int queued = 1;
    FeigeClient *client = new_client(server, outbox);
    for (i = 0; i < n; i++) {
        snprintf(params, sizeof params, "{\"to_user\":\"%s\",\"text\":\"%s%d\"}", to, prefix, i);
        /* Completes at once: the message is in the file before feige_call returns. */
        if (await_response(client, call(client, "send_message", params), result,
                           sizeof result) != FEIGE_OK ||
            strstr(result, "\"queued\":true") == NULL || !json_string(result, "client_msg_id", id, sizeof id)) {
            queued = 0;
            continue;
        }
        /* Ids grow: compare as numbers written in decimal. */
        if (previous[0] != '\0' &&
            (strlen(id) < strlen(previous) || (strlen(id) == strlen(previous) && strcmp(id, previous) <= 0))) {
            growing = 0;
        }
        snprintf(previous, sizeof previous, "%s", id);
        printf("QUEUED %s\n", id);
    }
    CHECK(queued, "every send_message is queued with its client_msg_id");
    CHECK(growing, "client message ids grow");
    /* One more, cancelled before it could be sent: it must never arrive. */
    snprintf(params, sizeof params, "{\"to_user\":\"%s\",\"text\":\"%scancelled\"}", to, prefix);
    CHECK(await_response(client, call(client, "send_message", params), result, sizeof result) ==
                  FEIGE_OK &&
              json_string(result, "client_msg_id", id, sizeof id),
          "the message to cancel is queued");
    snprintf(params, sizeof params, "{\"client_msg_id\":\"%s\"}", id);
    CHECK(await_response(client, call(client, "cancel_send", params), result, sizeof result) ==
                  FEIGE_OK &&
              strstr(result, "\"cancelled\":true") != NULL,
          "cancel_send takes it out");
    CHECK(await_response(client, call(client, "cancel_send", params), result, sizeof result) ==
                  FEIGE_OK &&
              strstr(result, "\"cancelled\":false") != NULL,
          "cancel_send again: no longer there");
    if (crash) {
        /* The application dies: no free, no shutdown; only the file remains. */
        printf("PASS: %d failure(s)\n", failures);
        fflush(stdout);
        _exit(failures == 0 ? 0 : 1);
    }
    /* The application quits while the server is down. */
    feige_client_free(client);
    return failures;
}

static int do_deliver(const char *server, const char *outbox, const char *token, int count) {
    char params[512];
    char result[4096];
    char id[32];
    char previous[32] = "";
    int sent = 0;
    int in_order = 1;
    int failed = 0;
    int waited = 0;
    int logged_in = 0;
    char conversation[32] = "";
    char first_seq[32] = "";
    char last_seq[32] = "";
    FeigeClient *client = new_client(server, outbox);
    snprintf(params, sizeof params, "{\"token\":\"%s\"}", token);
    call(client, "resume", params);
    while (sent < count && waited < 60000) {
        FeigeEvent *ev = NULL;
        const char *json;
        int32_t rc = feige_wait_event(client, 100, &ev);
        if (rc == FEIGE_NO_EVENT) {
            waited += 100;
            continue;
        }
        if (rc != FEIGE_OK) {
            break;
        }
        json = event_json(ev);
        if (feige_event_kind(ev) == FEIGE_EVENT_STATE && strstr(json, "\"state\":\"logged_in\"")) {
            logged_in = 1;
        }
        if (strstr(json, "\"type\":\"outbox\"") != NULL && json_string(json, "client_msg_id", id, sizeof id)) {
            if (strstr(json, "\"state\":\"sent\"") != NULL) {
                if (previous[0] != '\0' &&
                    (strlen(id) < strlen(previous) ||
                     (strlen(id) == strlen(previous) && strcmp(id, previous) <= 0))) {
                    in_order = 0;
                }
                snprintf(previous, sizeof previous, "%s", id);
                if (sent == 0) {
                    json_string(json, "conversation_id", conversation, sizeof conversation);
                    json_string(json, "seq", first_seq, sizeof first_seq);
                }
                json_string(json, "seq", last_seq, sizeof last_seq);
                printf("SENT %s\n", id);
                sent++;
            } else if (strstr(json, "\"state\":\"failed\"") != NULL) {
                printf("     failed: %s\n", json);
                failed++;
            }
        } else {
            printf("     event %s\n", json);
        }
        feige_event_free(ev);
    }
    CHECK(logged_in, "a logged_in state after resume");
    CHECK(sent == count, "every queued message is sent");
    CHECK(in_order, "sent in the order queued");
    CHECK(failed == 0, "none failed");
    CHECK(await_response(client, call(client, "reconnect_now", "{}"), result, sizeof result) ==
              FEIGE_OK,
          "reconnect_now completes at once");
    /* Forward paging: the 5 messages after the first one sent, oldest first. */
    {
        const char *at;
        unsigned long long expect = strtoull(first_seq, NULL, 10) + 1;
        int ascending = 1;
        int n = 0;
        char history[65536];
        snprintf(params, sizeof params,
                 "{\"conversation_id\":\"%s\",\"after_seq\":\"%s\",\"limit\":5}", conversation,
                 first_seq);
        CHECK(await_response(client, call(client, "history", params), history, sizeof history) ==
                  FEIGE_OK,
              "history with after_seq");
        for (at = strstr(history, "\"seq\":\""); at != NULL; at = strstr(at + 1, "\"seq\":\"")) {
            if (strtoull(at + 7, NULL, 10) != expect) {
                ascending = 0;
            }
            expect++;
            n++;
        }
        CHECK(n == 5 && ascending, "the 5 messages after after_seq, oldest first");
        CHECK(strstr(history, "\"has_more\":true") != NULL, "has_more: the rest follows");
        /* The conversation list says which seq its counts reflect: the last one sent. */
        CHECK(await_response(client, call(client, "conversations", "{}"), history,
                             sizeof history) == FEIGE_OK &&
                  json_string(history, "last_seq", id, sizeof id) && strcmp(id, last_seq) == 0,
              "conversations: last_seq is the newest message's seq");
    }
    feige_client_free(client);
    return failures;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc >= 5 && strcmp(argv[1], "login") == 0) {
        rc = do_login(argv[2], argv[3], argv[4]);
    } else if (argc >= 7 && strcmp(argv[1], "queue") == 0) {
        rc = do_queue(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]),
                      argc >= 8 && strcmp(argv[7], "crash") == 0);
    } else if (argc >= 6 && strcmp(argv[1], "deliver") == 0) {
        rc = do_deliver(argv[2], argv[3], argv[4], atoi(argv[5]));
    } else {
        fprintf(stderr, "usage: see the comment at the top of outbox.c\n");
        return 2;
    }
    printf("PASS: %d failure(s)\n", rc);
    return rc == 0 ? 0 : 1;
}
