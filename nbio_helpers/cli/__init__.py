"""The command line: nbio serve/client/load/bench/chat, student edition, site."""

__all__: list[str] = []
