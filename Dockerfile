# Multi-stage build: a static-enough binary on a small, non-root runtime image.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin rmq-registrar \
 && strip target/release/rmq-registrar

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rmq-registrar /usr/local/bin/rmq-registrar
# No config file of its own: the broker's identity belongs to the pod, never to the image. It
# comes from the environment (RMQ_REGISTRAR_BROKER__NAME, RMQ_REGISTRAR_BROKER__ADDR,
# NAMESRV_ADDR), from the broker's broker.conf (--broker-conf) or from a mounted file
# (RMQ_REGISTRAR_CONFIG); without one the daemon exits 2 and says which to set. The commented
# example, for reference only:
COPY config/rmq-registrar.toml /usr/share/doc/rmq-registrar/rmq-registrar.toml
# In a pod the metrics/health port must be reachable by the kubelet.
ENV RMQ_REGISTRAR_HTTP__LISTEN=0.0.0.0:9100
EXPOSE 9100
# Numeric (distroless's nonroot user and group): the kubelet can check runAsNonRoot only for a
# numeric user, and refuses to start a container with a name here. deploy/kubernetes/ asks
# runAsUser/runAsGroup 65532 to match (tests/it/readme.rs checks that they agree).
USER 65532:65532
# No HEALTHCHECK: probes belong to Kubernetes (/healthz, /readyz).
ENTRYPOINT ["/usr/local/bin/rmq-registrar"]
CMD ["run"]
