# The operator image: the smooch-operator binary (and smooch-emulator, so a
# cluster can run the emulator too) on an empty base, as the nonroot user
# 65532. No registry and no base image are needed, so Debian's podman builds
# it offline and docker builds it the same way. `hack/image.sh` builds the
# binaries (cargo build --release), stages their root filesystem as
# build/image/rootfs in a build context (the binaries, the glibc libraries
# they link, passwd and group with user 65532, the CA bundle, nsswitch.conf)
# and runs `podman build` (or `docker build`) with this file:
#
#   hack/image.sh                                   # smooch-operator:0.1.0 + build/smooch-operator-image.tar
#   hack/image.sh --tool docker --tag registry.example.com/team/smooch-operator:0.1.0
#   docker push registry.example.com/team/smooch-operator:0.1.0      (or podman push)
#
# (No `# syntax=` line: it would make BuildKit pull a frontend image, and
# nothing here needs one.)

FROM scratch
LABEL org.opencontainers.image.title="smooch-operator" \
      org.opencontainers.image.description="Kubernetes operator for Smooch apps, keys, integrations and webhooks" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY build/image/rootfs/ /
USER 65532:65532
# /healthz, /readyz and /metrics (--metrics-addr, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smooch-operator"]
