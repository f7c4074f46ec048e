"""One room per job: deploy_cert, enforce_https, check_expiry."""
