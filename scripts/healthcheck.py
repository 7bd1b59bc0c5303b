"""The container's HEALTHCHECK: exit 0 when this host's /readyz answers 200, 1 otherwise.

Plain http.client, so the image needs no curl and the check costs no Django
start-up. It asks with the first name of ALLOWED_HOSTS, since Django refuses
any other Host header, and it never follows a redirect: only a 200 counts.
"""

from __future__ import annotations

import http.client
import os
import sys

PATH = "/readyz"


def probe_host(allowed_hosts: str) -> str:
    """A Host header that ALLOWED_HOSTS accepts: its first name ('.example.org' -> 'example.org', '*' -> 'localhost')."""
    first = next((h.strip() for h in allowed_hosts.split(",") if h.strip()), "localhost")
    return "localhost" if first == "*" else first.lstrip(".")


def probe_address(bind_host: str) -> str:
    """Where gunicorn listens (HOST): loopback when it listens on every address."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0") else ("::1" if bind_host in ("::", "[::]") else bind_host.strip("[]"))


def healthy(address: str, port: int, host_header: str, timeout: float = 5.0) -> bool:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", PATH, headers={"Host": host_header})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


if __name__ == "__main__":
    address = probe_address(os.environ.get("HOST", ""))
    port = int(os.environ.get("PORT", "8000"))
    sys.exit(0 if healthy(address, port, probe_host(os.environ.get("ALLOWED_HOSTS", ""))) else 1)
