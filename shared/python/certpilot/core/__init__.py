"""The shared vocabulary: model, findings, names, the certificate reference (`certref`),
the values the cloud adapters return (`cloudtypes`), outcome, reason and status codes
(`outcomes`), errors, settings and logging.

Imports no SDK and no cloud module (checked by the layering contract in `make test`).
"""
