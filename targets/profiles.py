"""Device target profiles: what a deployment target can do, read from one TOML file each.

A profile is the single place where a device's numbers live: the software stack
(JetPack, TensorRT, Python), peak throughput of each engine (GPU, DLA or CPU),
memory size and bandwidth, power modes, and how edge-snn builds for it by
default. The checker (:mod:`edge_snn.targets.check`) reads the TensorRT version
from here; the roofline (:mod:`edge_snn.targets.estimate`) reads the peaks.

Units (the TOML keys carry them):

- ``int8_dense_tops``: 10^12 INT8 operations/s without 2:4 sparsity; one
  multiply-accumulate counts as 2 operations (NVIDIA's convention).
- ``fp16_dense_tflops`` / ``fp32_tflops``: 10^12 floating-point operations/s.
- ``memory.bytes``: bytes; ``memory.bandwidth_gbps``: GB/s = 10^9 **bytes**/s.
- ``power_modes[].watts``: module power budget of that nvpmodel mode.

Peaks are for the fastest power mode. Numbers we could not confirm from a
primary source are marked ``# unconfirmed`` in the TOML next to the value.

Profiles ship in ``targets/profiles/<name>.toml``; :func:`load_target` also
accepts the path of a user TOML with the same fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

from edge_snn.errors import UserError
from edge_snn.targets.tables import version_key

KINDS = ("jetson", "cpu", "cuda")
BACKENDS = ("tensorrt", "onnxruntime")
PRECISIONS = ("int8", "fp16", "fp32")
ENGINES = ("gpu", "dla", "cpu")

_TOP_LEVEL = {
    "name", "description", "kind", "jetpack", "tensorrt", "python", "sources",
    "gpu", "cpu", "dla", "memory", "power_modes", "defaults",
}


@dataclass(frozen=True)
class Peak:
    """Dense peak throughput of one engine, in operations per second x 10^12."""

    int8_dense_tops: float
    fp16_dense_tflops: float
    fp32_tflops: float

    def ops_per_s(self, precision: str) -> float:
        """Peak operations/s at ``precision`` ("int8", "fp16" or "fp32")."""
        tera = {"int8": self.int8_dense_tops, "fp16": self.fp16_dense_tflops, "fp32": self.fp32_tflops}
        return tera[precision] * 1e12


@dataclass(frozen=True)
class Dla:
    """Deep Learning Accelerator cores (NVDLA); ``cores == 0`` means none.

    Throughput is per core: a TensorRT engine built with ``--useDLACore=N``
    uses exactly one core. DLA has no FP32 (TensorRT runs DLA in FP16 or INT8).
    ``fp16_dense_tflops_per_core`` is None where NVIDIA publishes no DLA FP16
    rate (Orin: its DLA traded FP16 convolution rate for 9x INT8 over Xavier,
    DLA-SW FAQ, so FP16 is *not* INT8 / 2).
    """

    cores: int
    int8_dense_tops_per_core: float = 0.0
    fp16_dense_tflops_per_core: float | None = None

    def ops_per_s(self, precision: str) -> float:
        """Peak operations/s of one core at ``precision``; 0 for FP32; UserError for an unpublished FP16 rate."""
        if precision == "fp16" and self.fp16_dense_tflops_per_core is None:
            raise UserError("NVIDIA publishes no DLA FP16 peak for this target (Orin's DLA trades FP16 rate for "
                            "INT8, so it is not half the INT8 rate): estimate --precision int8, or put a measured "
                            "fp16_dense_tflops_per_core in your own profile")
        tera = {"int8": self.int8_dense_tops_per_core, "fp16": self.fp16_dense_tflops_per_core, "fp32": 0.0}
        return tera[precision] * 1e12


@dataclass(frozen=True)
class Memory:
    """Memory shared by all engines (unified on Jetson): size and peak bandwidth."""

    bytes: int
    bandwidth_gbps: float  # GB/s, 10^9 bytes per second

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gbps * 1e9


@dataclass(frozen=True)
class PowerMode:
    """One nvpmodel mode (``sudo nvpmodel -m <id>``) and its power budget."""

    id: int
    name: str
    watts: float


@dataclass(frozen=True)
class Defaults:
    """How edge-snn builds for the target unless told otherwise."""

    backend: str
    precision: str
    build_flags: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """One deployment target, as read from its profile TOML."""

    name: str
    description: str
    kind: str
    python: str
    memory: Memory
    defaults: Defaults
    power_modes: tuple[PowerMode, ...] = ()
    jetpack: str | None = None
    tensorrt: str | None = None
    gpu: Peak | None = None
    cpu: Peak | None = None
    dla: Dla = Dla(cores=0)
    sources: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def main_engine(self) -> str:
        """The engine a plain build runs on: "gpu" for jetson/cuda, "cpu" for cpu targets."""
        return "cpu" if self.kind == "cpu" else "gpu"

    def peak_ops_per_s(self, engine: str, precision: str) -> float:
        """Peak operations/s of ``engine`` at ``precision``; UserError if the target lacks it."""
        if engine not in ENGINES:
            raise UserError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if engine == "dla":
            if self.dla.cores == 0:
                raise UserError(f"target {self.name} has no DLA cores: estimate for the GPU instead")
            if precision == "fp32":
                raise UserError("DLA runs FP16 or INT8 only: use --precision fp16 or --precision int8")
            return self.dla.ops_per_s(precision)
        peak = self.gpu if engine == "gpu" else self.cpu
        if peak is None:
            raise UserError(f"target {self.name} has no {engine.upper()} numbers in {self.path}: "
                            f"use engine {self.main_engine!r}")
        return peak.ops_per_s(precision)


def profiles_dir() -> Path:
    """Folder of the profiles shipped with edge-snn."""
    return Path(str(resources.files("edge_snn.targets") / "profiles"))


def list_targets() -> list[Target]:
    """Every shipped profile, sorted by name."""
    return [_load_file(p) for p in sorted(profiles_dir().glob("*.toml"))]


def load_target(name_or_path: str | Path) -> Target:
    """A shipped profile by name (``"orin-nx-16gb"``) or a user TOML by path.

    Anything ending in ``.toml`` or naming an existing file is read as a path;
    otherwise the name must be one of the shipped profiles.
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith(".toml") or candidate.is_file():
        if not candidate.is_file():
            raise UserError(f"target file {candidate} does not exist: give a shipped profile name "
                            f"({', '.join(_known_names())}) or the path of a profile TOML")
        return _load_file(candidate)
    shipped = profiles_dir() / f"{text}.toml"
    if not shipped.is_file():
        raise UserError(f"unknown target {text!r}: known targets are {', '.join(_known_names())} "
                        "(or pass the path of your own profile .toml)")
    return _load_file(shipped)


def _known_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def _load_file(path: Path) -> Target:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"target file {path} is not valid TOML ({exc}): fix the syntax") from None
    except OSError as exc:
        raise UserError(f"cannot read target file {path}: {exc.strerror}") from None
    return _parse(raw, _Fields(path))


class _Fields:
    """Typed access to the raw TOML that names the file and field in every error."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, field: str, problem: str) -> UserError:
        return UserError(f"target file {self.path}: field '{field}' {problem}")

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], *, prefix: str = "",
            required: bool = True, default: Any = None) -> Any:
        field = f"{prefix}{key}"
        if key not in table:
            if required:
                raise self.fail(field, "is missing: add it (see docs/targets.md for the schema)")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML integers are fine where a float is asked for; booleans never are.
        if isinstance(value, bool) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(field, f"must be {names}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(field, f"must be finite, got {value!r}")
        return value

    def number(self, table: dict[str, Any], key: str, *, prefix: str, minimum: float = 0.0) -> float:
        value = float(self.get(table, key, (int, float), prefix=prefix))
        if value < minimum:
            raise self.fail(f"{prefix}{key}", f"must be >= {minimum:g}, got {value:g}")
        return value

    def choice(self, table: dict[str, Any], key: str, choices: tuple[str, ...], *, prefix: str = "") -> str:
        value = self.get(table, key, str, prefix=prefix)
        if value not in choices:
            raise self.fail(f"{prefix}{key}", f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def table(self, raw: dict[str, Any], key: str, *, required: bool) -> dict[str, Any] | None:
        return self.get(raw, key, dict, required=required)

    def strings(self, table: dict[str, Any], key: str, *, prefix: str) -> tuple[str, ...]:
        values = self.get(table, key, list, prefix=prefix, required=False, default=[])
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{prefix}{key}", "must be a list of strings")
        return tuple(values)


def _parse(raw: dict[str, Any], f: _Fields) -> Target:
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise f.fail(unknown[0], f"is not a profile field: known fields are {', '.join(sorted(_TOP_LEVEL))}")
    kind = f.choice(raw, "kind", KINDS)
    gpu = _peak(raw, "gpu", f, required=kind != "cpu")
    cpu = _peak(raw, "cpu", f, required=kind == "cpu")
    dla = _dla(f.table(raw, "dla", required=False), f)
    if dla.cores and kind != "jetson":
        raise f.fail("dla.cores", f"must be 0 for a {kind} target (DLA exists on Jetson only)")
    mem_t = f.table(raw, "memory", required=True)
    memory = Memory(bytes=int(f.number(mem_t, "bytes", prefix="memory.", minimum=1)),
                    bandwidth_gbps=f.number(mem_t, "bandwidth_gbps", prefix="memory.", minimum=1e-9))
    modes = []
    for i, m in enumerate(f.get(raw, "power_modes", list, required=False, default=[])):
        prefix = f"power_modes[{i}]."
        if not isinstance(m, dict):
            raise f.fail(f"power_modes[{i}]", "must be a table with id, name and watts")
        modes.append(PowerMode(id=int(f.get(m, "id", int, prefix=prefix)), name=f.get(m, "name", str, prefix=prefix),
                               watts=f.number(m, "watts", prefix=prefix, minimum=1e-9)))
    d = f.table(raw, "defaults", required=True)
    defaults = Defaults(backend=f.choice(d, "backend", BACKENDS, prefix="defaults."),
                        precision=f.choice(d, "precision", PRECISIONS, prefix="defaults."),
                        build_flags=f.strings(d, "build_flags", prefix="defaults."),
                        providers=f.strings(d, "providers", prefix="defaults."))
    tensorrt = f.get(raw, "tensorrt", str, required=False)
    if tensorrt is not None:
        try:
            version_key(tensorrt)
        except ValueError:
            raise f.fail("tensorrt", f"must be a version like \"10.3\", got {tensorrt!r}") from None
    if defaults.backend == "tensorrt" and tensorrt is None:
        raise f.fail("tensorrt", "is missing: a target whose defaults.backend is 'tensorrt' must name its "
                     "TensorRT version (e.g. tensorrt = \"10.3\")")
    return Target(
        name=f.get(raw, "name", str), description=f.get(raw, "description", str), kind=kind,
        python=f.get(raw, "python", str), jetpack=f.get(raw, "jetpack", str, required=False),
        tensorrt=tensorrt, gpu=gpu, cpu=cpu, dla=dla, memory=memory, power_modes=tuple(modes),
        defaults=defaults, sources=f.strings(raw, "sources", prefix=""), path=f.path,
    )


def _peak(raw: dict[str, Any], key: str, f: _Fields, *, required: bool) -> Peak | None:
    t = f.table(raw, key, required=required)
    if t is None:
        return None
    p = f"{key}."
    return Peak(int8_dense_tops=f.number(t, "int8_dense_tops", prefix=p),
                fp16_dense_tflops=f.number(t, "fp16_dense_tflops", prefix=p),
                fp32_tflops=f.number(t, "fp32_tflops", prefix=p))


def _dla(t: dict[str, Any] | None, f: _Fields) -> Dla:
    if t is None:
        return Dla(cores=0)
    cores = f.get(t, "cores", int, prefix="dla.")
    if cores < 0:
        raise f.fail("dla.cores", f"must be >= 0, got {cores}")
    if cores == 0:
        return Dla(cores=0)
    fp16 = f.number(t, "fp16_dense_tflops_per_core", prefix="dla.") if "fp16_dense_tflops_per_core" in t else None
    return Dla(cores=cores,
               int8_dense_tops_per_core=f.number(t, "int8_dense_tops_per_core", prefix="dla."),
               fp16_dense_tflops_per_core=fp16)
