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
