"""The one flat rule: relative float residue after a reducing fill is flat, and the ledger books by it."""

from __future__ import annotations

import numpy as np

from slsbot_runtime.domain.positions import is_flat, position_after
from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.execution.ledger import Ledger


def test_residue_is_measured_against_the_size_of_the_position_it_came_from() -> None:
    assert is_flat(2.9e-11, 500_480.7) and is_flat(-2.9e-11, 500_480.7)
    assert not is_flat(2.9e-11, 0.5)  # below a size of 1 the bound is absolute: 1e-12
    assert is_flat(1e-12, 0.5) and not is_flat(1e-6, 500_480.7)


def test_a_reducing_fill_that_leaves_residue_books_exactly_zero_and_an_adding_one_never_does() -> None:
    bought, pieces = 500480.73622102157, (162528.88313722145, 213102.93897446836, 124848.91410933173)
    held = bought
    for piece in pieces:
        held = position_after(held, -piece)
    assert held == 0.0 and bought - pieces[0] - pieces[1] - pieces[2] != 0.0
    assert position_after(0.0, 1e-13) == 1e-13  # an opening fill is what it is
    assert position_after(2.0, -3.0) == -1.0  # a flip through zero


def test_position_after_is_the_ledgers_quantity_fill_after_fill() -> None:
    rng = np.random.default_rng(11)
    ledger = Ledger(cash=1e12, quote_currency="USDT")
    held, residues, n = 0.0, 0, 0
    for _ in range(2_000):
        current = ledger.quantity("DOGE/USDT")
        closing = current != 0.0 and rng.random() < 0.6
        size = abs(current) if closing else float(rng.uniform(1e3, 1e6))  # else an entry, an addition or a flip
        side = (Side.SELL if current > 0 else Side.BUY) if closing else (Side.BUY if rng.random() < 0.5 else Side.SELL)
        filled = 0.0
        while size - filled > 0:  # in pieces, as the paper exchange fills a volume-capped order
            piece = min(size - filled, float(rng.uniform(0.2, 0.7)) * size)
            filled += piece
            before = held
            ledger.apply(Fill(f"f{n}", "o", "DOGE/USDT", side, piece, 0.1, 0.0, "USDT", n))
            held = position_after(held, side.sign * piece)
            residues += held == 0.0 and before + side.sign * piece != 0.0
            assert held == ledger.quantity("DOGE/USDT")
            n += 1
    assert residues > 50, "the walk must leave float residue that the rule calls flat"
