# Sourced by .ci/run: start the Docker daemon and make rootful podman usable.
start_engines() {
  if ! docker info >/dev/null 2>&1; then
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    local i
    for i in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  docker info >/dev/null 2>&1 || { tail -n 30 /tmp/dockerd.log; echo "dockerd did not start" >&2; return 1; }
  podman info >/dev/null
}
