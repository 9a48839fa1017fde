"""Geography of a client address from a local MaxMind database (GeoIP2 / GeoLite2), never the network.

    from otel_usage.instrumentors.flask import MaxMindGeoResolver, UsageTracking
    UsageTracking(app, geo_resolver=MaxMindGeoResolver("/var/lib/GeoIP/GeoLite2-City.mmdb"))

Needs the ``geo`` extra (``pip install 'otel-usage[geo]'``: geoip2). City, Country and ASN databases are
understood; lookups are cached per address. Any other ``ip -> dict`` function can be a geo resolver too.
"""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["MaxMindGeoResolver"]

_GEO_HINT = "pip install 'otel-usage[geo]'"


class MaxMindGeoResolver:
    """Looks addresses up in a local MaxMind database file.

    Args:
        path: the ``.mmdb`` file (City, Country or ASN; GeoIP2 or GeoLite2).
        locales: preferred languages of place names.
        cache_size: addresses whose answer is kept in memory.
        memory: load the whole file into memory at start-up (no disk access per lookup) instead of
            memory-mapping it.

    Raises:
        ImportError: geoip2 is not installed (with the ``pip install`` hint).
        ValueError: the file does not exist or is not a MaxMind database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        locales: tuple[str, ...] = ("en",),
        cache_size: int = 4096,
        memory: bool = False,
    ) -> None:
        try:
            import geoip2.database
            import maxminddb
        except ImportError as exc:
            raise ImportError(f"MaxMindGeoResolver needs geoip2: {_GEO_HINT}") from exc
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ValueError(f"MaxMind database {self.path!r} does not exist")
        mode = maxminddb.MODE_MEMORY if memory else maxminddb.MODE_AUTO
        try:
            self._reader: Any = geoip2.database.Reader(self.path, locales=list(locales), mode=mode)
        except (maxminddb.InvalidDatabaseError, OSError) as exc:
            raise ValueError(f"{self.path!r} is not a readable MaxMind database: {exc}") from exc
        self.database_type: str = self._reader.metadata().database_type
        kind = self.database_type.lower()
        if "city" in kind:
            self._lookup = self._city
        elif "country" in kind:
            self._lookup = self._country
        elif "asn" in kind:
            self._lookup = self._asn
        else:
            raise ValueError(f"{self.path!r}: unsupported MaxMind database type {self.database_type!r}")
        self._cached = functools.lru_cache(maxsize=cache_size)(self._resolve)

    def __call__(self, ip: str) -> dict[str, Any] | None:
        """The geography of ``ip`` (a copy), or None when the database does not know it."""
        found = self._cached(ip)
        return None if found is None else dict(found)

    def close(self) -> None:
        """Close the database file."""
        self._reader.close()

    def _resolve(self, ip: str) -> dict[str, Any] | None:
        from geoip2.errors import AddressNotFoundError

        try:
            return self._lookup(ip)
        except (AddressNotFoundError, ValueError):
            return None

    def _city(self, ip: str) -> dict[str, Any]:
        r = self._reader.city(ip)
        return {
            "country": r.country.iso_code,
            "country_name": r.country.name,
            "region": r.subdivisions.most_specific.name,
            "city": r.city.name,
            "latitude": r.location.latitude,
            "longitude": r.location.longitude,
            "time_zone": r.location.time_zone,
        }

    def _country(self, ip: str) -> dict[str, Any]:
        r = self._reader.country(ip)
        return {"country": r.country.iso_code, "country_name": r.country.name, "continent": r.continent.code}

    def _asn(self, ip: str) -> dict[str, Any]:
        r = self._reader.asn(ip)
        return {"asn": r.autonomous_system_number, "organization": r.autonomous_system_organization}
