"""The placement map lives in pipeline_lib.placement (importable without torch, for config checks)."""
from ..placement import *  # noqa: F401,F403
from ..placement import PAPER_TARGETS, PLACEMENTS, SERIES_PLACEMENT  # noqa: F401
