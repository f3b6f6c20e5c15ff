"""Upstream discovery: the only code that speaks HTTP to upstream providers (ARCHITECTURE §2).

``client`` (the httpx wrapper and ``ProbeError``) · ``discovery`` (``GET /v1/models``) ·
``aliases`` (normalized/canonical ids, families, resolution, recommendations) · ``capability``
(transport and per-model capability profile) · ``completion`` (smoke model and completion) ·
``guard`` (SSRF check of pasted base_urls) · ``simulator`` (an OpenAI-compatible upstream for
tests and the demo; no pipeline module imports it).

Pure functions and HTTP only: no database, and no imports from ``hosts`` or ``batch_import``.
"""
