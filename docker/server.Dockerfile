# syntax=docker/dockerfile:1.6
# billnet-server (docs/operations.md). Build from the repository root (BuildKit reads
# docker/server.Dockerfile.dockerignore beside this file):
#   docker build -f docker/server.Dockerfile -t billnet-server .
# The image holds billnet-server, billnet-client (its HEALTHCHECK, and handy for checks
# with `docker exec`) and billnet-model (`validate` a model file before it goes into the
# repository), plus the shipped models/ at /opt/billnet/models.

# ---- build: the project's own setup script, then a CMake build of three targets ----
FROM debian:12 AS build
# The setup script alone first, so the (large) package layer is reused when only
# sources change.
COPY scripts/setup /src/scripts/setup
RUN /src/scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# Tests, benchmarks and the trainer are off: only the server, client and engine tool.
# ccache (found by CMakeLists.txt) keeps its cache in a BuildKit cache mount.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DBILLNET_BUILD_TESTS=OFF -DBILLNET_BUILD_BENCH=OFF -DBILLNET_BUILD_TRAINER=OFF \
          -DBILLNET_BUILD_MEDIA=ON -DBILLNET_BUILD_SERVER=ON \
 && cmake --build /build --target billnet-server billnet-client billnet-model \
 && mkdir -p /out/bin /src/models \
 && cp /build/server/billnet-server /build/client/billnet-client /build/engine/billnet-model \
       /out/bin/ \
 && strip /out/bin/*

# ---- runtime: Debian's shared libraries the three binaries link, nothing else ----
FROM debian:12-slim AS runtime
# One package per DT_NEEDED library of the binaries (tests/deploy checks the list
# against a local build when one exists); libc6, libstdc++6 and libgcc-s1 are in the
# base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libabsl20220623 libprotobuf32 \
      libavformat59 libavcodec59 libavutil57 libswscale6 libavdevice59 \
      libprometheus-cpp-core1.0 libcivetweb1 libspdlog1.10 libfmt9 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 billnet \
 && useradd --system --uid 10001 --gid billnet --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin billnet
COPY --from=build /out/bin/ /usr/local/bin/
# The shipped model repository (models/<name>/<version>/s1..s5.safetensors). The
# build stage creates the folder, so the image builds while no model is committed yet;
# mount a volume over it to serve another repository (compose, Kubernetes).
COPY --from=build /src/models/ /opt/billnet/models/
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /opt/billnet
# 50051: gRPC (GestureService, ModelAdmin, health, reflection); 9464: HTTP /metrics.
EXPOSE 50051/tcp 9464/tcp
# SIGTERM drains (docs/server.md): health NOT_SERVING, live streams end UNAVAILABLE,
# file streams run on for up to --drain-timeout-ms (30 s): give `docker stop -t 40`.
STOPSIGNAL SIGTERM
# gRPC health of the whole server. billnet-client exits 0 only on SERVING, 1 on
# another status (NOT_SERVING while draining), 3 when unreachable; Docker reserves
# exit 2, so every failure is mapped to 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD billnet-client --server 127.0.0.1:50051 --timeout 3 health || exit 1
ENTRYPOINT ["billnet-server"]
# Listen on every interface inside the container; the token key comes from
# BILLNET_TOKEN_KEY_FILE (compose: a secret; Kubernetes: a Secret volume).
CMD ["--listen", "0.0.0.0:50051", "--metrics-listen", "0.0.0.0:9464", \
     "--model-repository", "/opt/billnet/models"]
