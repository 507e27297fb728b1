"""The local supervisor's admin API (FastAPI): strategies, orders, pause/resume, experiments (promote, abort, pause
and resume an A/B rollout), events, audit."""

from slsbot.interfaces.admin_api.app import create_app

__all__ = ["create_app"]
