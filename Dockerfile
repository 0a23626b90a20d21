# segsync as a container: `docker build -t segsync .`, then
#   docker run --rm -v segsync-state:/var/lib/segsync -v "$PWD/segsync.yaml:/etc/segsync/segsync.yaml:ro" \
#     -e MAILCHIMP_API_KEY segsync sync
# The image runs `segsync` as an unprivileged user (uid 10001). The configuration is read from
# /etc/segsync/segsync.yaml ($SEGSYNC_CONFIG); state lives on the volume /var/lib/segsync, or in
# PostgreSQL: write `state: ${SEGSYNC_STATE}` in segsync.yaml and set SEGSYNC_STATE to a
# postgresql:// URL (its default here is the SQLite file on the volume). docs/scheduling.md.

# -- build: segsync and its dependencies in a virtual environment (no build tool reaches the
#    final image, which copies only the environment)
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY connectors ./connectors
RUN python -m venv /opt/segsync \
 && /opt/segsync/bin/pip install .

# -- run --------------------------------------------------------------------------------------
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/segsync/bin:$PATH
COPY --from=build /opt/segsync /opt/segsync
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/segsync \
        --shell /usr/sbin/nologin segsync \
 && mkdir -p /var/lib/segsync /etc/segsync \
 && chown segsync:segsync /var/lib/segsync \
 && chmod 0700 /var/lib/segsync
ENV SEGSYNC_CONFIG=/etc/segsync/segsync.yaml \
    SEGSYNC_STATE=sqlite:////var/lib/segsync/state.db
VOLUME ["/var/lib/segsync"]
WORKDIR /var/lib/segsync
USER 10001:10001
ENTRYPOINT ["segsync"]
CMD ["--help"]
