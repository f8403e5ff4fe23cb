#!/usr/bin/env bash
# Installs what the container test needs on Debian bookworm (root): podman, runc (crun fails
# here with "cgroups in hybrid mode not supported"), podman-compose (1.0.3) and busybox-static
# (the /bin/sh of the test's base image), and catatonit, the init of compose's `init: true`
# (podman only recommends it, and --no-install-recommends skips it: "container-init binary not
# found on the host"), and CNI's dnsname plugin (without it a container cannot resolve the
# others by service name: "getaddrinfo ENOTFOUND nats"). Exits 0 when everything is there already.
# Prints one line: "podman ready" or why not (exit 3: podman cannot be installed here).
set -euo pipefail
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v podman-compose >/dev/null || need+=(podman-compose)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
[ -x /usr/lib/cni/dnsname ] || need+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "podman cannot be installed here: missing ${need[*]} and this is not root on Debian (apt-get)" >&2
    exit 3
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${need[@]}" >/tmp/flotilla-podman-install.log 2>&1; then
    apt-get update >>/tmp/flotilla-podman-install.log 2>&1 || true
    if ! apt-get install -y --no-install-recommends "${need[@]}" >>/tmp/flotilla-podman-install.log 2>&1; then
      echo "podman cannot be installed here: apt-get install ${need[*]} failed (see /tmp/flotilla-podman-install.log)" >&2
      exit 3
    fi
  fi
fi
echo "podman ready: $(podman --version), podman-compose $( (podman-compose --version 2>/dev/null || true) | grep -o 'composer* version:* *[0-9.]*' | head -1 | grep -o '[0-9.]*$' || echo '?'), runc $(runc --version | head -1 | awk '{print $3}')"
