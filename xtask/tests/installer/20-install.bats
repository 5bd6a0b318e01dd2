#!/usr/bin/env bats
# A fresh install answered interactively (invalid answers first), then what it must have built:
# the hardening, the configuration and its permissions, the commands it prints, a restart after
# an edit, and a re-run that keeps the admin's files and measures the upgrade outage.

load helpers

setup_file() {
    unique_names shared
    export PORT BUSY
    PORT=$(free_port)
    BUSY=$(free_port)
    hold_port "$BUSY"
    export HOLDER_PID="${HELD_PIDS[0]}"
    # Four invalid answers (sign, hex, leading zero, a port another program holds), then a valid one.
    installer_with_input "+8080\n0x1F90\n08080\n$BUSY\n$PORT\n" >"$BATS_FILE_TMPDIR/install.out" 2>&1
    echo $? >"$BATS_FILE_TMPDIR/install.status"
}

teardown_file() {
    kill "$HOLDER_PID" 2>/dev/null || true
    remove_test_objects
}

setup() {
    unique_names shared
}

@test "fresh install: invalid answers are re-asked with the reason, then it installs and is healthy" {
    run cat "$BATS_FILE_TMPDIR/install.out"
    [ "$(cat "$BATS_FILE_TMPDIR/install.status")" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"'+8080' is not usable: not a plain decimal number"* ]]
    [[ "$output" == *"'0x1F90' is not usable: not a plain decimal number"* ]]
    [[ "$output" == *"'08080' is not usable: leading zeros"* ]]
    [[ "$output" == *"'$BUSY' is not usable: port $BUSY is in use"* ]]
    [[ "$output" == *"[11/11]"* ]]
    # Plain HTTP published on all addresses: the summary says the token travels in clear.
    [[ "$output" == *"the token, prompts and answers travel in clear"* ]]
    [[ "$output" =~ installed\ in\ [0-9]+\.[0-9]{3}\ s ]]
    echo "# fresh install (${ENGINE}): ${BASH_REMATCH[0]}" >&3
    container_running "$AI_PROXY_NAME"
    wait_healthy "$AI_PROXY_NAME" "$PORT"
    [ "$(ping_port "$PORT")" = pong ]
    [ ! -e "$AI_PROXY_BUILD_DIR" ]
    [ -z "$(find "$INSTALL_TMPDIR" -mindepth 1)" ]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Config.Image}}')" = "$AI_PROXY_NAME:$(pkg_version)" ] ||
        [ "$(container_field "$AI_PROXY_NAME" '{{.Config.Image}}')" = "localhost/$AI_PROXY_NAME:$(pkg_version)" ]
}

@test "the engine shows every hardening option on the running container" {
    local n=$AI_PROXY_NAME
    [ "$(container_field "$n" '{{.Config.User}}')" = "1001:1001" ]
    [ "$(container_field "$n" '{{.HostConfig.ReadonlyRootfs}}')" = true ]
    # One small noexec tmpfs and no other writable place (podman adds rprivate,tmpcopyup).
    [[ "$(container_field "$n" '{{json .HostConfig.Tmpfs}}')" =~ ^\{\"/tmp\":\"rw,noexec,nosuid,nodev,size=16m(,rprivate,tmpcopyup)?\"\}$ ]]
    [ "$(container_field "$n" '{{.HostConfig.Memory}}')" -eq $((512 * 1024 * 1024)) ]
    [ "$(container_field "$n" '{{.HostConfig.MemorySwap}}')" -eq $((512 * 1024 * 1024)) ]
    [ "$(container_field "$n" '{{.HostConfig.NanoCpus}}')" -eq 500000000 ] ||
        [ "$(container_field "$n" '{{.HostConfig.CpuQuota}}')" -eq 50000 ]
    [ "$(container_field "$n" '{{.HostConfig.PidsLimit}}')" -eq 128 ]
    [[ "$(container_field "$n" '{{json .HostConfig.CapDrop}}')" =~ (ALL|CAP_) ]]
    [ "$(container_field "$n" '{{json .HostConfig.CapAdd}}')" = null ] || [ "$(container_field "$n" '{{json .HostConfig.CapAdd}}')" = "[]" ]
    [[ "$(container_field "$n" '{{json .HostConfig.SecurityOpt}}')" == *no-new-privileges* ]]
    [[ "$(container_field "$n" '{{json .HostConfig.SecurityOpt}}')" != *unconfined* ]]
    local ulimits
    ulimits=$(container_field "$n" '{{json .HostConfig.Ulimits}}')
    [[ "${ulimits,,}" == *nofile* && "${ulimits,,}" == *nproc* ]]
    [ "$(container_field "$n" '{{.HostConfig.RestartPolicy.Name}}')" = unless-stopped ]
    [ "$(container_field "$n" '{{.HostConfig.LogConfig.Type}}')" = json-file ] ||
        [ "$(container_field "$n" '{{.HostConfig.LogConfig.Type}}')" = k8s-file ]
    [[ "$(container_field "$n" '{{json .HostConfig.LogConfig}}')" =~ (max-size|\"Size\":\"10) ]]
    [ "$(container_field "$n" '{{.HostConfig.Privileged}}')" = false ]
    [ "$(container_field "$n" '{{.HostConfig.NetworkMode}}')" != host ]
    [ "$(container_field "$n" '{{.HostConfig.PidMode}}')" != host ]
    [ "$(container_field "$n" '{{.HostConfig.IpcMode}}')" != host ]
    # Only our port is published, container port = host port.
    [ "$(container_field "$n" '{{json .HostConfig.PortBindings}}')" = "{\"$PORT/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"$PORT\"}]}" ]
    # The config is mounted read-only, and nothing else is.
    [ "$(container_field "$n" '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}')" = "$AI_PROXY_CONFIG_DIR:/app/config:false " ]
    # What the kernel enforces on the container's process: uid, no capabilities, no new
    # privileges, a seccomp filter (the engine's default profile).
    local pid
    pid=$(container_field "$n" '{{.State.Pid}}')
    run -0 cat "/proc/$pid/status"
    [[ "$output" =~ Uid:[[:space:]]+1001[[:space:]]+1001 ]]
    [[ "$output" =~ CapEff:[[:space:]]+0000000000000000 ]]
    [[ "$output" =~ CapBnd:[[:space:]]+0000000000000000 ]]
    [[ "$output" =~ NoNewPrivs:[[:space:]]+1 ]]
    [[ "$output" =~ Seccomp:[[:space:]]+2 ]]
    [ "$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")" -le 65536 ]
    # The image carries the healthcheck on our port (podman keeps it only with --format docker).
    [[ "$(container_field "$n" '{{json .Config.Healthcheck}}')" == *"\"healthcheck\",\"--port\",\"$PORT\""* ]]
}

@test "the proxy in the container reads its configuration: token, port and providers" {
    local token
    token=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    [[ "$token" =~ ^[0-9a-f]{64}$ ]]
    [ "$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$PORT" ]
    # Listening on the PORT from .env proves .env was read; the token gates the API.
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models")" = 401 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/v1/models")" = 200 ]
    run -0 "$ENGINE" exec "$AI_PROXY_NAME" /app/ai-proxy check-config
    [[ "$output" != *"$token"* ]]
}

@test "configuration files are 0640 root:1001 in a 0750 directory, not world-readable" {
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR")" = "750 0:$APP_GID" ]
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/.env")" = "640 0:$APP_GID" ]
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/provider-config.yaml")" = "640 0:$APP_GID" ]
    [ "$(find "$AI_PROXY_CONFIG_DIR" -mindepth 1 | wc -l)" -eq 2 ]
    # An ordinary user of the host can read neither.
    id "$UNPRIVILEGED_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$UNPRIVILEGED_USER"
    run setpriv --reuid="$UNPRIVILEGED_USER" --regid="$UNPRIVILEGED_USER" --init-groups cat "$AI_PROXY_CONFIG_DIR/.env"
    [ "$status" -ne 0 ]
}

@test "every management command the installer printed works on this image" {
    local commands
    commands=$(sed -n "s/^ *sudo \($ENGINE .*\)\$/\1/p" "$BATS_FILE_TMPDIR/install.out" | sort -u)
    [ "$(wc -l <<<"$commands")" -ge 7 ]
    local cmd
    while IFS= read -r cmd; do
        eval "run $cmd"
        [ "$status" -eq 0 ] || { echo "printed command failed: $cmd: $output"; return 1; }
    done <<<"$commands"
    # stop/start/restart ran in some order: it must serve again.
    "$ENGINE" start "$AI_PROXY_NAME" >/dev/null 2>&1
    wait_healthy "$AI_PROXY_NAME" "$PORT"
}

@test "editing .env then restarting the container applies it" {
    local old new
    old=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    new=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    sed -i "s/^AUTH_TOKEN=.*/AUTH_TOKEN=$new/" "$AI_PROXY_CONFIG_DIR/.env"
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/.env")" = "640 0:$APP_GID" ]
    # Read at start only: the running proxy still wants the old token.
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $old" "http://127.0.0.1:$PORT/v1/models")" = 200 ]
    run -0 "$ENGINE" restart "$AI_PROXY_NAME"
    wait_healthy "$AI_PROXY_NAME" "$PORT"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $new" "http://127.0.0.1:$PORT/v1/models")" = 200 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $old" "http://127.0.0.1:$PORT/v1/models")" = 401 ]
}

@test "a re-run keeps AUTH_TOKEN and an edited provider-config.yaml, changes only PORT, and measures the outage" {
    local token providers_sum mode_before new_port
    token=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    printf '\n# edited by the admin\n' >>"$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    providers_sum=$(sha256sum <"$AI_PROXY_CONFIG_DIR/provider-config.yaml")
    grep -v '^PORT=' "$AI_PROXY_CONFIG_DIR/.env" >"$BATS_TEST_TMPDIR/env-rest"
    # A mode of the admin's choosing (still root's, readable by the container's group) is kept.
    chmod 0440 "$AI_PROXY_CONFIG_DIR/.env"
    mode_before=$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/.env")
    local old_id
    old_id=$(container_field "$AI_PROXY_NAME" '{{.Id}}')
    # Without --yes, and nobody to answer: the running install is not replaced.
    run installer --port "$PORT"
    [ "$status" -eq "$EX_INPUT" ]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$old_id" ]

    new_port=$(free_port)
    run installer --port "$new_port" --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" =~ upgrade\ outage:\ [0-9]+\.[0-9]{3}\ s ]]
    echo "# upgrade with a port change (${ENGINE}): ${BASH_REMATCH[0]}" >&3
    [ "$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$token" ]
    [ "$(sha256sum <"$AI_PROXY_CONFIG_DIR/provider-config.yaml")" = "$providers_sum" ]
    [ "$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")" = "$new_port" ]
    diff "$BATS_TEST_TMPDIR/env-rest" <(grep -v '^PORT=' "$AI_PROXY_CONFIG_DIR/.env")
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/.env")" = "$mode_before" ]
    [ "$(find "$AI_PROXY_CONFIG_DIR" -mindepth 1 | wc -l)" -eq 2 ]
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" != "$old_id" ]
    run ! "$ENGINE" container inspect "$old_id"
    run ! "$ENGINE" container inspect "$AI_PROXY_NAME-previous"
    wait_healthy "$AI_PROXY_NAME" "$new_port"
    run ! ping_port "$PORT"
    [ "$(image_ids | wc -l)" -eq 1 ]
    chmod 0640 "$AI_PROXY_CONFIG_DIR/.env" && chown "0:$APP_GID" "$AI_PROXY_CONFIG_DIR/.env"
    PORT=$new_port
}

@test "upgrade outage, measured by an independent prober every 20 ms: one short window, as long as the installer says" {
    local port
    port=$(sed -n 's/^PORT=//p' "$AI_PROXY_CONFIG_DIR/.env")
    wait_healthy "$AI_PROXY_NAME" "$port"
    # A client of its own: GET /ping every 20 ms (1 s timeout), each result with its time.
    timeout 600 python3 - "$port" "$BATS_TEST_TMPDIR/probes" "$BATS_TEST_TMPDIR/stop" <<'EOF' 3>&- &
import http.client, os, sys, time
port, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as f:
    while not os.path.exists(stop):
        t = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/ping")
            ok = c.getresponse().status == 200
            c.close()
        except OSError:
            ok = False
        f.write(f"{int(t * 1000)} {'ok' if ok else 'fail'}\n")
        f.flush()
        time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))
EOF
    local prober=$!
    # The prober sees the old container serve before anything starts.
    local i
    for i in $(seq 1 100); do
        [ "$(grep -c ok "$BATS_TEST_TMPDIR/probes" 2>/dev/null)" -ge 10 ] && break
        sleep 0.1
    done
    run installer --port "$port" --yes
    sleep 1
    touch "$BATS_TEST_TMPDIR/stop"
    wait "$prober"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" =~ upgrade\ outage:\ ([0-9]+)\.([0-9]{3})\ s ]]
    local reported_ms=$((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]}))
    # From the probes: failures, runs of failures, ok before the first failure, and the window
    # from the last answer before the outage to the first answer after it.
    local failed runs ok_before window served
    read -r failed runs ok_before window served < <(awk '
        NR == 1 { start = $1 }
        $2 == "fail" { failed++; if (prev != "fail") runs++; if (!first_fail) first_fail = 1 }
        $2 == "ok" { if (!first_fail) { ok_before++; last_ok = $1 } else if (!after) { after = $1 } }
        { prev = $2 }
        END { printf "%d %d %d %d %d\n", failed, runs, ok_before, (after && last_ok) ? after - last_ok : -1, last_ok - start }' "$BATS_TEST_TMPDIR/probes")
    echo "# upgrade outage (${ENGINE}): prober every 20 ms: $failed failed probes in one window of ${window} ms; before it the old container answered $ok_before probes over ${served} ms (build and check); the installer reported ${reported_ms} ms" >&3
    # The old container answered all through the build and the check, which take seconds.
    [ "$ok_before" -ge 10 ]
    [ "$served" -ge 1000 ]
    # One outage, not several, and a real one (the swap stops the old container).
    [ "$runs" -eq 1 ]
    [ "$failed" -ge 1 ]
    [ "$window" -gt 0 ]
    # Short: the swap only, not a build or a health wait.
    [ "$window" -lt 5000 ]
    # The failed probes fit in the window (one every 20 ms, plus each one's own time).
    [ "$failed" -le $((window / 20 + 1)) ]
    # The installer's figure spans the same swap: from the stop to its own first /ping, which it
    # polls with backoff (up to 1 s apart), so it may be longer, but not shorter by more than
    # the probe interval and the old container's last answer during its stop.
    [ "$window" -le $((reported_ms + 100)) ]
    [ "$reported_ms" -le $((window + 1500)) ]
    wait_healthy "$AI_PROXY_NAME" "$port"
}
