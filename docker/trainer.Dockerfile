# syntax=docker/dockerfile:1.6
# billnet-trainer (docs/trainer.md, docs/operations.md), built with libtorch only: the
# synthetic renderer in memory, the five-stage training, eval, verify and export.
# Build from the repository root (BuildKit reads docker/trainer.Dockerfile.dockerignore):
#   docker build -f docker/trainer.Dockerfile -t billnet-trainer .
#   docker run --rm -v "$PWD/models:/work/models" -v billnet-ckpt:/work/checkpoints \
#     billnet-trainer train --repo /work/models --checkpoint-dir /work/checkpoints --threads 4
# Not in this image: FFmpeg (Jester folders and video lists as DATA), the gRPC trainer
# service, CUDA (Debian's libtorch is CPU only).

# ---- build: the project's own setup script, then a CMake build of billnet-trainer ----
FROM debian:12 AS build
COPY scripts/setup /src/scripts/setup
RUN /src/scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# Media and server off: the trainer core needs the engine, the renderer and libtorch.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DBILLNET_BUILD_TESTS=OFF -DBILLNET_BUILD_BENCH=OFF -DBILLNET_BUILD_TRAINER=ON \
          -DBILLNET_BUILD_MEDIA=OFF -DBILLNET_BUILD_SERVER=OFF \
 && cmake --build /build --target billnet-trainer \
 && mkdir -p /out/bin \
 && cp /build/trainer/billnet-trainer /out/bin/ \
 && strip /out/bin/billnet-trainer

# ---- runtime: libtorch and OpenBLAS (about 4x faster than the reference BLAS here,
# DESIGN.md section 6) ----
FROM debian:12-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch1.13 libopenblas0-pthread libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 billnet \
 && useradd --system --uid 10001 --gid billnet --home-dir /work --no-create-home \
            --shell /usr/sbin/nologin billnet \
 && mkdir -p /work/models /work/checkpoints \
 && chown -R 10001:10001 /work
COPY --from=build /out/bin/billnet-trainer /usr/local/bin/billnet-trainer
# OpenMP threads sleep instead of spinning while they wait (docs/trainer.md: a
# spinning wait made a step 5x slower on a shared machine).
ENV OMP_WAIT_POLICY=PASSIVE
USER 10001:10001
WORKDIR /work
VOLUME ["/work/models", "/work/checkpoints"]
# A batch job, not a service: nothing to probe; checkpoints every epoch make a killed
# run resumable (run it again with the same --checkpoint-dir).
HEALTHCHECK NONE
STOPSIGNAL SIGTERM
ENTRYPOINT ["billnet-trainer"]
CMD ["--help"]
