# Images for the registry and the operator (needs a container engine; the
# project's own tests do not use it). Build one with:
#   docker build --target registry -t berth/registry:dev .
#   docker build --target operator -t berth/operator:dev .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p registry --bin registry -p operator --bin berth-operator

# distroless "cc": glibc and CA certificates, no shell; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS registry
COPY --from=build /src/target/release/registry /registry
EXPOSE 5000
VOLUME /var/lib/registry
ENTRYPOINT ["/registry"]
CMD ["serve"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /src/target/release/berth-operator /berth-operator
ENTRYPOINT ["/berth-operator"]
