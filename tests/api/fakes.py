"""The host views' service calls replaced: registration would talk to a real host."""

from __future__ import annotations

from collections.abc import Callable

from hosts import services


def install_fake_host_services(
    monkeypatch, *, register_host: Callable, reprobe_host: Callable
) -> None:
    monkeypatch.setattr(services, "register_host", register_host)
    monkeypatch.setattr(services, "reprobe_host", reprobe_host)
