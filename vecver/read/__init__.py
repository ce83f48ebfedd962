"""The read path: typed routes (:mod:`vecver.read.routes`) and the one searcher that
embeds, checks the fingerprint rule, searches and labels every hit
(:mod:`vecver.read.searcher`)."""

from .routes import (
    ACTIVE,
    CANDIDATE,
    Active,
    Candidate,
    CollectionView,
    Leg,
    ReadPlan,
    Route,
    SpaceRoute,
    parse_route,
)
from .searcher import Searcher

__all__ = [
    "ACTIVE", "CANDIDATE", "Active", "Candidate", "CollectionView", "Leg", "ReadPlan",
    "Route", "Searcher", "SpaceRoute", "parse_route",
]
