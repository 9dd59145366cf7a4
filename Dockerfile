# The one image the project's three services run (db-migration, event-service, rasa-x); the
# compose file picks the command. Built by `rasax-deploy images build` FROM a local Debian base
# (`rasax-deploy images base`) and wheels made on the build host, so it needs neither a registry
# nor PyPI from inside the build: only the Debian mirror the host itself uses.
ARG BASE_IMAGE=rasax/debian:bookworm
FROM ${BASE_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# wheels/ holds the project's wheel and every dependency's (pip wheel on the host): --no-index
# makes a missing one a build error instead of a silent download.
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/rasax \
 && /opt/rasax/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels rasax-deploy \
 && rm -rf /tmp/wheels

# uid 1001 as in Rasa X: the installer gives this uid the models/logs folders it mounts.
RUN useradd --system --uid 1001 --gid 0 --home-dir /app --create-home rasa \
 && mkdir -p /app/models /app/logs && chown -R 1001:0 /app && chmod -R g=u /app
ENV PATH=/opt/rasax/bin:$PATH PYTHONUNBUFFERED=1 RASA_MODEL_DIR=/app/models
WORKDIR /app
USER 1001
CMD ["python", "-m", "services.backend"]
