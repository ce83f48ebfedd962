"""The read path: typed routes (:mod:`vecver.read.routes`), fusion of several spaces'
hits (:mod:`vecver.read.fusion`), shadow comparisons (:mod:`vecver.read.shadow`) and the
one searcher that embeds, checks the fingerprint rule, searches and labels every hit, and
tells read observers (:mod:`vecver.read.searcher`)."""

from .routes import (
    ACTIVE,
    CANDIDATE,
    DUAL,
    FUSIONS,
    SHADOW,
    Active,
    Canary,
    Candidate,
    CollectionView,
    Dual,
    Leg,
    ReadPlan,
    Rerank,
    Route,
    Shadow,
    SpaceRoute,
    canary_bucket,
    parse_route,
    register_route,
    route_forms,
)
from .searcher import LegResult, ReadObserver, RerankHook, Searcher, SearchEvent

__all__ = [
    "ACTIVE", "CANDIDATE", "DUAL", "FUSIONS", "SHADOW", "Active", "Candidate", "Canary",
    "CollectionView", "Dual", "Leg", "LegResult", "ReadObserver", "ReadPlan", "Rerank",
    "RerankHook", "Route", "SearchEvent", "Searcher", "Shadow", "SpaceRoute",
    "canary_bucket", "parse_route", "register_route", "route_forms",
]
