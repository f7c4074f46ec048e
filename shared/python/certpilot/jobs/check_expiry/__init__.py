"""check-expiry: the scheduled sweep that finds, repairs, reports and notifies."""
