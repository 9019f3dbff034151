# Sluice in a container. Build: docker build -t sluice .
# Run:   docker run --rm --cap-add NET_ADMIN --device /dev/net/tun --network host \
#          -v /etc/sluice:/etc/sluice sluice daemon --config /etc/sluice/cluster.yaml --host h1
# It needs only CAP_NET_ADMIN and /dev/net/tun: no kernel module, no privileged mode.

# --- build: compile the addon and the TypeScript -------------------------------
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json binding.gyp tsconfig.json ./
COPY native ./native
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm ci && npm prune --omit=dev

# --- run: only what runs -------------------------------------------------------
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sluice
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/Release/sluice.node ./build/Release/sluice.node
COPY --from=build /src/dist/src ./dist/src
# --max-semi-space-size: src/daemon/node-flags.ts
ENTRYPOINT ["node", "--max-semi-space-size=2", "/opt/sluice/dist/src/cli.js"]
CMD ["--help"]
