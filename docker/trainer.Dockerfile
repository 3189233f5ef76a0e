# GPU image of the corpusforge trainer: torchrun trainer/main.py on the token shards of a manifest.
#   docker build -f docker/trainer.Dockerfile -t corpusforge-trainer .
# The base image brings CUDA, cuDNN, NCCL and a matching torch build; it is kept as is.
ARG BASE_IMAGE=pytorch/pytorch:2.8.0-cuda12.9-cudnn9-runtime
FROM ${BASE_IMAGE}

WORKDIR /opt/corpusforge

COPY pyproject.toml constraints.txt ./
COPY pipeline ./pipeline
COPY trainer ./trainer
COPY schemas ./schemas
# The train extra only: no Spark, no HTML or language stack. Every pin but torch's: the base image's torch
# satisfies pyproject.toml's torch>=2.4, so pip keeps it instead of replacing it with constraints.txt's
# torch==2.13.0 (a different CUDA build).
RUN grep -v '^torch==' constraints.txt > /tmp/constraints-no-torch.txt \
    && pip install --no-cache-dir -c /tmp/constraints-no-torch.txt '.[train]' \
    && rm /tmp/constraints-no-torch.txt

ENV PYTHONUNBUFFERED=1

RUN groupadd --gid 10001 corpusforge \
    && useradd --create-home --uid 10001 --gid 10001 corpusforge \
    && install -d -o 10001 -g 10001 /runs
USER 10001:10001

ENTRYPOINT ["torchrun"]
CMD ["--standalone", "--nproc_per_node=gpu", "trainer/main.py", "--help"]
