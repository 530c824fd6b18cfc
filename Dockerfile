# Multi-stage build: a static-enough binary on a small, non-root runtime image.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Two builds: the daemon (dynamic, glibc 2.36: the base image's), and a static one for another
# container to run `rmq-registrar drain` from (a Kubernetes broker's preStop: the broker's image
# is its own, e.g. CentOS 7's glibc 2.17 or Alpine's musl, which the dynamic one cannot run on).
RUN host=$(rustc -vV | sed -n 's/^host: //p') \
 && cargo build --release --locked --bin rmq-registrar \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --bin rmq-registrar --target "$host" \
 && mkdir -p static && cp "target/$host/release/rmq-registrar" static/ \
 && strip target/release/rmq-registrar static/rmq-registrar

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rmq-registrar /usr/local/bin/rmq-registrar
# The static build, for `copy-to` (deploy/kubernetes/: an init container copies it into the
# broker container's volume); it runs on any Linux of the same architecture.
COPY --from=build /src/static/rmq-registrar /usr/local/lib/rmq-registrar/static/rmq-registrar
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
