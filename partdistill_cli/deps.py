"""Heavy dependencies imported lazily, with a one-line error when the system lacks what they need."""

from __future__ import annotations

from types import ModuleType

from partdistill_cli.errors import UserError

LIBUSB_INSTALL = "sudo apt-get install -y libusb-1.0-0"


class DependencyError(UserError, RuntimeError):
    """An installed package cannot be imported because the system lacks something; the message says what."""


def import_open3d() -> ModuleType:
    """`import open3d`, turning the OSError of a missing system library into a DependencyError that names the
    package to install (open3d loads libusb at import; its absence is the common case on a fresh machine)."""
    try:
        import open3d
    except OSError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "libusb" in reason:
            raise DependencyError(
                f"open3d cannot load the system library libusb ({reason}); install it: {LIBUSB_INSTALL}"
            ) from exc
        raise DependencyError(
            f"open3d cannot be imported ({reason}); reinstall it: pip install open3d-cpu (or open3d)"
        ) from exc
    return open3d
