# The one hcp image: web (gunicorn), Celery worker and beat differ only by command
# (see docker-compose.yml). Configuration comes from HCP_* variables at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HCP_VAR_DIR=/var/lib/hcp \
    HCP_BIND=0.0.0.0:8000

# The report's PDF embeds this Chinese font and its charts are drawn with it (HCP_REPORT_FONT).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --home-dir /app hcp \
    && mkdir -p /var/lib/hcp /app \
    && chown hcp:hcp /var/lib/hcp

WORKDIR /app
COPY . /app
RUN pip install /app && rm -rf /root/.cache

USER hcp
EXPOSE 8000
CMD ["gunicorn", "-c", "python:config.gunicorn", "service:create_app()"]
