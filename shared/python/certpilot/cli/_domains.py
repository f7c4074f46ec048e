"""What the enforce-https sub-commands share: the account's record of one domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from certpilot.core.model import DomainRecord, Inventory, Route
from certpilot.core.names import normalize_domain

if TYPE_CHECKING:
    from certpilot.jobs.deploy_cert.engine import Deps


class UnknownDomain(ValueError):
    """The domain is not one certpilot can act on (not in the account, a bucket domain)."""


def find_record(deps: Deps, domain: str) -> tuple[DomainRecord, Inventory]:
    """The inventory record of `domain`, and the inventory.

    Raises:
        UnknownDomain: not a valid name, not in the account, or a bucket domain.
        CloudError: the account could not be read.
    """
    from certpilot.discovery.inventory import discover

    name = normalize_domain(domain)
    if name is None:
        raise UnknownDomain(f"{domain!r} is not a valid domain name")
    inventory = discover(deps.clients, deps.settings)
    record = inventory.get(name)
    if record is None:
        raise UnknownDomain(
            f"{name} is neither an OSS custom domain nor a CDN domain with an OSS origin"
        )
    if record.route is Route.BUCKET_DOMAIN:
        raise UnknownDomain(f"{name} is a bucket domain: Alibaba Cloud manages its HTTPS")
    return record, inventory
