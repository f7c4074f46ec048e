"""One room per job: deploy_cert (then enforce_https, check_expiry)."""
