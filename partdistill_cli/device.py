"""Where models run: the one resolver every stage (teachers, renderer choice, students) asks."""

from __future__ import annotations

from partdistill_cli.errors import ConfigError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


class DeviceError(ConfigError):
    """A device that does not exist here or that torch does not know."""


def check_device_name(device: str) -> str:
    """`device` if it is "auto", "cpu", "cuda" or "cuda:N", else DeviceError (checked without importing torch)."""
    base, _, index = str(device).partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise DeviceError(f"unknown device {device!r}; choose from auto, cpu, cuda (or cuda:N)")
    return str(device)


def resolve_device(device: str | None) -> str:
    """The torch device string for `device`: "auto" (or None) is "cuda" when CUDA is available, else "cpu".

    Raises DeviceError for an unknown name, or for CUDA asked for where there is none.
    """
    device = check_device_name(device or "auto")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} was asked for but CUDA is not available (use --device cpu)")
    return device
