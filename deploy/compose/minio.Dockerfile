# The compose stack's MinIO as a non-root user: the official image runs as root. The data folder
# belongs to that user, so a new named volume mounted there starts with that owner (the image's
# own /data is root's). MC_CONFIG_DIR: the health check's `mc` writes its config there.
FROM minio/minio:RELEASE.2025-04-22T22-12-26Z

RUN mkdir -p /var/lib/minio && chown 1037:1037 /var/lib/minio

USER 1037:1037
ENV MC_CONFIG_DIR=/tmp/.mc
