"""Per-notebook code: each nbNN module is what notebook NN uses."""

__all__: list[str] = []
