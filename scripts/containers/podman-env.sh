# Sourced by the other podman scripts: podman with the project's containers.conf (runc, rlimits
# the host allows). `. scripts/containers/podman-env.sh` in a shell gives the same podman.
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
