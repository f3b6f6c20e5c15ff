"""A stand-in for ``hosts.services`` (written on another branch): the host views import it
lazily, so a fake module in ``sys.modules`` is exactly what they will call."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import hosts


class FakeHostRegistrationError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def install_fake_host_services(
    monkeypatch, *, register_host: Callable, reprobe_host: Callable
) -> types.ModuleType:
    fake = types.ModuleType("hosts.services")
    fake.HostRegistrationError = FakeHostRegistrationError
    fake.register_host = register_host
    fake.reprobe_host = reprobe_host
    monkeypatch.setitem(sys.modules, "hosts.services", fake)
    monkeypatch.setattr(hosts, "services", fake, raising=False)
    return fake
