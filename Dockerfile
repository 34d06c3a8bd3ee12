# syntax=docker/dockerfile:1
#
# linkissuer's container image: a static binary on distroless, run as a
# non-root user, no shell, no package manager, no key.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/linkissuer:TAG .
#   docker run --rm IMAGE help
#
# The image runs `linkissuer worker` unless given another command (CMD is
# only the default argument list): Cloud Run services and GKE pass `serve`
# or `worker` as args. Configuration comes from LINKISSUER_* environment
# variables (`linkissuer worker -h` lists them); see deploy/README.md.
#
# Health: the binary serves GET /healthz (liveness: the process serves HTTP)
# and GET /readyz (readiness: clients built, not shutting down; 503 with the
# reason otherwise) on $PORT (default 8080), next to /metrics. There is no
# HEALTHCHECK instruction: distroless has no shell or curl to run one, the
# binary has no probe subcommand, and Cloud Run and Kubernetes ignore Docker
# health checks anyway: they probe these paths over HTTP themselves (see
# deploy/terraform and deploy/k8s).
#
# deploy/binary_test.go (buildFromDockerfile) runs the RUN go build line
# below, exactly as written, against a copy of the build context filtered by
# .dockerignore, so a change here that breaks the build, or a .dockerignore
# rule that hides a file the build needs, fails `go test ./deploy/` without a
# Docker engine; it also compares the result's `go version -m` with a plain
# `go build .` of the repository. deploy/dockerfile_test.go checks the rest
# of this file (stages, static build, USER, EXPOSE, ENTRYPOINT, CMD).

# Keep in step with the go line of go.mod (the test checks it).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Cross-compiled on the build platform for the target (docker buildx
# --platform linux/amd64,linux/arm64): a pure-Go binary needs no emulation.
# BuildKit sets these; declared without defaults so that its values apply.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags='-s -w' -o /linkissuer .

# static-debian12 carries CA certificates (TLS to Google APIs), tzdata and
# /etc/passwd with the nonroot user; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /linkissuer /linkissuer
# Numeric, so that Kubernetes' runAsNonRoot can verify it (a user name
# cannot be checked without reading the image's /etc/passwd). 65532 is
# distroless's nonroot.
USER 65532:65532
# $PORT: health, readiness, metrics, and in `serve` the push endpoints.
EXPOSE 8080
ENTRYPOINT ["/linkissuer"]
CMD ["worker"]
