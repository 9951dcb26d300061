# The web service: the app under daphne.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Requirements first, in their own layer, so code changes reuse the install.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 1000 app
COPY --chown=app:app . .
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && chown -R app:app /app/staticfiles

USER app
# The engine's, the risk execution's and the portfolio pass's compiled
# kernels, cached in the image for every process.
RUN python -c "from strategies.compiled import kernels_load; kernels_load()"
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput -v0 && daphne -b 0.0.0.0 -p 8000 backtester.asgi:application"]
