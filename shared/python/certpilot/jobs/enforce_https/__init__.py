"""enforce-https: secure a newly bound domain, then make plain HTTP impossible, safely."""
