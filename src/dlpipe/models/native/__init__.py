"""Small C kernels compiled on first use with the machine's C compiler and loaded with ctypes.

The compiled library goes to ``$DLPIPE_CACHE_DIR/native`` (default ~/.cache/dlpipe/native) under a
name keyed by the source, the compiler and the flags, so it is built once per machine (~1 s) and
rebuilt when any of them changes. Without a working compiler, or with ``DLPIPE_NATIVE=0``, the
loaders return None and callers use torch's own kernels: the C path is an optimisation only.
The only code compiled and loaded is the source shipped in this folder.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from dlpipe.core.files import cache_dir

__all__ = ["load_lstm", "load_stem"]

_HERE = Path(__file__).resolve().parent
_P, _I = ctypes.c_void_p, ctypes.c_int
_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL | None] = {}


def _flag_sets() -> list[list[str]]:
    base = ["-O3", "-shared", "-fPIC", "-ffp-contract=fast", "-fno-math-errno", "-fno-trapping-math"]
    native = ["-march=native", "-mprefer-vector-width=512"] if platform.machine() in ("x86_64", "AMD64") else ["-mcpu=native"]
    return [base + native, base]  # the portable set when the compiler refuses the native flags


def _compile(source: Path) -> Path | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    folder = cache_dir("native")
    for flags in _flag_sets():
        key = hashlib.sha256("\n".join([source.read_text(), cc, version, *flags, platform.machine()]).encode()).hexdigest()[:16]
        target = folder / f"{source.stem}-{key}.so"
        if target.is_file():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                built = Path(tmp) / target.name
                done = subprocess.run([cc, *flags, "-o", str(built), str(source)], capture_output=True, timeout=60)
                if done.returncode == 0 and built.is_file():
                    os.replace(built, target)  # atomic: a concurrent process sees the whole file or none
                    return target
        except (OSError, subprocess.SubprocessError):
            return None
    return None


# Each library's functions and their C argument types (every function returns int: 0 = done).
_SIGNATURES: dict[str, dict[str, list[type]]] = {
    "stem": {
        "dlp_stem_forward": [_P, _I, _I, _I, _I, _P, _P, _I, _I, _P, _P],
        "dlp_stem_backward": [_P, _P, _P, _I, _I, _I, _I, _I, _I, _P, _P],
    },
    "lstm": {
        "dlp_lstm_forward": [_P, _P, _P, _P, _I, _I, _I, _I, _P, _P, _P],
        "dlp_lstm_backward": [_P, _P, _P, _P, _I, _I, _I, _P],
    },
}


def _load(name: str) -> ctypes.CDLL | None:
    with _lock:
        if name not in _libs:
            lib = None
            if os.environ.get("DLPIPE_NATIVE", "1") != "0":
                path = _compile(_HERE / f"{name}.c")
                try:
                    lib = ctypes.CDLL(str(path)) if path is not None else None
                    for fn, argtypes in _SIGNATURES[name].items() if lib is not None else ():
                        getattr(lib, fn).argtypes = argtypes
                        getattr(lib, fn).restype = _I
                except (OSError, AttributeError):  # not loadable, or an old build without a function
                    lib = None
            _libs[name] = lib
        return _libs[name]


def load_stem() -> ctypes.CDLL | None:
    """The fused conv + max-pool + ReLU kernels (stem.c), or None when they cannot be built here."""
    return _load("stem")


def load_lstm() -> ctypes.CDLL | None:
    """The LSTM layer kernels (lstm.c), or None when they cannot be built here."""
    return _load("lstm")
