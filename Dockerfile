# The backend image for docker-compose.yml (./bin/dev needs no Docker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .

EXPOSE 4567
CMD ["gunicorn", "--bind", "0.0.0.0:4567", "--workers", "2", "--threads", "8", \
     "--worker-class", "gthread", "--no-control-socket", "app:create_app()"]
