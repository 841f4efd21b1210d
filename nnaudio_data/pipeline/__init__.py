"""Adapters: collate functions, device stage, WebDataset stages, torchdata.nodes, dataset wrappers."""

__all__: list[str] = []
