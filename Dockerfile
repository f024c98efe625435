# Berth's images: berth/registry, berth/operator (and berth/pause, the local test node's sandbox
# image). Static binaries on `scratch`: no shell, no package manager, UID/GID 65532, CA bundle.
#
# With docker (BuildKit), compiling inside the build, for any --platform:
#   docker build --target registry -t berth/registry:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --target operator -t berth/operator:0.1.0 .
# Without a container daemon (what scripts/images does): the workspace's static release binaries
# are staged in a context directory and only the COPY-only stages below run:
#   buildah bud --build-arg BINARIES=prebuilt --target registry -f Dockerfile <staged context>
# Build args: VERSION and REVISION end up in the OCI labels.

ARG BINARIES=compile

# ---- compile: the workspace built inside the build (docker users) ---------------------------------
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95-bookworm AS compile
ARG TARGETARCH
WORKDIR /src
# A cross C toolchain when the target architecture differs from the build machine's (ring and the
# sha2 assembly are C/asm); glibc's static libraries come with libc6-dev(-<arch>-cross).
RUN set -eu; \
    case "$TARGETARCH" in amd64) arch=x86_64 debarch=amd64 ;; arm64) arch=aarch64 debarch=arm64 ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; esac; \
    echo "$arch-unknown-linux-gnu" >/target; \
    rustup target add "$arch-unknown-linux-gnu"; \
    if [ "$arch" != "$(uname -m)" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "gcc-$(echo "$arch" | tr _ -)-linux-gnu" "libc6-dev-$debarch-cross"; \
      rm -rf /var/lib/apt/lists/*; \
    fi
COPY . .
# Dependencies stay compiled between builds in the cache mounts (registry index, crates, target/).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=berth-target-$TARGETARCH \
    set -eu; target=$(cat /target); arch=${target%%-*}; \
    if [ "$arch" != "$(uname -m)" ]; then \
      cc="$(echo "$arch" | tr _ -)-linux-gnu-gcc"; \
      export "CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_LINKER=$cc" "CC_$(echo "$target" | tr - _)=$cc"; \
    fi; \
    export "CARGO_TARGET_$(echo "$target" | tr a-z- A-Z_)_RUSTFLAGS=-C target-feature=+crt-static"; \
    cargo build --release --locked --target "$target" \
      -p registry --bin registry -p operator --bin berth-operator --bin berth-node-agent; \
    cargo build --release --locked --target "$target" --manifest-path e2e/pause/Cargo.toml --target-dir target/pause; \
    bin=target/$target/release; \
    for image in registry operator pause; do mkdir -p /out/$image/etc/ssl/certs; \
      cp images/rootfs/etc/passwd images/rootfs/etc/group /out/$image/etc/; \
      cp /etc/ssl/certs/ca-certificates.crt /out/$image/etc/ssl/certs/; done; \
    cp $bin/registry /out/registry/; \
    cp $bin/berth-operator $bin/berth-node-agent /out/operator/; \
    cp target/pause/$target/release/berth-pause /out/pause/; \
    mkdir -p /out/registry-data

# ---- prebuilt: binaries and files staged by scripts/images (the context is the staging dir) ------
FROM scratch AS prebuilt
COPY out/ /out/

FROM ${BINARIES} AS binaries

# ---- the images ----------------------------------------------------------------------------------
FROM scratch AS registry
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=binaries /out/registry/ /
COPY --from=binaries --chown=65532:65532 /out/registry-data/ /var/lib/registry/
USER 65532:65532
EXPOSE 5000
VOLUME /var/lib/registry
ENTRYPOINT ["/registry"]
CMD ["serve"]
LABEL org.opencontainers.image.title="berth-registry" \
      org.opencontainers.image.description="Berth: an OCI Distribution v1.1 registry, drop-in for registry:2" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

FROM scratch AS operator
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=binaries /out/operator/ /
USER 65532:65532
ENTRYPOINT ["/berth-operator"]
LABEL org.opencontainers.image.title="berth-operator" \
      org.opencontainers.image.description="Berth: Kubernetes operator for Registry resources (berth.dev/v1alpha1)" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

FROM scratch AS pause
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=binaries /out/pause/ /
USER 65532:65532
ENTRYPOINT ["/berth-pause"]
LABEL org.opencontainers.image.title="berth-pause" \
      org.opencontainers.image.description="Sandbox (pause) image of Berth's local test node" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
