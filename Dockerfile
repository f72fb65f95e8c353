FROM python:3.11-slim
# gcc builds the chat fan-out's C write loop (optional: without it the Python path is used)
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY broadcaster broadcaster
COPY moderation moderation
COPY player-demo player-demo
COPY setup.py ./
# a normal install (pages and model data are package data): nothing runs from the source tree
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /app
EXPOSE 8080 1935
CMD ["onair", "serve"]
