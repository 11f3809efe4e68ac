"""What a release is, for caching: a digest of the code and templates that make its pages."""
import hashlib
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def release_digest(root=PROJECT):
    """A digest of the .py and .html files under root (the Django project), names and contents."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".html") and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
