"""Configuration of one simulated upstream: plain dataclasses, mutable while it runs.

A running simulator reads its ``UpstreamConfig`` afresh for every request, so tests (and later
the host simulator) flip behaviours by assigning attributes or calling ``fail_next``.
``from_dict``/``to_dict`` give the JSON shape used by the CLI's ``--config`` file and by the
``/__sim/config`` control endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

FAULT_MODES = ("status", "timeout", "disconnect", "garbage")
MODELS_SHAPES = ("openai", "bare_list", "models_key", "empty", "non_json")


@dataclass
class SimModel:
    """One model the upstream serves and what it can do."""

    id: str
    stream: bool = True
    tools: bool = True
    reasoning: bool = False
    reply: str = "OK"

    @classmethod
    def from_value(cls, value: SimModel | str | Mapping[str, Any]) -> SimModel:
        if isinstance(value, SimModel):
            return value
        if isinstance(value, str):
            return cls(id=value)
        known = {f.name for f in fields(cls)}
        return cls(**{key: item for key, item in value.items() if key in known})


@dataclass
class Fault:
    """Fail the next ``times`` requests matching ``path`` (``*`` = any) and ``model``.

    ``mode``: ``status`` answers ``status`` with the provider's error envelope; ``timeout``
    holds the request for ``UpstreamConfig.hang_seconds`` (longer than any client timeout);
    ``disconnect`` closes the connection without an answer; ``garbage`` answers 200 with HTML.
    """

    path: str = "*"
    status: int = 500
    times: int = 1
    mode: str = "status"
    model: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f"fault mode must be one of {FAULT_MODES}, got {self.mode!r}")

    def matches(self, path: str, model: str | None) -> bool:
        return (
            self.times > 0
            and self.path in ("*", path)
            and (self.model is None or self.model == model)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class UpstreamConfig:
    """Behaviour of one simulated OpenAI-compatible upstream.

    ``api_key`` None or empty accepts any caller. ``responses_status`` None serves the real
    Responses API; 403/404/405 make ``/v1/responses`` unsupported with that status.
    ``models_shape`` changes what ``GET /v1/models`` returns (``openai`` list object,
    ``bare_list`` of ids, ``models_key`` = ``{"models": [...]}``, ``empty``, ``non_json``).
    """

    name: str = "upstream"
    models: list[SimModel] = field(default_factory=lambda: [SimModel("sim-model")])
    api_key: str | None = "sk-sim-upstream-key"
    latency: float = 0.0
    responses_status: int | None = None
    anthropic_messages: bool = False
    models_shape: str = "openai"
    hang_seconds: float = 30.0
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.models = [SimModel.from_value(model) for model in self.models]
        self.faults = [f if isinstance(f, Fault) else Fault.from_dict(f) for f in self.faults]
        if self.models_shape not in MODELS_SHAPES:
            raise ValueError(f"models_shape must be one of {MODELS_SHAPES}")

    def model(self, model_id: str | None) -> SimModel | None:
        return next((model for model in self.models if model.id == model_id), None)

    def set_models(self, models: str | Iterable[SimModel | str | Mapping[str, Any]]) -> None:
        """Replace the model list; a string is a comma-separated list of ids."""
        if isinstance(models, str):
            models = [name.strip() for name in models.split(",") if name.strip()]
        self.models = [SimModel.from_value(model) for model in models]

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial dict (the ``/__sim/config`` body); unknown keys are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown simulator settings: {', '.join(unknown)}")
        for key, value in changes.items():
            if key == "models":
                self.set_models(value)
            elif key == "faults":
                self.faults = [Fault.from_dict(item) for item in value]
            else:
                setattr(self, key, value)
        self.__post_init__()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpstreamConfig:
        config = cls()
        config.update({key: value for key, value in data.items() if key not in ("host", "port")})
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
