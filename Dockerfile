# syntax=docker/dockerfile:1
#
# The operator image: a static (musl) build of the smooch-operator binary on
# distroless/static, running as the nonroot user (65532).
#
#   docker build -t ghcr.io/smooch-operator/smooch-operator:0.1.0 .
#
# Needs BuildKit (the default builder of Docker 23+) for the cache mounts:
# the cargo registry and target/ survive between builds, so a rebuild after
# a source change compiles the crate only, not its dependencies.

# The toolchain the static build is checked with (rust-version in Cargo.toml
# is the minimum: 1.89).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
# musl-gcc compiles ring's C and assembly for the musl target (TLS is rustls
# with ring: no OpenSSL to link).
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$TARGET"
# Cargo.toml has no release strip setting; the image does not need symbols.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
RUN --mount=type=cache,id=smooch-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=smooch-target-musl,target=/src/target \
    cargo build --locked --release --target "$TARGET" --bin smooch-operator \
    && cp "target/$TARGET/release/smooch-operator" /smooch-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="smooch-operator" \
      org.opencontainers.image.description="Kubernetes operator for Smooch apps, keys, integrations and webhooks" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /smooch-operator /usr/local/bin/smooch-operator
USER 65532:65532
# /healthz, /readyz and /metrics (--metrics-addr, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smooch-operator"]
