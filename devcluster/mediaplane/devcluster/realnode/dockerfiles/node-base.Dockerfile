# Node.js and npm from Debian on the local Python base: the `players` stage of
# images/Dockerfile runs `npm ci` in it where node:20-bookworm-slim cannot be pulled.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
# Node.js reads its own CA list; this one adds the system's, which the base carries.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
