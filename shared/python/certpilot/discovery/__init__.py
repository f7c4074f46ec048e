"""What the account holds: the domain inventory and the CAS certificate catalog."""
