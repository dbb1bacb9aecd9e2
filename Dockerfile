# Gatehouse container image: multi-stage, production dependencies only, prebuilt dist/, non-root, read-only root
# filesystem friendly (nothing is written at run time), HEALTHCHECK on /readyz, SIGTERM drains (Node handles
# signals itself as PID 1: the gateway installs SIGTERM/SIGINT handlers; `docker run --init` adds a reaper if you
# run other processes in the container).
#   docker build -t gatehouse .
#   docker run --rm -p 8000:8000 -v $PWD/gatehouse.yaml:/etc/gatehouse/gatehouse.yaml:ro --read-only gatehouse
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile src/ to dist/ with the dev dependencies (typescript)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json tsconfig.client.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.mjs

# --- deps: production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    GATEHOUSE_HEALTHCHECK_URL=http://127.0.0.1:8000/readyz
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
# src/ stays beside dist/: bin/gatehouse.mjs runs dist/ when its build stamp is newer than every source file.
# The admin dashboard's page and assets (src/admin/dashboard/) come with both: the build copies non-TS files.
COPY src ./src
COPY --from=build /app/dist ./dist
COPY deploy/compose/gatehouse.yaml /etc/gatehouse/gatehouse.yaml
# The image's unprivileged user (uid 1000), numeric so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8000
# Readiness, not liveness: 503 while draining or before the config is live. Override the URL when the main
# listener is elsewhere (or use the admin listener's http://127.0.0.1:9901/readyz when the main one is TLS).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.GATEHOUSE_HEALTHCHECK_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/gatehouse.mjs"]
CMD ["start", "--config", "/etc/gatehouse/gatehouse.yaml"]
