"""A local stand-in for Alibaba Cloud OSS, CDN, CAS and Function Compute.

It plays the cloud for certpilot's tests, demo and benchmarks: the real SDKs talk to it
unmodified over HTTP, and its edge serves HTTPS and HTTP the way the cloud's would.
It shares no code with certpilot on purpose (DESIGN §2.8).
"""

from __future__ import annotations
