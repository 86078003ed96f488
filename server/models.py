"""The shared models (VAD, end-of-turn model, the three stages), loaded in the background at start-up: /healthz
and /offer wait for them; the embedded chat model also reads each mode's opening before the server is ready."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from server.audio.turn_model import TurnModel
from server.audio.vad import SileroModel
from server.config import Settings
from server.dialogue.modes import DEFAULT_MODE, PERSONAS
from server.dialogue.responder import opening_messages
from server.languages import DEFAULT_LANGUAGE
from server.providers.base import ProviderError, Providers
from server.providers.local import weights

logger = logging.getLogger(__name__)

ProvidersFactory = Callable[[Settings], Providers]


class Models:
    """The shared models, loaded in the background at startup; /healthz and /offer wait for them."""

    def __init__(self) -> None:
        self.providers: Providers | None = None
        self.vad: SileroModel | None = None
        self.turn: TurnModel | None = None  # the end-of-turn model, unless PARLEY_TURN_MODEL=off
        self.error: str | None = None
        self.loaded = asyncio.Event()


async def load(models: Models, settings: Settings, factory: ProvidersFactory, verify: bool) -> None:
    loop = asyncio.get_running_loop()
    try:
        if verify:  # remote endpoints: a wrong key or unknown model is a clear error now, not mid-call
            from server.providers.registry import verify as verify_endpoints

            await verify_endpoints(settings)
        models.vad = await loop.run_in_executor(None, lambda: SileroModel(weights.ensure(weights.SILERO_VAD)))
        if settings.turn_model == "on":
            models.turn = await loop.run_in_executor(None, lambda: TurnModel(weights.ensure(weights.SMART_TURN)))
        providers = await loop.run_in_executor(None, factory, settings)
        await _warm_openings(providers, settings)
        models.providers = providers  # ready: /healthz says so, /offer and the balancer's agent check go ahead
        logger.info("models ready: %s", models.providers.describe())
    except ProviderError as exc:
        logger.error("start-up check failed: %s", exc)
        models.error = str(exc)
    except weights.ModelFileError as exc:  # its message says what to run: no traceback to read through
        logger.error("model files: %s", exc)
        models.error = str(exc)
    except Exception as exc:
        logger.exception("loading the models failed")
        models.error = str(exc) or type(exc).__name__
    finally:
        models.loaded.set()


async def _warm_openings(providers: Providers, settings: Settings) -> None:
    """The embedded chat model reads each mode's opening in the default language before the server says it is
    ready (seconds each here), the default mode's last: otherwise the first call in a mode waited for it, or read it
    during its greeting while the greeting's synthesis shared the cores (9 s for 145 tokens). Calls in other
    languages read theirs once, during their greeting; every later call loads it (prompt_states.py)."""
    started = time.monotonic()
    modes = sorted(PERSONAS, key=lambda mode: mode == DEFAULT_MODE)
    try:
        for mode in modes:
            await providers.llm.warm(opening_messages(mode, DEFAULT_LANGUAGE, settings, providers), opening=True)
    except Exception:  # the first calls read them instead
        logger.warning("reading the openings ahead failed", exc_info=True)
    logger.info("openings ready in %.1f s", time.monotonic() - started)
