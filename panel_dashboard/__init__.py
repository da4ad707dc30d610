"""The DataForge Panel dashboard: talks to the analytics API only (never to AWS directly).

``app.py`` is the thin ``servable()`` entry; the logic lives in small modules:
``settings`` (env vars -> frozen settings), ``client`` (httpx API client with retries/backoff),
``state`` (pure helpers: formatting, staleness, bounded buffers), ``poller`` (one per server process,
shared by its sessions), ``pages/`` (overview, merchants, alerts, query) and ``layout`` (the template assembling them).
"""
