"""Live checks from outside: TLS handshakes (and HTTP requests) against the edge."""
