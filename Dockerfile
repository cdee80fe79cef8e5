# tykwatch run in a container: multi-stage, non-root, the data dir as a volume.
#
#   docker build -t tykwatch .
#   docker run -d --name tykwatch \
#     -v tykwatch-data:/var/lib/tykwatch \
#     -v "$PWD/config.toml:/etc/tykwatch/config.toml:ro" \
#     -e TYK_GW_SECRET -p 127.0.0.1:9464:9464 tykwatch
#
# In the container, [metrics] listen must be "0.0.0.0:9464" for the published port to reach it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tykwatch

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tykwatch --shell /usr/sbin/nologin tykwatch \
 && install -d -o tykwatch -g tykwatch -m 0700 /var/lib/tykwatch \
 && install -d -m 0755 /etc/tykwatch
COPY --from=build /src/target/release/tykwatch /usr/local/bin/tykwatch
USER tykwatch
ENV TYKWATCH_CONFIG=/etc/tykwatch/config.toml \
    TYKWATCH_DATA_DIR=/var/lib/tykwatch
VOLUME ["/var/lib/tykwatch"]
EXPOSE 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tykwatch"]
CMD ["run"]
