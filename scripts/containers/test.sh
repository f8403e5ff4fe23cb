#!/usr/bin/env bash
# npm run test:containers: the project's docker-compose.yml under podman, tested from the host
# (test/containers/cluster.ctest.ts). Installs podman where it can (scripts/containers/
# podman-install.sh), builds the base image from the host's binaries (no registry is reachable
# here) and the project's image from its Dockerfile with `npm ci --offline` on the host's npm
# cache, then runs the test. Skips (exit 0, one line saying why) only where podman cannot be
# installed. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/containers/podman-env.sh
ms() { date +%s%3N; }
t=$(ms)
set +e
scripts/containers/podman-install.sh
rc=$?
set -e
if [ $rc -eq 3 ]; then
  echo "test:containers SKIPPED: podman cannot be installed on this machine (see above)"
  exit 0
elif [ $rc -ne 0 ]; then
  exit $rc
fi
echo "install: $(( $(ms) - t )) ms"
node scripts/ensure-nats-server.mjs >/dev/null
t=$(ms)
base="$(scripts/containers/podman-base-image.sh 2>/dev/null | tail -1)"
echo "base image ($base): $(( $(ms) - t )) ms"
t=$(ms)
cache="$(npm config get cache)"
podman build --format docker --build-arg BASE_IMAGE="$base" --build-arg NPM_CI_FLAGS=--offline \
  -v "$cache:/root/.npm" -t localhost/flotilla:test . >/tmp/flotilla-image-build.log 2>&1 || {
  tail -40 /tmp/flotilla-image-build.log
  echo "image build failed (whole log: /tmp/flotilla-image-build.log)"
  exit 1
}
echo "image build (Dockerfile): $(( $(ms) - t )) ms"
export FLOTILLA_IMAGE=localhost/flotilla:test NATS_IMAGE="$base"
exec npx vitest run -c test/containers/vitest.config.ts "$@"
