FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chatsite chatsite
COPY accounts accounts
COPY conversations conversations
COPY fakeanthropic fakeanthropic
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput
RUN useradd --system chatsite && chown -R chatsite /app
USER chatsite
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--access-log", "/dev/null", "chatsite.asgi:application"]
