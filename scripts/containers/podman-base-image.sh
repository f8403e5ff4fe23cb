#!/usr/bin/env bash
# Builds the BASE_IMAGE of the Dockerfile from this host's own binaries, for machines that reach
# no container registry (node:20-bookworm-slim cannot be pulled): the host's node and npm, its
# nats-server (neither is static: every library `ldd` lists is copied), the native libraries the
# installed node_modules load, and busybox for /bin/sh. Imported with `podman import`.
#   scripts/containers/podman-base-image.sh [TAG]     (default localhost/flotilla-base:host)
# Prints the tag. Rebuilt only when the host's node or nats-server changed (a label says which).
set -euo pipefail
. "$(dirname "$0")/podman-env.sh"
root_dir="$(cd "$(dirname "$0")/../.." && pwd)"
tag="${1:-localhost/flotilla-base:host}"
node_bin="$(readlink -f "$(command -v node)")"
nats_bin="$(readlink -f "${NATS_SERVER_BIN:-$(command -v nats-server)}")"
npm_dir="$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")"
busybox_bin=/bin/busybox
for f in "$node_bin" "$nats_bin" "$npm_dir/bin/npm-cli.js" "$busybox_bin"; do
  [ -e "$f" ] || { echo "podman-base-image: $f is missing (node, npm, nats-server and busybox-static are needed)" >&2; exit 1; }
done
stamp="$(sha1sum "$node_bin" "$nats_bin" "$0" | sha1sum | cut -c1-16)"
if [ "$(podman image inspect --format '{{index .Config.Labels "flotilla.base"}}' "$tag" 2>/dev/null || true)" = "$stamp" ]; then
  echo "$tag"
  exit 0
fi
rootfs="$(mktemp -d /tmp/flotilla-base-XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,etc,tmp,root,usr/local/bin,usr/local/lib,var/lib,lib64}
chmod 1777 "$rootfs/tmp"
cp "$node_bin" "$rootfs/usr/local/bin/node"
cp "$nats_bin" "$rootfs/usr/local/bin/nats-server"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
cp "$busybox_bin" "$rootfs/bin/busybox"
for applet in $("$busybox_bin" --list); do
  [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
mkdir -p "$rootfs/usr/bin"
ln -s ../../bin/env "$rootfs/usr/bin/env"
# Every shared library the binaries and the native node modules need, at the path ldd names.
natives="$(find "$root_dir/node_modules" -name '*.node' -path '*linux-x64*' ! -name '*musl*' 2>/dev/null || true)"
libs="$(for f in "$node_bin" "$nats_bin" $natives; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/[^:]*$/ { print $1 }'
done | sort -u)"
for lib in $libs; do
  [ -f "$lib" ] || continue
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV HOME=/root' \
  --change "LABEL flotilla.base=$stamp" \
  --change 'CMD ["/bin/sh"]' - "$tag" >/dev/null
echo "$tag"
