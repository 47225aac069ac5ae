# The oomfuzz image for the fuzz farm's migrate, worker, coordinator and flower services.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends build-essential clang \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src/oomfuzz
COPY . .
RUN pip install --no-cache-dir . flower \
    && useradd --create-home --uid 1000 oomfuzz && mkdir -p /var/lib/oomfuzz-farm \
    && chown oomfuzz /var/lib/oomfuzz-farm
USER oomfuzz
WORKDIR /home/oomfuzz
CMD ["oomfuzz", "--help"]
