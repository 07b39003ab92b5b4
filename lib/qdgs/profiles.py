"""Every chapter's parameters, declared once: names, types, per-profile values and help.

A chapter's notebook has a papermill ``parameters`` cell, one line per parameter written as
``name: type = None  # help``; :func:`parameters_cell` writes that text from the spec below and a
test checks that each notebook's cell is exactly it. The next cell calls :func:`chapter_parameters`,
which reads the values from the notebook's namespace, so no parameter name is written a third
time. A parameter left at ``None`` takes the profile's value.

A chapter that has no paper-scale version does not list ``paper`` among its profiles, and asking
for it is an error that says so: no profile silently runs as another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from qdgs.device import DEVICE_PATTERN
from qdgs.params import PROFILES, Param, ParameterError, by_profile, check_profile, resolve
from qdgs.prompts import (
    FACES_LEADING,
    FACES_PAPER,
    SHAPES_LEADING,
    SHAPES_PAPER,
    Prompts,
    check_archive_dims,
    check_objective_prompts,
    measure_prompts_check,
)
from qdgs.results import CHAPTERS, chapter

__all__ = ["ChapterSpec", "SPECS", "PAPER_BIASES", "spec", "spec_for_notebook", "chapter_parameters",
           "parameters_cell"]

#: The paper's colour biases of the shapes classifier's training sets (facts file).
PAPER_BIASES = (0.98, 0.95, 0.90, 0.85, 0.80)
FACE_GENERATORS = ("dcgan-skewed", "dcgan", "stylegan2")
SHAPE_GENERATORS = ("shapes-vae", "reference-vae")
FACE_SCORERS = ("offline-clip", "openai-clip")
#: Every chapter's device parameter (:func:`qdgs.device.resolve_device`).
DEVICE = Param("device", str, "auto", pattern=DEVICE_PATTERN,
               help="auto (CUDA when present) | cpu | cuda | cuda:N")


def prompt_params(paper: Prompts, leading: tuple[str, ...]) -> tuple[Param, Param]:
    """A chapter's ``objective_prompts`` and ``measure_prompts`` parameters, the paper's prompts as defaults."""
    objective, measures = paper.parameters()
    return (Param("objective_prompts", list, objective, validate=check_objective_prompts,
                  help="objective prompt pair: [positive, negative]"),
            Param("measure_prompts", list, measures, validate=measure_prompts_check(leading),
                  help=f"measures: [short name, first prompt, second prompt] each; the first named "
                       f"{', '.join(leading)}; archive_dims lists one cell count per measure"))


@dataclass(frozen=True)
class ChapterSpec:
    """The parameters of one chapter's notebook (:data:`qdgs.results.CHAPTERS`) and the profiles it has a version for."""

    chapter: str
    params: tuple[Param, ...]
    profiles: tuple[str, ...] = PROFILES
    missing_profile_hint: str = ""
    #: checks across parameters, run on the resolved values (each raises one ParameterError)
    checks: tuple[Callable[[SimpleNamespace], None], ...] = ()

    @property
    def notebook(self) -> str:
        """The chapter's notebook stem, e.g. ``01_shapes_debiasing``."""
        return chapter(self.chapter).stem

    def resolve(self, profile: str, **given: Any) -> SimpleNamespace:
        """Validate ``given`` and fill the values left at ``None`` from ``profile``."""
        check_profile(profile)
        if profile not in self.profiles:
            raise ParameterError(f"chapter '{self.chapter}' ({self.notebook}) has no '{profile}' version; "
                                 f"its profiles: {', '.join(self.profiles)}. {self.missing_profile_hint}".strip())
        values = resolve(list(self.params), profile, **given)
        for check in self.checks:
            check(values)
        return values


SHAPES = ChapterSpec("shapes", (
    DEVICE,
    Param("seed", int, 0, low=0, help="seeds model training, search and sampling"),
    Param("generator", str, by_profile("shapes-vae", "shapes-vae", "reference-vae"), choices=SHAPE_GENERATORS,
          help="shapes-vae (trained here) or reference-vae (the paper's own weights)"),
    Param("generator_bias", float, 0.95, low=0.5, high=1.0,
          help="colour bias of the shapes VAE's training renders (0.5 balanced); unused by reference-vae"),
    Param("reference_vae_path", str, "", help="path of the reference implementation's vae-shapes.pt, empty for the cache or a download"),
    Param("image_size", int, by_profile(64, 64, 128), choices=(32, 64, 128), help="side of generated images"),
    Param("vae_steps", int, by_profile(300, 6000, 6000), low=1, help="VAE training steps"),
    Param("scorer_steps", int, by_profile(60, 400, 2000), low=1, help="offline CLIP training steps"),
    Param("scorer_generated", float, by_profile(0.3, 0.3, 0.0), low=0.0, high=0.9,
          help="share of the scorer's training shapes that are VAE samples captioned by the decoder"),
    Param("iterations", int, by_profile(40, 1250, 70_000), low=1, help="QDGS iterations"),
    Param("emitters", int, by_profile(4, 4, 1), low=1,
          help="gradient arborescence emitters sharing the archive (the paper: 1); each iteration evaluates 4 latents per emitter"),
    *prompt_params(SHAPES_PAPER, SHAPES_LEADING),
    Param("archive_dims", list, by_profile([10, 10], [50, 50], [50, 50]), low=2,
          help="archive cells per measure, one per entry of measure_prompts (the paper's colour, shape)"),
    Param("ranges", str, "calibrated", choices=("calibrated", "paper"),
          help="archive ranges: quantiles of random samples, or the paper's ±0.1"),
    Param("range_quantile", float, 0.01, low=0.0, high=0.25, help="quantile of random samples bounding a calibrated range"),
    Param("latent_bound", float, 3.0, low=0.0, help="search latents are folded into the box [-bound, bound] before decoding; 0 means unbounded"),
    Param("label_gap", float, by_profile(0.01, 0.2, 0.2), low=0.0,
          help="shape-measure band dropped between triangle and square labels (the scorer spreads about 10x wider than CLIP)"),
    Param("shape_zero", str, "calibrated", choices=("calibrated", "zero"),
          help="zero point of the shape label rule: calibrated on renders, or the paper's 0"),
    Param("synthetic_size", int, 0, low=0,
          help="elites taken at random for the synthetic sets before labelling, 0 for every elite (the paper)"),
    Param("biases", list, by_profile([0.95], list(PAPER_BIASES), list(PAPER_BIASES)), low=0.5, high=1.0,
          help="colour biases of the pretraining sets"),
    Param("seeds", list, by_profile([0], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]), low=0, help="debiasing seeds"),
    Param("contrast_bias", float, 0.5, low=0.5, high=1.0,
          help="training colour bias of the contrast generator (0.5 balanced), searched with the same scorer"),
    Param("contrast_biases", list, by_profile([0.95], [0.95, 0.8], []), low=0.5, high=1.0,
          help="classifier biases of the contrast experiment, empty for none"),
    Param("contrast_seeds", list, by_profile([0], [0, 1, 2], [0, 1, 2]), low=0, help="seeds of the contrast experiment"),
    Param("classifier_size", int, by_profile(32, 32, 128), choices=(32, 64, 128), help="classifier input side"),
    Param("pretrain_epochs", int, by_profile(2, 20, 20), low=1, help="epochs on the 1,000 biased images"),
    Param("finetune_epochs", int, by_profile(2, 30, 30), low=1, help="epochs on each synthetic set"),
    Param("n_test", int, by_profile(400, 2000, 5000), low=4, help="balanced test images"),
    Param("oracle_images", int, by_profile(1000, 4000, 4000), low=4, help="balanced renders the oracle learns from"),
    Param("oracle_epochs", int, by_profile(16, 20, 20), low=1, help="epochs of the audit's oracle shape classifier"),
), checks=(check_archive_dims,))

FACES = ChapterSpec("faces", (
    DEVICE,
    Param("generator", str, by_profile("dcgan-skewed", "dcgan-skewed", "stylegan2"), choices=FACE_GENERATORS,
          help="face generator backend"),
    Param("scorer", str, by_profile("offline-clip", "offline-clip", "openai-clip"), choices=FACE_SCORERS,
          help="prompt scorer backend"),
    Param("scorer_steps", int, by_profile(15, 300, 1200), low=1, help="training steps of the offline scorer"),
    Param("audit_steps", int, by_profile(10, 400, 1500), low=1, help="training steps of the audit classifier"),
    Param("calibration_samples", int, by_profile(128, 1024, 4096), low=16, help="random faces used to calibrate the measures"),
    Param("iterations", int, by_profile(40, 1000, 60_000), low=1, help="QDGS search iterations (each emitter asks 4 latents)"),
    *prompt_params(FACES_PAPER, FACES_LEADING),
    Param("archive_dims", list, by_profile([5, 5, 2, 5], [10, 10, 3, 10], [50, 25, 5, 25]), low=1,
          help="archive cells per measure, one per entry of measure_prompts (the paper's skin, gender, hair, age)"),
    Param("emitters", int, by_profile(4, 4, 1), low=1,
          help="gradient arborescence emitters sharing the archive (the paper: 1)"),
    Param("latent_bound", float, by_profile(2.0, 2.0, 0.0), low=0.0,
          help="search latents are folded into the box [-bound, bound] before decoding; 0 means unbounded (the paper)"),
    Param("claim_seeds", list, by_profile([0], [0, 1, 2, 3, 4], [0]), low=0,
          help="search seeds the dark-skin claim is resolved over (each a cached search)"),
    Param("contrast_generator", str, by_profile("dcgan", "dcgan", ""), choices=("", *FACE_GENERATORS),
          help="a second generator searched and audited the same way (dcgan: the balanced DigiFace one), empty for none"),
    Param("contrast_seeds", list, by_profile([0], [0], [0]), low=0, help="search seeds of the contrast generator"),
    Param("ranges", str, by_profile("calibrated", "calibrated", "paper"), choices=("calibrated", "paper"),
          help="archive ranges: calibrated on random samples, or the paper's ±0.1"),
    Param("bins", str, by_profile("calibrated", "calibrated", "paper"), choices=("calibrated", "paper"),
          help="dataset skin × gender bins: calibrated, or the paper's ±0.03"),
    Param("range_scale", float, 2.0, low=0.1, help="calibrated archive range: centre ± range_scale · spread"),
    Param("dataset_latents", int, by_profile(24, 0, 0), low=0, help="latents written per dataset, 0 for every elite"),
    Param("augmentations", int, 9, low=1, help="images per latent (fixed latent offsets)"),
    Param("augmentation_scale", float, 0.3, low=0.0, help="std of the fixed latent offsets"),
    Param("align", bool, True, help="MTCNN-align dataset faces to 112 × 112"),
    Param("stylegan2_path", str, "", help="path of NVIDIA's stylegan2-ffhq-256x256.pkl, empty for the cache or a download"),
    Param("clip_weights", str, "openai", help="OpenAI CLIP weights: 'openai', a checkpoint file, or an open_clip model directory"),
    Param("seed", int, 0, low=0, help="seeds training, search and sampling"),
), checks=(check_archive_dims,))

RECOGNITION = ChapterSpec("recognition", (
    DEVICE,
    Param("workers", int, by_profile(0, 0, 8), low=0,
          help="DataLoader processes preparing training batches (0 in the notebook's own); the batches "
               "do not depend on it"),
    Param("qd_dir", str, "", help="QD dataset directory, empty for the one notebook 02 recorded"),
    Param("rand_dir", str, "", help="Rand dataset directory, empty for the one notebook 02 recorded"),
    Param("real_dir", str, "", help="optional real identity set (image folder or InsightFace train.rec) "
                                    "for the second training stage, empty for none"),
    Param("depth", int, by_profile(18, 18, 101), choices=(18, 50, 101), help="IR-ResNet depth"),
    Param("width", int, by_profile(16, 32, 64), low=4, help="channels of the first stage (paper 64)"),
    Param("input_size", int, by_profile(64, 64, 112), choices=(64, 112), help="face side in pixels"),
    Param("stem_stride", int, by_profile(2, 2, 1), choices=(1, 2), help="stride of the first convolution (paper 1)"),
    Param("head", str, "adaface", choices=("adaface", "arcface", "cosface"), help="margin head"),
    Param("scale", float, 64.0, low=1.0, help="logit scale s (AdaFace paper: 64)"),
    Param("margin", float, 0.4, low=0.0, high=1.0, help="margin m (AdaFace paper: 0.4)"),
    Param("epochs", int, by_profile(1, 2, 26), low=1, help="pretraining epochs"),
    Param("real_epochs", int, by_profile(1, 2, 26), low=1, help="epochs of the real stage"),
    Param("batch_size", int, by_profile(32, 64, 64), low=2, help="faces per step"),
    Param("lr", float, 0.01, low=0.0, help="peak learning rate"),
    Param("schedule", str, "paper", choices=("cosine", "paper"),
          help="paper: ÷10 at 12/20/24 of 26 epochs (scaled); cosine: warm-up + cosine"),
    Param("warmup_epochs", float, 0.0, low=0.0, help="learning-rate warm-up, in epochs"),
    Param("margin_warmup_epochs", float, 0.0, low=0.0, help="margin warm-up (ramp from 0), in epochs"),
    Param("augment_p", float, 0.2, low=0.0, high=1.0,
          help="probability of each augmentation (low resolution, crop, photometric)"),
    Param("seeds", int, by_profile(1, 3, 3), low=1, help="training seeds per dataset"),
    Param("lfw_crop", int, 130, low=64, high=250, help="central crop of the 250 px deep-funneled LFW images"),
    Param("center", bool, by_profile(True, True, False),
          help="mean-centre embeddings (fold-respecting) before cosine; off for the paper's protocol"),
))

PERFORMANCE = ChapterSpec("performance", (
    DEVICE,
    Param("rounds", int, by_profile(3, 15, 30), low=1, help="timed calls per Jacobian method, interleaved"),
    Param("breakdown_iterations", int, by_profile(5, 40, 100), low=1, help="search iterations timed part by part"),
    Param("run_faults", bool, True, help="run the fault matrix"),
))

TOUR = ChapterSpec("tour", (
    DEVICE,
    Param("iterations", int, by_profile(100, 400, 400), low=1, help="QDGS iterations"),
    Param("archive_cells", int, 15, low=2, high=100, help="archive cells per measure"),
    Param("seed", int, 0, low=0, help="seeds the search and the random samples"),
), profiles=("smoke", "default"),
    missing_profile_hint="The tour is a classroom-sized walk through Algorithm 1; the paper-scale shapes "
                         "search is chapter 01 on the paper profile.")

#: Every chapter's spec by chapter name.
SPECS: dict[str, ChapterSpec] = {s.chapter: s for s in (TOUR, SHAPES, FACES, RECOGNITION, PERFORMANCE)}


def spec(chapter: str) -> ChapterSpec:
    """The spec of ``chapter`` (a name of :data:`SPECS`), or an error listing the chapters."""
    if chapter not in SPECS:
        raise ParameterError(f"unknown chapter '{chapter}'; chapters: {', '.join(SPECS)}")
    return SPECS[chapter]


def spec_for_notebook(stem: str) -> ChapterSpec | None:
    """The spec of the notebook named ``stem`` (e.g. ``01_shapes_debiasing``), None if it has none."""
    return next((SPECS[c.name] for c in CHAPTERS if c.stem == stem), None)


def chapter_parameters(chapter: str, namespace: Mapping[str, Any]) -> SimpleNamespace:
    """Resolve a chapter's parameters from a notebook's namespace (its ``globals()``).

    The parameters cell defined ``profile`` and one variable per spec parameter; papermill's
    injected cell may have overridden some. Reading them by the spec's names means the notebook
    never lists them again.
    """
    s = spec(chapter)
    missing = [p.name for p in s.params if p.name not in namespace] + ([] if "profile" in namespace else ["profile"])
    if missing:
        raise ParameterError(f"notebook {s.notebook} does not define {', '.join(missing)}: its parameters cell "
                             f"must be qdgs.profiles.parameters_cell('{chapter}')")
    return s.resolve(namespace["profile"], **{p.name: namespace[p.name] for p in s.params})


def parameters_cell(chapter: str) -> str:
    """The text of a chapter's papermill ``parameters`` cell, written from its spec."""
    s = spec(chapter)
    lines = [f'profile: str = "default"  # {" | ".join(s.profiles)}']
    lines += [f"{p.name}: {p.type.__name__} = None  # {p.help}" for p in s.params]  # papermill: no '=' in help
    return "\n".join(lines)
