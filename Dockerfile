# Multi-stage build: a static-enough binary on a small, non-root runtime image.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin rmq-registrar \
 && strip target/release/rmq-registrar

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rmq-registrar /usr/local/bin/rmq-registrar
COPY config/rmq-registrar.toml /etc/rmq-registrar/rmq-registrar.toml
# In a pod the metrics/health port must be reachable by the kubelet.
ENV RMQ_REGISTRAR_HTTP__LISTEN=0.0.0.0:9100 \
    RMQ_REGISTRAR_CONFIG=/etc/rmq-registrar/rmq-registrar.toml
EXPOSE 9100
USER nonroot:nonroot
# No HEALTHCHECK: probes belong to Kubernetes (/healthz, /readyz).
ENTRYPOINT ["/usr/local/bin/rmq-registrar"]
CMD ["run"]
