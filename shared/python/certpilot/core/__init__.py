"""The shared vocabulary: model, findings, names, the certificate reference (`certref`),
the values the cloud adapters return (`cloudtypes`), outcome, reason and status codes
(`outcomes`), errors, settings, logging, and how to reach a URL (`net`: a loopback
host without a proxy).

Imports no SDK and no cloud module (checked by the layering contract in `make test`).
"""
