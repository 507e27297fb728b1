"""The vote itself, a pure function of the members' votes, confidences and effective weights.

* contribution_i = weight_i * vote_i / sum of weights (flat members count in the sum: an abstention is
  a vote against acting); the net vote is the sum of contributions, in [-1, 1].
* direction = the net vote, or 0 when |net vote| < min_agreement.
* confidence = weighted mean confidence of the members voting on the side of the decision (0 when flat).
* driver = the member with the largest contribution on the side of the decision (the first in member
  order among equals); none when flat.

``combine`` does one candle with plain floats (``combine_one`` the same for a single member); ``combine_batch``
the same over (n, members) arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: A net vote this close to 0 is 0: two members cancelling exactly should not leave rounding noise.
NET_ZERO = 1e-12
#: Contributions within this (relative) of the largest tie for driver; the first member wins.
DRIVER_TIE = 1e-9


class Vote(NamedTuple):
    direction: float
    confidence: float
    net: float
    contributions: list[float]
    driver: int  # member index, -1 when flat


def combine(
    votes: Sequence[float],
    confidences: Sequence[float],
    weights: Sequence[float],
    min_agreement: float,
) -> Vote:
    total = sum(weights)
    if total <= 0:
        return Vote(0.0, 0.0, 0.0, [0.0] * len(votes), -1)
    contributions = [w * v / total for w, v in zip(weights, votes, strict=True)]
    net = sum(contributions)
    if -NET_ZERO < net < NET_ZERO:
        net = 0.0
    elif net > 1.0:
        net = 1.0
    elif net < -1.0:
        net = -1.0
    if net == 0.0 or abs(net) < min_agreement:
        return Vote(0.0, 0.0, net, contributions, -1)
    side = 1.0 if net > 0 else -1.0
    weight_on_side = confident = best = 0.0
    for i, vote in enumerate(votes):
        if vote * side > 0:
            weight_on_side += weights[i]
            confident += weights[i] * confidences[i]
            if contributions[i] * side > best:
                best = contributions[i] * side
    floor = best * (1.0 - DRIVER_TIE)
    driver = -1
    for i, vote in enumerate(votes):
        if vote * side > 0 and contributions[i] * side >= floor:
            driver = i
            break
    confidence = confident / weight_on_side if weight_on_side > 0 else 0.0
    return Vote(net, min(max(confidence, 0.0), 1.0), net, contributions, driver)


def combine_one(vote: float, confidence: float, weight: float, min_agreement: float) -> Vote:
    """``combine([vote], [confidence], [weight], min_agreement)``, the same arithmetic step by step without the
    loops: the per-candle vote of a one-member ensemble."""
    total = 0 + weight  # sum([weight])
    if total <= 0:
        return Vote(0.0, 0.0, 0.0, [0.0], -1)
    contribution = weight * vote / total
    net = 0 + contribution  # sum([contribution])
    if -NET_ZERO < net < NET_ZERO:
        net = 0.0
    elif net > 1.0:
        net = 1.0
    elif net < -1.0:
        net = -1.0
    if net == 0.0 or abs(net) < min_agreement:
        return Vote(0.0, 0.0, net, [contribution], -1)
    side = 1.0 if net > 0 else -1.0
    if not vote * side > 0:  # the one vote is not on the side of the net vote (cannot happen, as in combine)
        return Vote(net, 0.0, net, [contribution], -1)
    weight_on_side = 0.0 + weight
    confident = 0.0 + weight * confidence
    signed = contribution * side
    best = signed if signed > 0.0 else 0.0
    driver = 0 if signed >= best * (1.0 - DRIVER_TIE) else -1
    chosen = confident / weight_on_side if weight_on_side > 0 else 0.0
    return Vote(net, min(max(chosen, 0.0), 1.0), net, [contribution], driver)


@dataclass(frozen=True, slots=True)
class BatchVote:
    direction: np.ndarray
    confidence: np.ndarray
    net: np.ndarray
    contributions: np.ndarray  # (n, members)
    driver: np.ndarray  # (n,) member index, -1 when flat


def combine_batch(votes: np.ndarray, confidences: np.ndarray, weights: np.ndarray, min_agreement: float) -> BatchVote:
    if votes.shape[1] == 1:
        return _combine_batch_one(votes[:, 0], confidences[:, 0], weights[:, 0], min_agreement)
    total = _in_member_order(weights)
    positive = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        contributions = np.where(positive[:, None], weights * votes / np.where(positive, total, 1.0)[:, None], 0.0)
    net = _in_member_order(contributions)
    net = np.clip(np.where(np.abs(net) < NET_ZERO, 0.0, net), -1.0, 1.0)
    acts = (net != 0) & (np.abs(net) >= min_agreement)
    side = np.sign(net)[:, None]
    on_side = (votes * side > 0) & acts[:, None]
    weight_on_side = _in_member_order(np.where(on_side, weights, 0.0))
    confident = _in_member_order(np.where(on_side, weights * confidences, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(weight_on_side > 0, confident / np.where(weight_on_side > 0, weight_on_side, 1.0), 0.0)
    signed = np.where(on_side, contributions * side, -np.inf)
    best = signed.max(axis=1, initial=-np.inf)
    leaders = on_side & (signed >= (best * (1.0 - DRIVER_TIE))[:, None])
    driver = np.where(acts, np.argmax(leaders, axis=1), -1)
    return BatchVote(
        np.where(acts, net, 0.0),
        np.where(acts, np.clip(confidence, 0.0, 1.0), 0.0),
        net,
        contributions,
        driver,
    )


def _in_member_order(values: np.ndarray) -> np.ndarray:
    """Each row's sum, added member after member from 0 as ``combine`` adds them (numpy's own sum adds in another
    order for more than a few members, which rounds differently): equal inputs give ``combine``'s sums bit for bit.
    A member left out adds 0.0, which changes no sum."""
    total = np.zeros(len(values))
    for i in range(values.shape[1]):
        total = total + values[:, i]
    return total


def _combine_batch_one(
    votes: np.ndarray, confidences: np.ndarray, weights: np.ndarray, min_agreement: float
) -> BatchVote:
    """``combine_batch`` for one member, on plain vectors: a sum or a maximum over one member is that member's
    value, and the driver, when there is one, is member 0. Every other step is the same operation."""
    positive = weights > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        contributions = np.where(positive, weights * votes / np.where(positive, weights, 1.0), 0.0)
    net = 0.0 + contributions
    net = np.clip(np.where(np.abs(net) < NET_ZERO, 0.0, net), -1.0, 1.0)
    acts = (net != 0) & (np.abs(net) >= min_agreement)
    on_side = (votes * np.sign(net) > 0) & acts
    weight_on_side = np.where(on_side, weights, 0.0)
    confident = np.where(on_side, weights * confidences, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(weight_on_side > 0, confident / np.where(weight_on_side > 0, weight_on_side, 1.0), 0.0)
    return BatchVote(
        np.where(acts, net, 0.0),
        np.where(acts, np.clip(confidence, 0.0, 1.0), 0.0),
        net,
        contributions[:, None],
        np.where(acts, 0, -1),
    )
