FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY broadcaster broadcaster
COPY moderation moderation
COPY player-demo player-demo
RUN pip install --no-cache-dir -e .
EXPOSE 8080 1935
CMD ["onair", "serve"]
