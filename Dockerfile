# Veille's image: the `veille` command line, the Scrapy project, the scheduler, and the Argos
# translation models of every language of veille/core/languages.py into the pivot (`--all`).
#
#   docker build -t veille:local .
#   docker build --build-arg INSTALL_MODELS=false -t veille:local .   # no models: articles not
#       in the pivot language are indexed as translation_status: pending until models are installed
#
# Two stages: `build` has the compilers and the network (dependencies, models); the final image
# gets only the virtual environment, the models and the project files, and runs as a non-root
# user. docker-compose.yml builds it for the `setup`, `scheduler` and `serve` services.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARGOS_PACKAGES_DIR=/opt/argos/packages
RUN python -m venv /opt/venv
WORKDIR /app
# The dependencies first, read from the project metadata, so that a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
# The project itself, installed in place: the scheduler runs `scrapy crawl` from /app, where
# scrapy.cfg, index_config/ and config/ are.
COPY . .
RUN pip install --no-deps -e . && veille --help > /dev/null
ARG INSTALL_MODELS=true
RUN mkdir -p "$ARGOS_PACKAGES_DIR" \
    && if [ "$INSTALL_MODELS" = "true" ]; then \
        XDG_DATA_HOME=/tmp/argos-data XDG_CACHE_HOME=/tmp/argos-cache veille models install --all \
        && rm -rf /tmp/argos-data /tmp/argos-cache; \
    fi

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/veille veille
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ARGOS_PACKAGES_DIR=/opt/argos/packages \
    VEILLE_CONFIG=/app/config \
    VEILLE_DATA_DIR=/app/data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/argos /opt/argos
COPY --from=build /app /app
RUN mkdir -p /app/data && chown veille:veille /app/data
WORKDIR /app
USER veille
# Healthy when the command line starts and the config folder it would crawl with is valid.
HEALTHCHECK --interval=60s --timeout=30s --start-period=20s --retries=3 \
    CMD veille sources --json > /dev/null || exit 1
CMD ["veille", "schedule"]
