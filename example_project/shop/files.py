"""The sample file behind the download endpoints, generated on first use."""

import hashlib
import os
import tempfile

from django.conf import settings

SAMPLE_SIZE = 1 << 20  # 1 MiB


def sample_path():
    """Return the path of a 1 MiB file, creating it if needed.

    The bytes come from SHAKE-256 so every checkout gets the same, incompressible content
    without shipping a binary in git.  Several workers may race on the first request, so
    each writes a private temp file and renames it into place atomically.
    """
    path = settings.VAR_DIR / "sample.bin"
    if path.exists() and path.stat().st_size == SAMPLE_SIZE:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    data = hashlib.shake_256(b"django-uwsgi-server sample").digest(SAMPLE_SIZE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sample-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # mkstemp creates 0600; the file is public sample data.
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
