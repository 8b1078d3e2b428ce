"""Argument types shared by several commands."""

from __future__ import annotations

import argparse


def parse_float_list(text: str) -> list[float]:
    """'1,2.5,3' -> [1.0, 2.5, 3.0]."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_epoch(text: str) -> int | str:
    """'latest' or an epoch number (for --epoch)."""
    if text == "latest":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an epoch number or 'latest', got {text!r}") from None


def parse_int_list(text: str) -> list[int]:
    """'0,3,7' -> [0, 3, 7]."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_range(text: str) -> tuple[int, float, float]:
    """'DIM:MIN:MAX' (DIM 1-based) -> (0-based column, min, max)."""
    try:
        dim, low, high = text.split(":")
        column = int(dim) - 1
        if column < 0:
            raise ValueError
        return column, float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DIM:MIN:MAX with DIM counted from 1, got {text!r}") from None
