# fleetd in a container: built in one stage, run in a slim one as an unprivileged user.
#   docker build -t fleetd .
#   docker compose -f deploy/docker-compose.yaml up -d   (PostgreSQL and fleetd together)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fleetd

FROM debian:bookworm-slim
# postgresql-client: pg_dump and pg_restore for fleetd backup / verify / restore;
# curl: the container health check
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/fleetd --shell /usr/sbin/nologin fleetd \
    && install -d -o fleetd -g fleetd -m 0750 /var/lib/fleetd
COPY --from=build /src/target/release/fleetd /usr/local/bin/fleetd
USER fleetd
WORKDIR /var/lib/fleetd
ENV FLEETD_LISTEN=0.0.0.0:8080 \
    FLEETD_DATA_DIR=/var/lib/fleetd
EXPOSE 8080
VOLUME ["/var/lib/fleetd"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["fleetd"]
CMD ["serve"]
