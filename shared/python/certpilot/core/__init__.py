"""The shared vocabulary: model, findings, names, errors, settings and logging.

Imports no SDK and no cloud module (checked by the layering contract in `make test`).
"""
