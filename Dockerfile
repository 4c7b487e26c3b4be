# Flowhook: one image for the web service and the workers (docker-compose.yml runs both).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Flowhook listens on loopback unless told otherwise: in a container, nobody could reach it.
ENV FLOWHOOK_HOST=0.0.0.0

WORKDIR /app

# Runtime dependencies only, in a layer of their own: rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

RUN groupadd --system --gid 10001 flowhook \
    && useradd --system --uid 10001 --gid flowhook --no-create-home --shell /usr/sbin/nologin flowhook

# The engine changes less often than the handlers, so the handlers come last. Replace them with
# your own by mounting a folder over /app/handlers or in an image built FROM this one (docs/operations.md, Your own handlers).
COPY app.py wsgi.py gunicorn.conf.py ./
COPY flowhook/ flowhook/
COPY workers/ workers/
COPY handlers/ handlers/

USER flowhook
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
