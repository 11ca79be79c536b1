"""Speech engines of the node: the node's model and each tenant's own, loaded once per path."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from asr import SpeechEngine
from callcenter.models import Tenant

logger = logging.getLogger(__name__)


def tenant_models(engine: Engine) -> dict[int, Path]:
    with Session(engine) as db:
        return {t.id: Path(t.asr_model) for t in db.scalars(select(Tenant)) if t.asr_model}


class SpeechEngines:
    def __init__(self, default_model: Path | None, workers: int | None, timeout: float | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.default = SpeechEngine(default_model, workers=workers, timeout=timeout)
        self._by_path: dict[Path, SpeechEngine] = {}
        self._tenants: dict[int, SpeechEngine] = {}

    async def start(self, models: dict[int, Path]) -> None:
        await self.default.start()
        await self.update(models)

    async def update(self, models: dict[int, Path]) -> None:
        """Engines for tenants with their own model (a model that fails to load falls back to the node's)."""
        tenants: dict[int, SpeechEngine] = {}
        for tenant_id, path in models.items():
            engine = self._by_path.get(path)
            if engine is None:
                engine = SpeechEngine(path, workers=self.workers, timeout=self.timeout)
                try:
                    await engine.start()
                except Exception as exc:
                    logger.error("tenant %d: speech model %s not loaded: %s", tenant_id, path, exc)
                    continue
                self._by_path[path] = engine
            tenants[tenant_id] = engine
        self._tenants = tenants

    def for_tenant(self, tenant_id: int | None) -> SpeechEngine:
        return self._tenants.get(tenant_id, self.default) if tenant_id is not None else self.default

    def close(self) -> None:
        self.default.close()
        for engine in self._by_path.values():
            engine.close()
