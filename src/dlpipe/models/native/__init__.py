"""Small C kernels compiled on first use with the machine's C compiler and loaded with ctypes.

The compiled library goes to ``$DLPIPE_CACHE_DIR/native`` (default ~/.cache/dlpipe/native) under a
name keyed by the source, the compiler, the flags, the machine architecture and the CPU's identity
(vendor, family, model and feature flags from /proc/cpuinfo), so it is built once per CPU (~0.2 s)
and rebuilt when any of them changes. The build uses ``-march=native``: a library built for another
CPU may use instructions this one lacks (SIGILL, which no fallback catches), so a cached library is
loaded only when its sidecar ``<name>-<key>.json`` names this exact key and the library's SHA-256,
and the library's bytes hold the key (``dlp_build_key``, compiled in); after loading, the symbol is
read (data, no code runs) and compared once more. Anything else is rebuilt, never loaded. Where the
CPU cannot be identified the portable flag set is used (no ``-march=native``).

Without a working compiler, or with ``DLPIPE_NATIVE=0``, the loaders return None and callers use
torch's own kernels: the C path is an optimisation only. :func:`build_error` says why a kernel is
not available (the tests fail, rather than skip, when a compiler is present and the build fails). The only code compiled and loaded is the
source shipped in this folder.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from dlpipe.core.files import cache_dir

__all__ = [
    "build_error",
    "compiler",
    "cpu_flags",
    "cpu_identity",
    "load_lstm",
    "load_minirocket",
    "load_stem",
]

_HERE = Path(__file__).resolve().parent
_P, _I = ctypes.c_void_p, ctypes.c_int
_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL | None] = {}
# why a kernel is not available: the compiler's error lines, or the failure (build_error)
_errors: dict[str, str] = {}
_KEY_SYMBOL = "dlp_build_key"
# /proc/cpuinfo fields that decide what -march=native / -mcpu=native compile for (x86: vendor_id..flags; Arm: CPU *, Features)
_CPU_FIELDS = (
    "vendor_id",
    "cpu family",
    "model",
    "flags",
    "Features",
    "CPU implementer",
    "CPU architecture",
    "CPU variant",
    "CPU part",
    "isa",
)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags /proc/cpuinfo lists for this machine's first processor (x86 ``flags``, Arm
    ``Features``); empty where it is unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_identity() -> str | None:
    """This CPU as ``-march=native`` sees it: architecture, vendor, family, model and feature flags, or None.

    None when /proc/cpuinfo is unreadable or lists no feature flags, or when its processors disagree
    (a library built on one core must run on every core); the kernels are then built for the
    portable baseline instead of ``-march=native``.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    seen = set()
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            name = name.strip()
            if name in _CPU_FIELDS:
                fields[name] = (
                    " ".join(sorted(value.split()))
                    if name in ("flags", "Features")
                    else value.strip()
                )
        if "flags" in fields or "Features" in fields:
            seen.add(";".join(f"{k}={v}" for k, v in sorted(fields.items())))
    if len(seen) != 1:
        return None
    return f"{platform.machine()}|{seen.pop()}"


def _flag_sets(cpu: str | None) -> list[list[str]]:
    base = [
        "-O3",
        "-shared",
        "-fPIC",
        "-ffp-contract=fast",
        "-fno-math-errno",
        "-fno-trapping-math",
    ]
    if cpu is None:
        return [base]  # an unidentified CPU: never -march=native, whose output could not be keyed
    native = (
        ["-march=native", "-mprefer-vector-width=512"]
        if platform.machine() in ("x86_64", "AMD64")
        else ["-mcpu=native"]
    )
    return [base + native, base]  # the portable set when the compiler refuses the native flags


def _verified(target: Path, key: str) -> bool:
    """True when ``target`` is the library built for ``key``: its sidecar names the key and its SHA-256,
    and its bytes hold the key. Reads only; nothing is loaded."""
    sidecar = target.with_suffix(".json")
    try:
        if (
            target.is_symlink()
            or not target.is_file()
            or sidecar.is_symlink()
            or not sidecar.is_file()
        ):
            return False
        info = json.loads(sidecar.read_text(encoding="utf-8"))
        data = target.read_bytes()
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(info, dict)
        and info.get("key") == key
        and info.get("sha256") == hashlib.sha256(data).hexdigest()
        and key.encode() in data
    )


def compiler() -> str | None:
    """The C compiler the kernels are built with: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH."""
    return (
        os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    )


def build_error(name: str) -> str | None:
    """Why kernel ``name`` (``"stem"``, ``"lstm"``, ``"minirocket"``) did not build or load in this
    process (the compiler's error lines, or the failure), or None when it loaded or was not tried."""
    return _errors.get(name)


def _compile(source: Path) -> tuple[Path, str] | None:
    """The library built from ``source`` for this CPU and compiler (built now unless a verified one is cached), with its key."""
    cc = compiler()
    if cc is None:
        _errors[source.stem] = "no C compiler (set CC, or install cc, gcc or clang)"
        return None
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        _errors[source.stem] = f"asking the C compiler {cc} for its version failed: {exc}"
        return None
    cpu = cpu_identity()
    folder = cache_dir("native")
    for flags in _flag_sets(cpu):
        key = hashlib.sha256(
            "\n".join(
                [source.read_text(), cc, version, *flags, platform.machine(), cpu or "portable"]
            ).encode()
        ).hexdigest()
        target = folder / f"{source.stem}-{key[:16]}.so"
        if _verified(target, key):
            return target, key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                built = Path(tmp) / target.name
                done = subprocess.run(
                    [cc, *flags, f'-D{_KEY_SYMBOL.upper()}="{key}"', "-o", str(built), str(source)],
                    capture_output=True,
                    timeout=60,
                )
                if done.returncode != 0 or not built.is_file():
                    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
                    message = [ln for ln in lines if "error" in ln][:3] or lines[-3:]
                    _errors[source.stem] = (
                        f"{cc} {' '.join(flags)} exited with {done.returncode}: "
                        + " | ".join(message)
                    )
                if done.returncode == 0 and built.is_file():
                    sidecar = Path(tmp) / f"{target.stem}.json"
                    sidecar.write_text(
                        json.dumps(
                            {
                                "key": key,
                                "sha256": hashlib.sha256(built.read_bytes()).hexdigest(),
                                "cpu": cpu,
                                "cc": cc,
                                "cc_version": version.splitlines()[0] if version else "",
                                "flags": flags,
                            }
                        )
                        + "\n"
                    )
                    # atomic each: a concurrent reader sees a whole file or none; one that sees the new library
                    # before its sidecar finds them disagree and builds its own, never loads a stranger's
                    os.replace(built, target)
                    os.replace(sidecar, target.with_suffix(".json"))
                    if _verified(target, key):
                        return target, key
        except (OSError, subprocess.SubprocessError) as exc:
            _errors[source.stem] = f"building with {cc} failed: {exc}"
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
    "minirocket": {
        "dlp_minirocket_ppv": [_P, _P, _I, _I, _I, _P, _I, _I, _I, _P],
        "dlp_minirocket_features": [_P, _P, _I, _I, _I, _P, _I, _P, _I, _I, _P, _P],
    },
}


def _open(path: Path, key: str, name: str) -> ctypes.CDLL | None:
    lib = ctypes.CDLL(str(path))
    # the key compiled into the library (a data symbol: reading it runs none of the library's code)
    embedded = (
        (ctypes.c_char * (len(key) + 1)).in_dll(lib, _KEY_SYMBOL).value.decode("ascii", "replace")
    )
    if (
        embedded != key
    ):  # the file changed between the check and the load: use torch's kernels, call nothing
        return None
    for fn, argtypes in _SIGNATURES[name].items():
        getattr(lib, fn).argtypes = argtypes
        getattr(lib, fn).restype = _I
    return lib


def _load(name: str) -> ctypes.CDLL | None:
    with _lock:
        if name not in _libs:
            lib = None
            if os.environ.get("DLPIPE_NATIVE", "1") != "0":
                built = _compile(_HERE / f"{name}.c")
                try:
                    lib = _open(*built, name) if built is not None else None
                except (
                    OSError,
                    AttributeError,
                    ValueError,
                ) as exc:  # not loadable, or a build without a function or the key
                    _errors[name] = f"the built library did not load: {exc}"
                    lib = None
            else:
                _errors[name] = "DLPIPE_NATIVE=0 turns the compiled kernels off"
            if lib is not None:
                _errors.pop(name, None)
            elif name not in _errors:
                _errors[name] = "the built library failed its build-key check"
            _libs[name] = lib
        return _libs[name]


def load_stem() -> ctypes.CDLL | None:
    """The fused conv + max-pool + ReLU kernels (stem.c), or None when they cannot be built here."""
    return _load("stem")


def load_lstm() -> ctypes.CDLL | None:
    """The LSTM layer kernels (lstm.c), or None when they cannot be built here."""
    return _load("lstm")


def load_minirocket() -> ctypes.CDLL | None:
    """MiniRocket's PPV pooling (minirocket.c), or None when it cannot be built here."""
    return _load("minirocket")
