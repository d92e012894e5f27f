# The Python images, one target each (the Spark job's image is jobs/Dockerfile). From the root:
#   docker build --target operator  -t fraudpipeline/operator .
#   docker build --target simulator -t fraudpipeline/simulator .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS source
WORKDIR /src
# Every package directory of the distribution; .dockerignore leaves out the rest.
COPY . .

# Each image gets a virtualenv with only its own extra of the distribution, pinned.
FROM source AS operator-venv
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -c constraints.txt ".[operator]"

FROM source AS simulator-venv
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -c constraints.txt ".[simulator]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

FROM runtime AS simulator
COPY --from=simulator-venv /opt/venv /opt/venv
USER 65532:65532
EXPOSE 9109
ENTRYPOINT ["python", "-m", "fraud_simulator"]
CMD ["--config", "/etc/fraudpipeline/simulator.yaml"]

FROM runtime AS operator
COPY --from=operator-venv /opt/venv /opt/venv
COPY grafana /opt/fraudpipeline/grafana
ENV FRAUDPIPELINE_GRAFANA_DIR=/opt/fraudpipeline/grafana
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["kopf", "run", "--standalone", "--liveness=http://0.0.0.0:8081/healthz", "-m", "fraud_operator.handlers"]
CMD ["--all-namespaces"]
