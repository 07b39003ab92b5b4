"""The device parameter, and the library honouring it: models on the device, Jacobian and precision by measuring."""

import numpy as np
import pytest
import torch

from qdgs import scoring as scoring_module
from qdgs.device import resolve_device
from qdgs.generators.stylegan2 import StyleGAN2Config
from qdgs.params import ParameterError
from qdgs.profiles import SPECS
from qdgs.scoring import (JACOBIAN_METHODS, PromptScoring, bf16_error, bf16_within_tolerance,
                          fastest_jacobian_method)
from toys import ToyGenerator, ToyScorer

TINY_STYLEGAN2 = StyleGAN2Config(z_dim=16, w_dim=16, mapping_layers=2, channels=((4, 8), (8, 8), (16, 4)))


def test_auto_is_cuda_exactly_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_says_what_to_do():
    with pytest.raises(RuntimeError, match="no CUDA device.*device=cpu"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("chapter", sorted(SPECS))
def test_every_chapter_has_a_checked_device_parameter(chapter):
    s = SPECS[chapter]
    assert s.resolve("smoke").device == "auto"
    assert s.resolve("smoke", device="cuda:1").device == "cuda:1"
    with pytest.raises(ParameterError, match="device"):
        s.resolve("smoke", device="gpu")


# --- every model lands on the device it is given --------------------------------------------------
# A CPU-only machine cannot run CUDA, but the meta device (shapes, no data) shows that each loader
# honours the device it is given rather than keeping or assuming the CPU.
META = torch.device("meta")


def _devices(module):
    return {t.device for t in (*module.parameters(), *module.buffers())}


def test_generators_load_onto_the_device_passed(monkeypatch):
    from qdgs import generators
    from qdgs.generators import stylegan2

    assert _devices(generators.load_generator("dcgan", pretrained=False, device=META)) == {META}
    monkeypatch.setattr(stylegan2, "weights_path", lambda path, sha256=None: path)
    monkeypatch.setattr(stylegan2.StyleGAN2, "from_pickle", classmethod(lambda cls, path: cls(TINY_STYLEGAN2)))
    assert _devices(generators.load_generator("stylegan2", path="unused.pkl", n_stats=64, device=META)) == {META}


def test_offline_scorer_loads_onto_the_device_passed(tmp_path):
    from qdgs.scorers import load_scorer
    from qdgs.scorers.offline_clip import make_clip, save_clip

    save_clip(make_clip("shapes_clip"), tmp_path / "clip.pt", "shapes_clip", ["A red shape."])
    assert _devices(load_scorer("offline-clip", path=tmp_path / "clip.pt", device=META)) == {META}


def test_prompt_scoring_moves_both_models_and_the_prompts_to_its_device():
    scoring = _scoring(device=META)
    assert scoring.device == META and scoring.text.device == META
    assert _devices(scoring.generator) == {META} and _devices(scoring.scorer) == {META}
    assert _scoring().device == torch.device("cpu")  # no device: the generator's


def test_face_aligner_detects_on_the_device_passed():
    from qdgs.faces.align import FaceAligner

    assert FaceAligner(device=META).mtcnn.device == META


# --- trainers: same bits on the CPU as before, and the device never enters a cache key -----------
def test_attribute_net_on_the_cpu_is_the_same_net_as_without_a_device(tmp_path, monkeypatch):
    from fake_utkface import fake_faces, use_fake_utkface
    from qdgs.faces import audit

    use_fake_utkface(monkeypatch, tmp_path, fake_faces(n=200, size=32))
    nets = []
    for run, kwargs in enumerate(({}, {"device": "cpu"})):
        monkeypatch.setenv("QDGS_CACHE", str(tmp_path / f"cache{run}"))  # a cold build each time
        nets.append(audit.train_attribute_net(steps=2, batch_size=8, size=32, progress_bar=False, **kwargs)[0])
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))


class _KeySeen(Exception):
    pass


@pytest.mark.parametrize("train", ["attribute-net", "offline-scorer"])
def test_device_never_enters_a_trainers_cache_key(train, monkeypatch):
    from qdgs.faces import audit, scorer

    keys = []

    def artifact(kind, key, build):
        keys.append(key)
        raise _KeySeen

    for module in (audit, scorer):
        monkeypatch.setattr(module, "artifact", artifact)
        monkeypatch.setattr(module, "utkface_fingerprint", lambda: "fake")
    for device in ("cpu", META):
        with pytest.raises(_KeySeen):
            if train == "attribute-net":
                audit.train_attribute_net(steps=2, device=device)
            else:
                scorer.train_offline_scorer(steps=2, device=device)
    assert keys[0] == keys[1] and "device" not in keys[0]


# --- jacobian_method="auto": chosen by timing, on a fake clock ------------------------------------
def _scoring(**kwargs):
    return PromptScoring(ToyGenerator(), ToyScorer(), ("good", "bad"), [("a", "b"), ("c", "d")], **kwargs)


def _priced(scoring, cost_ms, calls=None):
    """Make each ``scoring.jacobian`` call by a method cost ``cost_ms[method]`` on a fake clock."""
    now = [0.0]
    jacobian = scoring.jacobian

    def priced(latents, method, precision=None):
        now[0] += cost_ms[method] / 1000
        if calls is not None:
            calls.append(method)
        return jacobian(latents, method, precision)

    scoring.jacobian = priced
    return lambda: now[0]


def test_auto_picks_the_fastest_method_on_the_device():
    scoring = _scoring()
    clock = _priced(scoring, {"batched": 50, "retain": 80, "replicate": 20, "reference": 100})
    choice = fastest_jacobian_method(scoring, clock=clock)
    assert choice.method == "replicate"
    assert choice.ms == pytest.approx({"batched": 50, "retain": 80, "replicate": 20, "reference": 100})
    assert choice.device == "cpu" and choice.batch == 1 and "replicate 20.0 ms" in str(choice)


def test_auto_keeps_batched_unless_another_method_clearly_wins():
    scoring = _scoring()
    clock = _priced(scoring, {"batched": 105, "retain": 100, "replicate": 300, "reference": 300})
    assert fastest_jacobian_method(scoring, clock=clock).method == "batched"  # 5 % is noise
    clock = _priced(scoring, {"batched": 120, "retain": 100, "replicate": 300, "reference": 300})
    assert fastest_jacobian_method(scoring, clock=clock).method == "retain"


def test_auto_leaves_out_a_method_that_cannot_run(monkeypatch):
    scoring = _scoring()

    def no_batching(*args, **kwargs):
        raise RuntimeError("Batching rule not implemented for aten::something")

    monkeypatch.setattr(scoring_module, "_batched_backward", no_batching)
    choice = fastest_jacobian_method(scoring, clock=_priced(scoring, dict.fromkeys(JACOBIAN_METHODS, 10)))
    assert choice.failed == ("batched",) and "batched" not in choice.ms and choice.method in ("retain", "replicate", "reference")


def test_auto_measures_once_per_models_and_batch_and_gives_the_same_jacobian():
    scoring = _scoring(jacobian_method="auto")
    calls = []
    _priced(scoring, {"batched": 50, "retain": 80, "replicate": 20, "reference": 100}, calls)
    z = np.full((1, 6), 0.3)
    jac = scoring.evaluate(z, jacobian=True).jacobian
    measured = len(calls)
    assert measured == 4 * (1 + 5)  # one untimed call per method, then five rounds
    np.testing.assert_allclose(scoring.evaluate(z, jacobian=True).jacobian, jac)
    assert len(calls) == measured  # remembered
    np.testing.assert_allclose(jac, scoring.jacobian(z, "reference"), rtol=1e-5, atol=1e-6)
    twin = PromptScoring(scoring.generator, scoring.scorer, ("good", "bad"), [("a", "b"), ("c", "d")],
                         jacobian_method="auto")
    assert twin.jacobian_choice() is scoring.jacobian_choice()  # the same models: measured once per process
    assert _scoring(jacobian_method="auto").jacobian_choice(batch=2).batch == 2  # other models, other batch


def test_auto_is_not_in_any_method_list_a_benchmark_times():
    assert "auto" not in JACOBIAN_METHODS
    with pytest.raises(ValueError, match="jacobian_method must be one of"):
        _scoring(jacobian_method="fastest")


# --- bf16 autocast --------------------------------------------------------------------------------
def test_bf16_error_is_the_worst_rows_relative_error(monkeypatch):
    scoring = _scoring()
    fp32_jac = torch.tensor([[[100.0, -50.0], [1.0, 0.5], [2.0, 0.0]]])  # objective row far larger
    bf16_jac = fp32_jac + torch.tensor([[[1.0, 0.0], [0.0, 0.1], [0.0, 0.0]]])
    values = {"fp32": torch.tensor([[50.0, 0.01, -0.02]]), "bf16": torch.tensor([[50.5, 0.0105, -0.0203]])}
    jacs = {"fp32": fp32_jac, "bf16": bf16_jac}
    monkeypatch.setattr(scoring, "_with_jacobian",
                        lambda z, method, precision: (values[precision], None, None, jacs[precision]))
    error = bf16_error(scoring, np.zeros((1, 2)))
    assert error["jacobian_rel"] == pytest.approx(0.1 / 1.0)  # the first measure's row, not 1 / 100
    assert error["measures_abs"] == pytest.approx(5e-4, rel=1e-3)
    assert error["objective_abs"] == pytest.approx(0.5)
    assert bf16_within_tolerance(error) is False  # 10 % is far above the 1 % tolerance


def test_bf16_autocast_runs_and_stays_near_fp32_on_the_toy_models():
    scoring = _scoring()
    z = ToyGenerator().sample_latents(3, seed=1).numpy()
    error = bf16_error(scoring, z)
    assert 0 < error["jacobian_rel"] < 0.05  # bf16 keeps 8 mantissa bits: about 0.4 % per rounding
    same = bf16_error(_scoring(precision="bf16"), z)
    assert same == error  # the check compares the two precisions, whatever the scoring's own
    fp32, bf16 = _scoring().evaluate(z), _scoring(precision="bf16").evaluate(z)
    assert not np.array_equal(fp32.measures, bf16.measures)  # autocast really ran
    np.testing.assert_allclose(bf16.measures, fp32.measures, atol=5e-3)


def test_precision_auto_is_fp32_on_the_cpu_without_a_check():
    scoring = _scoring(precision="auto")
    assert scoring.precision == "fp32" and scoring.precision_check is None
    with pytest.raises(ValueError, match="precision must be one of"):
        _scoring(precision="fp16")


# --- on a CUDA device (skipped without one) -------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scoring_matches_the_cpu_and_auto_precision_checks_bf16():
    z = ToyGenerator().sample_latents(2, seed=1).numpy()
    cpu, cuda = _scoring(), _scoring(device="cuda")
    assert _devices(cuda.generator) == {torch.device("cuda", 0)}
    np.testing.assert_allclose(cuda.jacobian(z, "batched"), cpu.jacobian(z, "batched"), rtol=1e-3, atol=1e-5)
    auto = _scoring(device="cuda", precision="auto")
    assert auto.precision_check is not None
    assert auto.precision == ("bf16" if bf16_within_tolerance(auto.precision_check) else "fp32")
    assert auto.jacobian_choice().device.startswith("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attribute_net_trains_on_cuda_and_is_stored_on_the_cpu(tmp_path, monkeypatch):
    from fake_utkface import fake_faces, use_fake_utkface
    from qdgs.faces import audit

    monkeypatch.setenv("QDGS_CACHE", str(tmp_path / "cache"))
    use_fake_utkface(monkeypatch, tmp_path, fake_faces(n=200, size=32))
    net, held = audit.train_attribute_net(steps=2, batch_size=8, size=32, progress_bar=False, device="cuda")
    assert _devices(net) == {torch.device("cuda", 0)} and len(held) == 4
    (weights,) = (tmp_path / "cache").rglob("attribute_net.pt")
    assert {t.device.type for t in torch.load(weights, weights_only=True).values()} == {"cpu"}
    assert len(audit.predict(net, torch.rand(3, 3, 32, 32))) == 3


def test_bf16_enters_the_search_key_but_auto_on_the_cpu_and_the_device_do_not():
    from qdgs.search import SearchConfig, search_key

    config = SearchConfig(iterations=3, archive_dims=(5, 5), measure_ranges=((-0.4, 0.1), (0.0, 0.4)))
    plain = search_key(_scoring(), config)
    assert search_key(_scoring(precision="auto", device="cpu"), config) == plain  # fp32 on the CPU, no device
    assert search_key(_scoring(precision="bf16"), config) != plain


def test_auto_judges_each_method_by_its_fastest_round():
    scoring = _scoring()
    now, jacobian, seen = [0.0], scoring.jacobian, {m: 0 for m in JACOBIAN_METHODS}

    def noisy(latents, method, precision=None):  # batched: 10 ms, but slowed to 100 ms in most rounds
        seen[method] += 1
        now[0] += (10 if seen[method] % 3 == 1 else 100) / 1000 if method == "batched" else 40 / 1000
        return jacobian(latents, method, precision)

    scoring.jacobian = noisy
    choice = fastest_jacobian_method(scoring, clock=lambda: now[0])
    assert choice.method == "batched" and choice.ms["batched"] == pytest.approx(10)
