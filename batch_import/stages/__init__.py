"""Pipeline stages. Each ``run_*`` step moves one item forward by one stage (or schedules a
retry) through the transitions service; ``batch_import.tasks`` calls them under a lease."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from batch_import.models import ImportRunItem


@dataclass
class StageContext:
    """What a step needs besides the item. Transports are injectable for tests; by default
    the adapters talk real HTTP."""

    worker_id: str
    upstream_transport: httpx.BaseTransport | None = None
    host_transport: httpx.BaseTransport | None = None


# A step returns the item as its last transition left it (``transition_item``'s answer: read
# with its run under the row lock, then written) when that transition ended the step, so the
# worker goes on with it instead of reading the item again; None when it does not know.
StageStep = Callable[[ImportRunItem, StageContext], ImportRunItem | None]


def _steps() -> dict[str, StageStep]:
    from batch_import.stages.confirm import run_confirm
    from batch_import.stages.preview import run_preview
    from batch_import.stages.provision import run_provision
    from batch_import.stages.upstream_probe import run_probe
    from batch_import.stages.validate import run_validate

    def provision_or_preview(item: ImportRunItem, ctx: StageContext) -> ImportRunItem | None:
        """A preview run's provision stage plans what provisioning would do, writing nothing."""
        return (run_preview if item.run.is_preview else run_provision)(item, ctx)

    return {
        ImportRunItem.Stage.PROBE: run_probe,
        ImportRunItem.Stage.PROVISION: provision_or_preview,
        ImportRunItem.Stage.CONFIRM: run_confirm,
        ImportRunItem.Stage.VALIDATE: run_validate,
    }


class _LazySteps(dict[str, StageStep]):
    """Stage modules import the adapters; load them on first use or with ``load`` (the
    worker's task module does, so the cluster imports them before it forks), not at app
    start."""

    def __missing__(self, key: str) -> StageStep:
        self.load()
        return dict.__getitem__(self, key)

    def load(self) -> None:
        for stage, step in _steps().items():
            self.setdefault(stage, step)  # never over a step someone set on purpose


STAGE_STEPS = _LazySteps()
