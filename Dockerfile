# Portico in a container: a build stage compiles TypeScript and keeps production dependencies only; the runtime stage
# runs as the unprivileged `node` user. Written with care but not built where Portico is developed (no container
# runtime there): see docs/deploy.md.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bin ./bin
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/portico
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json portico.schema.json ./
COPY bin ./bin
COPY examples ./examples
COPY deploy/portico.docker.yaml /etc/portico/portico.yaml
USER node
EXPOSE 8080
# The admin listener answers /healthz on loopback inside the container (node itself: slim images have no curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://127.0.0.1:9901/healthz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/portico/bin/portico.js"]
CMD ["--config", "/etc/portico/portico.yaml"]
