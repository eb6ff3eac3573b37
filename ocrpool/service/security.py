"""Who may ask, and which server-side files a request may name.

The service reads bytes from the request; a path is read only when the operator named a
prefix (``--allow-path-prefix``), and then only if its real path (every symlink resolved)
lies inside the prefix's real path, so neither ``..`` nor a symlink can lead out of it.
"""

from __future__ import annotations

import hmac
import os

from ocrpool.service.errors import PathRefused, Unauthorized


class BearerToken:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def check(self, authorization: str | None) -> None:
        """``Unauthorized`` unless ``authorization`` is ``Bearer <the token>``."""
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), self._token
        ):
            raise Unauthorized("this service needs the header Authorization: Bearer <token>")


class PathPolicy:
    def __init__(self, prefix: str | None) -> None:
        self._root = None if prefix is None else os.path.realpath(prefix)

    def resolve(self, path: str) -> str:
        """The real path of ``path`` if a request may have it read, else ``PathRefused``."""
        if self._root is None:
            raise PathRefused(
                "this service reads no server-side path: send the file's bytes "
                "(paths need the service started with --allow-path-prefix DIR)",
                path=path,
            )
        if not os.path.isabs(path) or "\0" in path:
            raise PathRefused("the path must be absolute", path=path)
        if ".." in path.split(os.sep):
            raise PathRefused("the path must not contain '..'", path=path)
        try:
            real = os.path.realpath(path)
        except OSError as exc:  # a link replaced by a file while it is resolved: EINVAL
            raise PathRefused(f"the path cannot be resolved: {exc.strerror}", path=path) from None
        if os.path.commonpath([real, self._root]) != self._root:
            raise PathRefused("the path leads outside the allowed prefix", path=path)
        return real
