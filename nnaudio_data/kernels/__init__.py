"""Pure kernel builders: parameters -> numpy / torch arrays. No modules, no state; cached."""

__all__: list[str] = []
