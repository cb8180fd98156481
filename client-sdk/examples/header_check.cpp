// Compiled (not run) by `cargo test -p feige-ffi --test c_example`: feige.h must be valid C++
// for the Qt client.
#include "feige.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>

static void wake(void *user_data) { static_cast<void>(user_data); }

int main() {
    FeigeClient *client = nullptr;
    std::int32_t rc = feige_client_new("{\"server\":\"127.0.0.1:7900\"}", &client);
    if (rc != FEIGE_OK) {
        std::printf("%s\n", feige_status_str(rc));
        return 1;
    }
    feige_client_set_wakeup(client, wake, nullptr);
    FeigeEvent *event = nullptr;
    if (feige_poll_event(client, &event) == FEIGE_OK) {
        const char *json = nullptr;
        std::size_t len = 0;
        feige_event_json(event, &json, &len);
        feige_event_free(event);
    }
    feige_client_shutdown(client, 0);
    feige_client_free(client);
    return FEIGE_ABI_VERSION == feige_abi_version() ? 0 : 1;
}
