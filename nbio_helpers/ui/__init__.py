"""What the notebooks show: plots, widgets, the explorer, setup and finish."""

__all__: list[str] = []
