#!/usr/bin/env bats
# Failures and interruptions after the integrity check: each must leave the host exactly as it
# was, with the previous install serving again.

load helpers

setup_file() {
    base_install_file
}

teardown_file() {
    remove_test_objects
}

# Each test starts from the base install, running and healthy, and records the host as it is.
setup() {
    base_install_ready
}

teardown() {
    # A test that made its own install (not the shared base) cleans it up even when it failed.
    [[ "$AI_PROXY_NAME" == *-base ]] || remove_test_objects
    # The rejected-configuration test breaks the shared install's file on purpose.
    if [[ -f "$BATS_TEST_TMPDIR/providers.orig" ]]; then
        cp -p "$BATS_TEST_TMPDIR/providers.orig" "$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    fi
}

# The previous container, the same one, serves again on its port; nothing else changed.
assert_previous_serving() {
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$OLD_ID" ]
    container_running "$AI_PROXY_NAME"
    wait_healthy "$AI_PROXY_NAME" "$BASE_PORT"
    assert_unchanged "$BEFORE"
}

@test "a configuration the proxy rejects: refused before the swap, the previous container keeps serving" {
    local file="$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    cp -p "$file" "$BATS_TEST_TMPDIR/providers.orig"
    printf 'INVALID: [this is not valid\n' >>"$file"
    BEFORE=$(host_state)
    run installer --port "$BASE_PORT" --yes
    [ "$status" -eq "$EX_CONFIG" ] || { echo "$output"; return 1; }
    [[ "$output" == *"provider-config.yaml"* ]]
    [[ "$output" == *"ai-proxy rejects the configuration"* ]]
    # Never stopped: the same container answered throughout, and the admin's file is untouched.
    never_stopped
    assert_previous_serving
}

@test "a new container that fails its health check: diagnostics, rollback, the previous container serves again" {
    variant_pkg "$BATS_TEST_TMPDIR/v" bad-cmd
    local new_port
    new_port=$(free_port)
    INSTALLER="$BATS_TEST_TMPDIR/v/installer.sh" AI_PROXY_HEALTH_TIMEOUT=60 run installer --port "$new_port" --yes
    [ "$status" -eq "$EX_HEALTH" ] || { echo "$output"; return 1; }
    # Diagnostics: state, health, and the proxy's own complaint from its log.
    [[ "$output" == *"diagnostics for $AI_PROXY_NAME"* ]]
    [[ "$output" == *"state: status="* ]]
    [[ "$output" == *"/app/missing"* ]]
    [[ "$output" == *"restored $AI_PROXY_CONFIG_DIR/.env (PORT=$BASE_PORT)"* ]]
    [[ "$output" == *"the previous container serves again on port $BASE_PORT"* ]]
    assert_previous_serving
}

@test "SIGTERM after the swap: the new container goes, PORT is restored, the previous one serves again" {
    local pause="$BATS_TEST_TMPDIR/pause" new_port pid code=0
    pausing_engine "$pause" start
    new_port=$(free_port)
    PATH="$pause/bin:$PATH" installer_in_background "$BATS_TEST_TMPDIR/out" --port "$new_port" --yes
    pid=$INSTALLER_PID
    wait_for_file "$pause/paused"
    # Mid-install: the old container is stopped, the new one runs with the new PORT.
    run ! container_running "$OLD_ID"
    [ "$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$new_port" ]
    kill -TERM "$pid"
    touch "$pause/release"
    wait "$pid" || code=$?
    run cat "$BATS_TEST_TMPDIR/out"
    [ "$code" -eq "$EX_DEPLOY" ] || { echo "exit $code: $output"; return 1; }
    [[ "$output" == *"interrupted by SIGTERM during step 9"* ]]
    [[ "$output" == *"the previous container serves again on port $BASE_PORT"* ]]
    assert_previous_serving
}

@test "SIGTERM during the build of an upgrade: rolled back, the previous container never stopped" {
    local pause="$BATS_TEST_TMPDIR/pause" pid code=0
    pausing_engine "$pause" build
    PATH="$pause/bin:$PATH" installer_in_background "$BATS_TEST_TMPDIR/out" --port "$(free_port)" --yes
    pid=$INSTALLER_PID
    wait_for_file "$pause/paused"
    container_running "$OLD_ID"
    kill -TERM "$pid"
    touch "$pause/release"
    wait "$pid" || code=$?
    run cat "$BATS_TEST_TMPDIR/out"
    [ "$code" -eq "$EX_BUILD" ] || { echo "exit $code: $output"; return 1; }
    [[ "$output" == *"interrupted by SIGTERM during step 7"* ]] || { echo "exit $code: $output"; return 1; }
    never_stopped
    assert_previous_serving
}

@test "SIGTERM during a fresh install: nothing is left, not even the new configuration" {
    unique_names
    BEFORE=$(host_state)
    local pause="$BATS_TEST_TMPDIR/pause" pid code=0
    pausing_engine "$pause" build
    PATH="$pause/bin:$PATH" installer_in_background "$BATS_TEST_TMPDIR/out" --port "$(free_port)"
    pid=$INSTALLER_PID
    wait_for_file "$pause/paused"
    [ -f "$AI_PROXY_CONFIG_DIR/.env" ]
    kill -TERM "$pid"
    touch "$pause/release"
    wait "$pid" || code=$?
    run cat "$BATS_TEST_TMPDIR/out"
    [ "$code" -eq "$EX_BUILD" ] || { echo "exit $code: $output"; return 1; }
    [[ "$output" == *"removed $AI_PROXY_CONFIG_DIR"* ]]
    assert_unchanged "$BEFORE"
}
