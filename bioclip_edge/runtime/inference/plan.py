"""What runs where, decided once: the inference request a user makes and the plan made from it.

Why a plan: the choice "which graph on which backend, and why" is made in one place
(``selection.make_plan``), so the embedder, the text encoder, export's checks and every
benchmark run what the same request would run; one factory (``session.open_session``) builds the
session from the plan, hash checks included. A plan is plain data: it goes into outputs and, as
``to_dict()`` JSON, to another process, which rebuilds the same session from it.

Precision vocabulary (one meaning per word):

* **variant precision** (``VARIANT_PRECISIONS``): how a graph in the bundle stores its weights
  and which graph it is: ``fp32``, ``fp16``, ``int8`` (onnxruntime dynamic), ``int8-static``
  (QDQ), ``int8-nncf`` (NNCF QDQ for OpenVINO). ``export --precision`` writes the first three;
  ``int8-nncf`` comes with int8 when nncf is installed (calibrated on ``--calibration``'s images,
  else on built-in sample photos), ``int8-static`` only with ``--calibration``. The runtime's ``--precision`` takes these or ``auto``
  (``PRECISION_CHOICES``).
* **compute** (``InferencePlan.compute``, ``COMPUTE_KINDS``): what the arithmetic runs in once the
  backend has the graph: ``fp32``, ``bf16`` (OpenVINO's default precision on AMX / AVX-512 BF16
  CPUs, for whatever a graph leaves in float), ``int8`` (onnxruntime's int8 kernels), ``int8-ov``
  (OpenVINO's int8 kernels). Profiling holds each target to the matmul peak of its compute.
* **profiling's target labels** (``profile bench --precision``) are variant precisions plus
  ``bf16``, which is not a graph: ``bf16`` = the ``fp32`` variant on backend ``openvino``
  (``PROFILE_ALIASES``). On ``openvino``, profiling's ``fp32``/``fp16`` run exact (``openvino-f32``)
  and its ``int8`` takes the bundle's OpenVINO int8 graph (int8-nncf, else int8-static, else int8).

Backends (``BACKEND_CHOICES``): ``onnxruntime``; ``openvino`` (OpenVINO's default precision hint);
``openvino-f32`` (hint f32: exact); ``auto`` (resolved by ``make_plan``, never left in a plan).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

VARIANT_PRECISIONS = ("fp32", "fp16", "int8", "int8-static", "int8-nncf")
PRECISION_CHOICES = ("auto", *VARIANT_PRECISIONS)  # the runtime's --precision
BACKEND_CHOICES = ("auto", "onnxruntime", "openvino", "openvino-f32")  # the runtime's --backend
COMPUTE_KINDS = ("fp32", "bf16", "int8", "int8-ov")
PROFILE_ALIASES = {"bf16": ("fp32", "openvino")}  # profiling label -> (variant precision, backend)


@dataclass(frozen=True)
class SessionOptions:
    """The inference request a user makes (``--backend``, ``--providers``, ``--model-threads``)."""

    providers: tuple[str, ...] = ("cpu",)
    model_threads: int | None = None  # intra-op threads; None: the backend's default (all physical cores)
    inter_op_threads: int | None = 1
    optimization: str = "all"  # disable | basic | extended | all
    backend: str = "onnxruntime"  # onnxruntime | openvino | openvino-f32 | auto
    memory_pattern: bool = False  # onnxruntime's memory pattern: see InferencePlan.memory_pattern


@dataclass(frozen=True)
class InferencePlan:
    """Which graph runs on which backend, how, and why: everything ``open_session`` needs."""

    tower: str  # vision | text
    variant: str  # manifest name (vision.int8-nncf); "" for a graph outside a bundle
    file: str  # the graph, relative to the bundle folder (absolute for a graph outside one)
    sha256: str | None  # what ``file`` must hash to; None only for graphs made in this run
    precision: str  # variant precision (see the module docstring)
    backend: str  # onnxruntime | openvino | openvino-f32 (never auto)
    compute: str  # fp32 | bf16 | int8 | int8-ov: what the arithmetic runs in
    reason: str = ""  # one line for people, printed and written into outputs
    providers: tuple[str, ...] = ("cpu",)  # onnxruntime execution providers, in order
    model_threads: int | None = None  # intra-op threads (None: all cores)
    inter_op_threads: int | None = 1
    optimization: str = "all"  # onnxruntime graph optimisation level
    static_shape: tuple[int, ...] | None = None  # OpenVINO: compile for this one input shape
    input_name: str | None = None  # the graph's input, when the manifest names it
    # onnxruntime's memory pattern pre-plans one arena block per input shape: on ViT-B/16 dynamic
    # int8 it held ~31 MB per image of a batch instead of ~18 MB, at no measured speed gain. Off
    # by default (runtime.inference.memory); on for a benchmark that wants the old behaviour.
    memory_pattern: bool = False

    @property
    def quantized(self) -> bool:
        return self.compute.startswith("int8")

    @property
    def precision_hint(self) -> str | None:
        """OpenVINO's INFERENCE_PRECISION_HINT (None: its default, bf16 where the CPU has it)."""
        return "f32" if self.backend == "openvino-f32" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists; ``from_dict`` turns them back."""
        out = asdict(self)
        out["providers"] = list(self.providers)
        out["static_shape"] = None if self.static_shape is None else list(self.static_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InferencePlan":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["providers"] = tuple(values.get("providers") or ("cpu",))
        if values.get("static_shape") is not None:
            values["static_shape"] = tuple(int(x) for x in values["static_shape"])
        return cls(**values)
