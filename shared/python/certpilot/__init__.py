"""certpilot: HTTPS on autopilot for Alibaba Cloud OSS custom domains and CDN domains.

The package is the Function Compute layer shared by the three handlers. Importing it
is cheap on purpose: SDKs and `cryptography` are imported by the modules that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
