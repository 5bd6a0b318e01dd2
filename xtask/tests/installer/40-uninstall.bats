#!/usr/bin/env bats
# --uninstall removes the container and images and keeps the configuration; --purge removes
# the configuration too; neither happens without a confirmation.

load helpers

setup() {
    unique_names
}

teardown() {
    remove_test_objects
}

@test "uninstall asks first, keeps the configuration, and --purge removes it" {
    local port
    port=$(free_port)
    run installer --port "$port"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    container_running "$AI_PROXY_NAME"
    [ "$(image_ids | wc -l)" -eq 1 ]

    # Nobody answers: nothing is removed.
    local before
    before=$(host_state)
    run installer --uninstall
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" == *"end of input"* ]]
    assert_unchanged "$before"
    # A "no" is a "no".
    run installer_with_input "n\n" --uninstall
    [ "$status" -eq "$EX_INPUT" ]
    assert_unchanged "$before"

    run installer_with_input "y\n" --uninstall
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"kept $AI_PROXY_CONFIG_DIR"* ]]
    run ! "$ENGINE" container inspect "$AI_PROXY_NAME"
    [ "$(image_ids | wc -l)" -eq 0 ]
    run ! ping_port "$port"
    [ -f "$AI_PROXY_CONFIG_DIR/.env" ]
    [ -f "$AI_PROXY_CONFIG_DIR/provider-config.yaml" ]

    # Reinstalling over the kept configuration reuses it.
    local token
    token=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    run installer --port "$port"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [ "$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$token" ]

    run installer --uninstall --purge --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    run ! "$ENGINE" container inspect "$AI_PROXY_NAME"
    [ "$(image_ids | wc -l)" -eq 0 ]
    [ ! -e "$AI_PROXY_CONFIG_DIR" ]

    # Nothing left: a second uninstall has nothing to do and succeeds.
    run installer --uninstall --purge --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *"nothing to remove"* ]]
}
