#!/usr/bin/env bats
# Issue 11, item 1: one run per install name at a time. Two runs of one name started 0-3 s apart:
# the second either waits for the first and then sees its result, or gives up after
# AI_PROXY_LOCK_TIMEOUT with its own exit code, changing nothing; the token the container uses
# is the one in .env.

load helpers

setup() {
    unique_names
    BEFORE=$(host_state)
}

teardown() {
    remove_test_objects
}

# assert_one_install PORT: the install answers on PORT with the token that .env holds, and
# nothing but our two files, one container and one image are left.
assert_one_install() {
    local port=$1 token
    wait_healthy "$AI_PROXY_NAME" "$port"
    token=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    [[ "$token" =~ ^[0-9a-f]{64}$ ]]
    [ "$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$port" ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/models")" = 200 ]
    [ "$(find "$AI_PROXY_CONFIG_DIR" -mindepth 1 | wc -l)" -eq 2 ]
    [ "$(labelled_containers | wc -l)" -eq 1 ]
    [ "$(image_ids | wc -l)" -eq 1 ]
    [ ! -e "$AI_PROXY_BUILD_DIR" ]
    [ -z "$(find "$INSTALL_TMPDIR" -mindepth 1)" ]
    [ ! -e "$LOCK_DIR/$AI_PROXY_NAME.journal" ]
}

@test "two fresh installs of one name, 0, 1.5 and 3 s apart: one installs, the other exits with the lock code and changes nothing" {
    local delay first second code_a code_b started elapsed
    for delay in 0 1.5 3; do
        unique_names "lock-$delay"
        first=$(free_port)
        second=$(free_port)
        # The first run is held at its build until the second has finished, so the two overlap
        # whatever the engine's speed (Podman installs in 2-3 s).
        local pause="$BATS_TEST_TMPDIR/pause-$delay"
        pausing_engine "$pause" build after
        PATH="$pause/bin:$PATH" AI_PROXY_LOCK_TIMEOUT=1 installer_in_background "$BATS_TEST_TMPDIR/a-$delay" --port "$first"
        sleep "$delay"
        started=$(date +%s%N)
        AI_PROXY_LOCK_TIMEOUT=1 run installer --port "$second"
        code_b=$status
        elapsed=$((($(date +%s%N) - started) / 1000000))
        touch "$pause/release"
        wait_exit "$INSTALLER_PID"
        code_a=$CODE
        # Whichever took the lock first installs; with no delay that may be either one.
        if [ "$code_a" -eq 0 ]; then
            [ "$code_b" -eq "$EX_LOCK" ] || { echo "delay $delay: second exited $code_b: $output"; return 1; }
            [[ "$output" == *"another installer run for '$AI_PROXY_NAME'"*"nothing was changed"* ]]
            # The wait is bounded: 1 s, plus the installer's own start.
            [ "$elapsed" -lt 6000 ]
            assert_one_install "$first"
            echo "# delay $delay s: the first run installed, the second gave up after $elapsed ms" >&3
        else
            [ "$delay" = 0 ] || { echo "delay $delay: first exited $code_a: $(cat "$BATS_TEST_TMPDIR/a-$delay")"; return 1; }
            [ "$code_a" -eq "$EX_LOCK" ] && [ "$code_b" -eq 0 ]
            assert_one_install "$second"
            echo "# delay $delay s: the second run took the lock first and installed" >&3
        fi
        remove_test_objects
        rm -rf "$AI_PROXY_CONFIG_DIR"
    done
}

@test "the other order: the run started first is held before its lock, the one started 1 s later takes it and installs, the first exits with the lock code" {
    local first second pause="$BATS_TEST_TMPDIR/pause" a_pid a_out="$BATS_TEST_TMPDIR/a" b_out="$BATS_TEST_TMPDIR/b"
    first=$(free_port)
    second=$(free_port)
    # `dirname` runs once before the lock is taken (the installer finding its own directory).
    pausing_command "$pause" dirname -- after
    PATH="$pause/bin:$PATH" AI_PROXY_LOCK_TIMEOUT=1 installer_in_background "$a_out" --port "$first"
    a_pid=$INSTALLER_PID
    wait_for_file "$pause/paused"
    sleep 1
    installer_in_background "$b_out" --port "$second"
    local i
    for i in $(seq 1 600); do
        grep -q '^\[3/11\]' "$b_out" && break
        sleep 0.1
    done
    touch "$pause/release"
    wait_exit "$a_pid"
    [ "$CODE" -eq "$EX_LOCK" ] || { echo "first exited $CODE: $(cat "$a_out")"; return 1; }
    wait_exit "$INSTALLER_PID"
    [ "$CODE" -eq 0 ] || { echo "second exited $CODE: $(cat "$b_out")"; return 1; }
    assert_one_install "$second"
}

@test "a second run waits for the first and then acts on its result: install, then an upgrade that was waiting" {
    local first second code_a
    first=$(free_port)
    second=$(free_port)
    installer_in_background "$BATS_TEST_TMPDIR/a" --port "$first"
    sleep 1
    AI_PROXY_LOCK_TIMEOUT=240 run installer --port "$second" --yes
    wait_exit "$INSTALLER_PID"
        code_a=$CODE
    [ "$code_a" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/a"; return 1; }
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"is in progress: waiting up to 240s"* ]]
    # It upgraded what the first run installed, keeping its token.
    [[ "$output" == *"existing install: container $AI_PROXY_NAME"* ]]
    [[ "$output" == *"upgrade outage"* ]]
    assert_one_install "$second"
    run ! ping_port "$first"
}

@test "a run waiting for the lock, then uninstall --purge that was waiting: nothing of either is left" {
    local port code_a
    port=$(free_port)
    installer_in_background "$BATS_TEST_TMPDIR/a" --port "$port"
    sleep 2
    AI_PROXY_LOCK_TIMEOUT=240 run installer --uninstall --purge --yes
    wait_exit "$INSTALLER_PID"
        code_a=$CODE
    [ "$code_a" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/a"; return 1; }
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [ -z "$(labelled_containers)" ]
    [ -z "$(image_ids)" ]
    [ ! -e "$AI_PROXY_CONFIG_DIR" ]
    run ! ping_port "$port"
}

@test "a lock directory another user could write is refused before anything else" {
    local dir
    dir=$(mktemp -d /tmp/aipt-lock.XXXXXX)
    CLEANUP_DIRS+=("$dir")
    chmod 0777 "$dir"
    AI_PROXY_LOCK_DIR="$dir" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_LOCK" ]
    [[ "$output" == *"the lock directory $dir is a directory owned by root (uid 0), mode 777"* ]]
    [ -z "$(ls -A "$dir")" ]
    assert_unchanged "$BEFORE"
}
