#!/usr/bin/env bats
# Issue 11, item 9: a run killed outright (SIGKILL: no trap runs) at each step of an upgrade,
# then a re-run. The re-run recovers before anything else and says so: the previous service
# (same container id) serves again on its port, .env is back, and no leftover is found by label
# (containers, images including untagged ones), temporary file, build directory or journal.
# The re-run is not confirmed (no --yes, nobody answering), so after its recovery it changes
# nothing, and what it recovered can be compared with the host as it was before the upgrade.

load helpers

setup_file() {
    base_install_file
}

teardown_file() {
    unique_names base
    remove_test_objects
}

setup() {
    base_install_ready
}

# kill_at COMMAND ARG before|after: an upgrade to a new port, paused at the first
# `COMMAND ARG ...`, is killed with SIGKILL (so it cleans up nothing); then the pause is released
# and whatever the paused command does completes, as it would have.
kill_at() {
    local pause="$BATS_TEST_TMPDIR/pause"
    rm -rf "$pause"
    pausing_command "$pause" "$1" "$2" "$3"
    PATH="$pause/bin:$PATH" installer_in_background "$BATS_TEST_TMPDIR/out" --port "$(free_port)" --yes
    wait_for_file "$pause/paused"
    kill -KILL "$INSTALLER_PID"
    wait "$INSTALLER_PID" || true
    touch "$pause/release"
    # The released command finishes on its own (bounded by the wrapper's own wait).
    local i
    for i in $(seq 1 600); do
        pgrep -f "$pause/bin" >/dev/null || break
        sleep 0.1
    done
}

# leftovers: what a killed run leaves that the host as it was does not have.
leftovers() {
    diff <(echo "$BEFORE") <(host_state) || true
}

# rerun_recovers: the re-run recovers first and says so, then stops at the confirmation; the
# previous container serves again and the host is as before the killed run.
rerun_recovers() {
    run installer --port "$BASE_PORT"
    [ "$status" -eq "$EX_INPUT" ] || { echo "$output"; return 1; }
    [[ "$output" == *"an earlier run was interrupted"*"recovering it first"* ]] || { echo "$output"; return 1; }
    [[ "$output" == *"no answer (end of input): nothing was changed"* ]]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$OLD_ID" ]
    wait_healthy "$AI_PROXY_NAME" "$BASE_PORT"
    assert_unchanged "$BEFORE"
}

@test "killed during the build: the untagged new image and the temporary files are found and removed" {
    kill_at "$ENGINE" build after
    local left
    left=$(leftovers)
    [[ "$left" == *"temporary files"* ]] || { echo "$left"; return 1; }
    rerun_recovers
}

@test "killed after the .env backup, before its rename: temporary files and the backup are recovered" {
    kill_at sync -- after
    [ -n "$(find "$AI_PROXY_CONFIG_DIR" -name '.env.rollback.*')" ]
    rerun_recovers
    [[ "$output" == *"restored $AI_PROXY_CONFIG_DIR/.env (PORT=$BASE_PORT)"* ]]
}

@test "killed with the new container created: $AI_PROXY_NAME-new is found by label and removed" {
    kill_at "$ENGINE" create after
    [ -n "$(container_field "$AI_PROXY_NAME-new" '{{.Id}}')" ]
    rerun_recovers
    [[ "$output" == *"removed the unfinished container"* ]]
}

@test "killed during the old container's stop: the re-run starts it again" {
    kill_at "$ENGINE" stop before
    run ! container_running "$OLD_ID"
    rerun_recovers
    [[ "$output" == *"the previous container serves again on port $BASE_PORT"* ]]
}

@test "killed with the old container renamed -previous: renamed back and started" {
    kill_at "$ENGINE" rename after
    [ "$(container_field "$AI_PROXY_NAME-previous" '{{.Id}}')" = "$OLD_ID" ]
    run ! ping_port "$BASE_PORT"
    rerun_recovers
    [[ "$output" == *"renamed $AI_PROXY_NAME-previous back to $AI_PROXY_NAME"* ]]
}

@test "killed with the new container started in its place: the new one goes, the previous one serves again" {
    kill_at "$ENGINE" start after
    [ "$(container_field "$AI_PROXY_NAME-previous" '{{.Id}}')" = "$OLD_ID" ]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" != "$OLD_ID" ]
    rerun_recovers
    [[ "$output" == *"removed the unfinished new container $AI_PROXY_NAME"* ]]
}

@test "killed during the health wait: the same" {
    kill_at curl -fsS after
    rerun_recovers
}

# Last: it leaves the new version installed, which becomes the next base.
@test "killed after the new container was healthy, during the clean-up: the re-run completes the upgrade" {
    kill_at "$ENGINE" rm before
    local new_id new_port
    new_id=$(container_field "$AI_PROXY_NAME" '{{.Id}}')
    new_port=$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")
    [ "$new_id" != "$OLD_ID" ]
    run installer --port "$new_port"
    [ "$status" -eq "$EX_INPUT" ] || { echo "$output"; return 1; }
    [[ "$output" == *"completed the interrupted upgrade: the new container $AI_PROXY_NAME stays"* ]]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$new_id" ]
    wait_healthy "$AI_PROXY_NAME" "$new_port"
    run ! "$ENGINE" container inspect "$OLD_ID"
    [ "$(labelled_containers | wc -l)" -eq 1 ]
    [ "$(image_ids | wc -l)" -eq 1 ]
    [ -z "$(find "$AI_PROXY_CONFIG_DIR" -name '.env.*')" ]
    [ -z "$(find "$INSTALL_TMPDIR" -mindepth 1)" ]
    [ ! -e "$AI_PROXY_BUILD_DIR" ]
    [ ! -e "$LOCK_DIR/$AI_PROXY_NAME.journal" ]
}
