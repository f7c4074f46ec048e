"""One adapter per cloud service (OSS, CDN, CAS, FC), each owning its SDK.

Adapters are built by `certpilot.cloud.clients.CloudClients`. Importing any module here is
cheap: SDKs are imported inside the functions that use them (cold starts cost money).
Every method raises `certpilot.core.errors.CloudError` subclasses, retries throttling and
5xx itself, and keeps under the action's documented QPS.
"""
