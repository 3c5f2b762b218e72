"""The projections role (``taskwarden projections``): the projection runner on its own, in its
thread, until stopped; or, once, a rebuild of the read model from the whole log. Nothing runs on
an event loop here, so stopping is the services' own order: the runner's thread is joined
before the read model and the store close."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from infrastructure.settings import Settings
from interfaces.services import Services, build


@dataclass(frozen=True)
class ProjectionsRole:
    services: Services

    @classmethod
    def from_settings(cls, settings: Settings, *, follow: bool = True) -> ProjectionsRole:
        """``follow``: the runner follows the log from now on; False: ``rebuild`` drives it."""
        return cls(build(msgspec.structs.replace(settings, run_projections=follow)))

    def rebuild(self) -> int:
        """Empties the read model and projects the whole log again; returns the position
        reached. Every other runner must be stopped first."""
        self.services.read_model.reset()
        return self.services.runner.catch_up()

    def stop(self) -> None:
        self.services.close()
