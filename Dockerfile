# flotilla's agent image: one `flotilla daemon` per host (fleetd in a container).
#   docker build -t flotilla .          (or: docker compose build)
#   docker run --init -e FLOTILLA_NATS_URL=nats://nats.example:4222 -v flotilla:/var/lib/flotilla flotilla
# Where no registry is reachable, BASE_IMAGE can be any image with node 20 and npm on PATH
# (scripts/containers/podman-base-image.sh makes one from the host's binaries); NPM_CI_FLAGS
# passes e.g. --offline when the build gets the host's npm cache mounted.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG NPM_CI_FLAGS=""
WORKDIR /src
# The lockfile alone decides what is installed (npm ci refuses a lockfile that disagrees with
# package.json); scripts are skipped here and the build below runs once the sources are in.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts ${NPM_CI_FLAGS}
COPY tsconfig.json ./
COPY bin ./bin
COPY scripts/build-ui.mjs ./scripts/build-ui.mjs
COPY src ./src
COPY ui ./ui
RUN npm run build && npm prune --omit=dev --no-audit --no-fund ${NPM_CI_FLAGS}

FROM ${BASE_IMAGE}
ENV NODE_ENV=production \
    FLOTILLA_STATE_DIR=/var/lib/flotilla \
    FLOTILLA_NATS_URL=nats://nats:4222 \
    LOG_LEVEL=info
WORKDIR /opt/flotilla
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
# The one-machine NATS config (`flotilla up` inside the container, or a nats-server beside it).
COPY nats.conf ./nats.conf
RUN mkdir -p /var/lib/flotilla && ln -sf /opt/flotilla/bin/flotilla.js /usr/local/bin/flotilla
# The machine ID, the worker store (which tasks this host runs, so a restarted container adopts
# them instead of starting them twice) and task logs: keep them across container restarts.
VOLUME ["/var/lib/flotilla"]
# Asks the daemon itself, through the cluster: healthy while its own heart keeps its machine
# record fresh in NATS (flotilla health reads the same FLOTILLA_* config as the daemon).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/opt/flotilla/bin/flotilla.js", "health"]
# Run it behind an init (docker run --init, compose `init: true`): node as PID 1 neither reaps
# the orphaned children of workloads nor gets SIGTERM's default action.
ENTRYPOINT ["node", "/opt/flotilla/bin/flotilla.js"]
CMD ["daemon"]
