"""Where training datasets and uploaded entity files live: a local directory or S3-compatible storage.

`PORTAL_TRAINING_STORAGE_URL` is a directory (default `var/datasets`) or `s3://bucket/prefix`, read and
written through pyarrow's filesystems (pinned with Feast; its S3 filesystem is the one Feast's file
offline store uses, so a saved dataset registered from here is readable by Feast too). S3 credentials
come from the AWS SDK's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the pod's IAM
role); `PORTAL_TRAINING_S3_ENDPOINT_URL` points at MinIO or another S3-compatible server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from catalog.exceptions import PortalError


class DatasetStorageUnavailable(PortalError):
    """The dataset storage (a directory or an S3 bucket) cannot be read or written right now."""

    status_code = 503
    code = "unavailable"


@dataclass(frozen=True)
class DatasetStorage:
    """A pyarrow filesystem and the root path inside it."""

    fs: Any
    root: str  # path inside `fs`: an absolute directory, or bucket/prefix
    scheme: str  # "" (local) or "s3"
    endpoint: str  # the S3 endpoint override ("" for AWS or local)

    def path(self, *parts: str) -> str:
        """The path inside the filesystem of `parts` under the root."""
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def uri(self, *parts: str) -> str:
        """A URI naming `parts` (a plain absolute path when local, s3://... otherwise)."""
        path = self.path(*parts)
        return f"{self.scheme}://{path}" if self.scheme else path

    def relative(self, uri: str) -> str:
        """The parts of a URI below the root (inverse of uri())."""
        path = uri.split("://", 1)[1] if "://" in uri else uri
        return path.removeprefix(self.root.rstrip("/")).strip("/")

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetStorageUnavailable(f"dataset storage {self.uri()}: cannot {what}: {first}") from exc

    def makedirs(self, *parts: str) -> None:
        """Create a directory (a no-op on object storage)."""
        if not self.scheme:
            self._call("create a directory", self.fs.create_dir, self.path(*parts), recursive=True)

    def open_output(self, *parts: str) -> Any:
        """A writable stream for a file."""
        return self._call("write", self.fs.open_output_stream, self.path(*parts))

    def open_input(self, *parts: str) -> Any:
        """A readable, seekable file."""
        return self._call("read", self.fs.open_input_file, self.path(*parts))

    def size(self, *parts: str) -> int | None:
        """A file's size in bytes, None when it does not exist."""
        import pyarrow.fs as pafs

        info = self._call("look up a file", self.fs.get_file_info, self.path(*parts))
        return int(info.size) if info.type == pafs.FileType.File else None

    def delete_dir(self, *parts: str) -> None:
        """Remove a directory and everything in it (missing: fine)."""
        import pyarrow.fs as pafs

        info = self._call("look up a directory", self.fs.get_file_info, self.path(*parts))
        if info.type == pafs.FileType.Directory:
            self._call("delete a directory", self.fs.delete_dir, self.path(*parts))

    def delete_file(self, *parts: str) -> None:
        """Remove a file (missing: fine)."""
        import pyarrow.fs as pafs

        info = self._call("look up a file", self.fs.get_file_info, self.path(*parts))
        if info.type == pafs.FileType.File:
            self._call("delete a file", self.fs.delete_file, self.path(*parts))


def dataset_storage(url: str | None = None, endpoint: str | None = None) -> DatasetStorage:
    """The configured dataset storage (PORTAL_TRAINING_STORAGE_URL, PORTAL_TRAINING_S3_ENDPOINT_URL)."""
    import pyarrow.fs as pafs

    url = url if url is not None else settings.PORTAL_TRAINING_STORAGE_URL
    endpoint = endpoint if endpoint is not None else settings.PORTAL_TRAINING_S3_ENDPOINT_URL
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise DatasetStorageUnavailable(
                "PORTAL_TRAINING_STORAGE_URL: s3:// needs a bucket, e.g. s3://datasets/training"
            )
        options: dict[str, Any] = {}
        if endpoint:
            ep = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            options = {"endpoint_override": ep.netloc, "scheme": ep.scheme or "https"}
        return DatasetStorage(
            fs=pafs.S3FileSystem(**options),
            root=f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/"),
            scheme="s3",
            endpoint=endpoint,
        )
    if parsed.scheme not in ("", "file"):
        raise DatasetStorageUnavailable(
            f"PORTAL_TRAINING_STORAGE_URL: {parsed.scheme}:// is not supported (a directory, file:// or s3://)"
        )
    root = Path(parsed.path if parsed.scheme == "file" else url).expanduser().resolve()
    return DatasetStorage(fs=pafs.LocalFileSystem(), root=str(root), scheme="", endpoint="")
