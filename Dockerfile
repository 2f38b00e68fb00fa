# The release image of dbaudit (.github/workflows/release.yml builds it and
# pushes it by digest; the Kubernetes recipes run it). Locally:
#   docker build -t dbaudit .
# The base images are named by tag here: pin them by digest in your own
# build (`FROM rust:1.95-bookworm@sha256:…`); the build machine of this
# repository cannot reach a registry to resolve the digests.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/dbaudit

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/dbaudit /usr/local/bin/dbaudit
# distroless's `nonroot` user, by number (resolvable without /etc/passwd).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dbaudit"]
