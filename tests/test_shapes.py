"""Shapes renderer, captions, the scorer's prompt scores and the polygon-decoder VAE."""

import numpy as np
import pytest
import torch

from qdgs import shapes
from qdgs.generators.shapes_vae import ShapesVAE, load_vae, save_vae, train_vae, vae_config
from qdgs.scoring import prompt_values, remap_objective
from qdgs.shapes import scorer as scorer_module
from toys import ToyScorer


@pytest.mark.parametrize("bias", [0.98, 0.9, 0.8, 0.5])
def test_biased_labels_have_the_requested_bias(bias):
    shape, colour = shapes.biased_labels(1000, bias, seed=3)
    assert (shape == 0).sum() == 500 and (shape == 1).sum() == 500
    assert np.mean(colour[shape == 0] == 0) == pytest.approx(bias)  # triangles red
    assert np.mean(colour[shape == 1] == 1) == pytest.approx(bias)  # squares blue


def test_bias_out_of_range_is_refused():
    with pytest.raises(ValueError, match="bias"):
        shapes.biased_labels(10, 1.5, seed=0)


def test_balanced_labels_fill_the_four_groups_equally():
    shape, colour = shapes.balanced_labels(400, seed=1)
    assert np.bincount(2 * colour + shape).tolist() == [100, 100, 100, 100]


def test_render_draws_the_right_colour_and_size_on_white():
    s = shapes.render(np.array([0, 1]), np.array([0, 1]), seed=0, size=128)
    assert s.images.shape == (2, 3, 128, 128) and s.images.dtype == torch.uint8
    for i, rgb in enumerate((shapes.RED, shapes.BLUE)):
        full = s.masks[i] > 0.99
        assert s.images[i][:, full].float().mean(1).tolist() == pytest.approx(list(rgb), abs=1)
        assert (s.images[i][:, s.masks[i] == 0] == 255).all()
    # area of an equilateral triangle with a 64 px base is 1,774 px², of a 36 px square 1,296 px²,
    # times the area zoom in [0.5, 2]
    tri, sq = s.masks.sum(dim=(1, 2)).tolist()
    assert 0.5 * 1774 * 0.95 < tri < 2 * 1774 * 1.05
    assert 0.5 * 1296 * 0.95 < sq < 2 * 1296 * 1.05


def test_renders_are_a_function_of_the_seed_only():
    a = shapes.balanced_set(8, seed=5, size=32)
    torch.randn(100), np.random.rand(100)  # global noise must not matter
    b = shapes.balanced_set(8, seed=5, size=32)
    c = shapes.balanced_set(8, seed=6, size=32)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_positives_mark_the_paper_prompts_and_grade_overlays():
    vocab = shapes.vocabulary()
    pos = shapes.positives(np.array([0, 1, -1, 0.5]), np.array([0, 1, 0, 0.25]), vocab)
    i = vocab.index
    assert pos[0, i("A triangle with 3 edges.")] == 1 and pos[0, i("A red shape.")] == 1 and pos[0, i("A blue shape.")] == 0
    assert pos[1, i("A square or diamond with 4 edges.")] == 1 and pos[1, i("A regular square or a triangle.")] == 1
    assert pos[2, i("Splatters of colors.")] == 1 and pos[2].sum() == 2  # the two splatter captions only
    assert pos[3, i("A square.")] == 0.5 and pos[3, i("A blue shape.")] == 0.25
    assert pos[3, i("A blue square.")] == pytest.approx(0.125)


def test_caption_sampler_mixes_renders_generated_samples_and_splatters():
    def generated(n, seed):  # half-square overlays in a half-way colour
        return torch.full((n, 3, 32, 32), 0.5), np.full(n, 0.5), np.full(n, 0.5)

    sampler = shapes.ShapeCaptionSampler(32, splatter_fraction=0.25, generated=generated, generated_fraction=0.5)
    images, pos = sampler(np.random.default_rng(0), 8)
    i = sampler.vocabulary.index
    assert images.shape == (8, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    rendered, gen, splat = pos[:3], pos[3:6], pos[6:]
    assert set(rendered[:, i("A triangle.")].tolist()) <= {0.0, 1.0}
    assert (rendered[:, i("A triangle.")] + rendered[:, i("A square.")] == 1).all()
    assert (gen[:, i("A square.")] == 0.5).all() and (gen[:, i("A red shape.")] == 0.5).all()
    assert (splat[:, i("Splatters of colors.")] == 1).all() and (splat[:, i("A triangle.")] == 0).all()


def test_prompt_scores_are_prompt_values_with_the_objective_remapped():
    scorer, images = ToyScorer(seed=1), torch.rand(5, 3, 16, 16)
    values = prompt_values(scorer, images, (shapes.OBJECTIVE_PROMPTS, *shapes.MEASURE_PROMPTS))
    scores = shapes.prompt_scores(scorer, images)
    assert scores[:, 0] == pytest.approx(remap_objective(values[:, 0]))
    assert scores[:, 1:] == pytest.approx(values[:, 1:])


def test_vae_generator_interface_and_gradients(tmp_path):
    vae = ShapesVAE(internal_size=16, output_size=48, width=16)
    z = vae.sample_latents(3, seed=0).requires_grad_(True)
    images = vae(z)
    assert images.shape == (3, 3, 48, 48) and images.min() >= 0 and images.max() <= 1
    images.sum().backward()
    assert z.grad.abs().sum() > 0
    save_vae(vae, tmp_path / "vae.pt")
    again = load_vae(tmp_path / "vae.pt")
    assert torch.allclose(again(z.detach()), vae(z.detach()))


def test_vae_supersampling_box_filters_a_drawing_at_the_multiple_size(tmp_path):
    """Drawn at 2 × the size and box-filtered down, as the renderer anti-aliases its polygons."""
    plain = ShapesVAE(internal_size=16, output_size=32, width=16)
    fine = ShapesVAE(internal_size=16, output_size=32, width=16, supersample=2)
    fine.load_state_dict(plain.state_dict())
    z = plain.sample_latents(3, seed=1)
    with torch.no_grad():
        big, weight, colour = plain.decode_shapes(z, 64)
        masks, weight2, colour2 = fine.decode_shapes(z, 32)
    assert masks.shape == (3, 2, 32, 32)
    assert torch.allclose(masks, torch.nn.functional.avg_pool2d(big, 2), atol=1e-6)
    assert torch.equal(weight, weight2) and torch.equal(colour, colour2)
    save_vae(fine, tmp_path / "vae.pt")
    assert load_vae(tmp_path / "vae.pt").supersample == 2
    with pytest.raises(ValueError, match="supersample"):
        ShapesVAE(supersample=0)


def test_polygon_masks_are_the_product_of_edge_sigmoids_in_value_and_gradient():
    """The batched rasteriser against the definition, one edge at a time."""
    from qdgs.benchmark import per_edge_polygon_mask
    from qdgs.generators.shapes_vae import _polygon_mask

    g = torch.Generator().manual_seed(0)
    radius = (8 + 6 * torch.rand(4, generator=g)).requires_grad_()
    angle = (6 * torch.rand(4, generator=g)).requires_grad_()
    centre = (12 + 8 * torch.rand(4, 2, generator=g)).requires_grad_()
    weights = torch.rand(4, 32, 32, generator=g)  # a loss that is not rotation- or translation-invariant
    for order in (3, 4):
        mask = _polygon_mask(order, radius, angle, centre, 32, edge=1.0)
        expected = per_edge_polygon_mask(order, radius, angle, centre, 32, edge=1.0)
        assert torch.allclose(mask, expected, atol=1e-5)
        got = torch.autograd.grad((mask * weights).sum(), (radius, angle, centre))
        want = torch.autograd.grad((expected * weights).sum(), (radius, angle, centre))
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-3) for a, b in zip(got, want))


def test_vae_square_weight_draws_a_square():
    """With the square branch selected, the decoded mask has a square's area/extent ratio, not a disc's."""
    vae = ShapesVAE(internal_size=16, output_size=64)
    with torch.no_grad():
        vae.decoder[-1].weight.zero_()
        vae.decoder[-1].bias.copy_(torch.tensor([20.0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]))
        mask = vae.decode_parts(torch.zeros(1, 6), 64)[0][0, 0]
    ys, xs = np.nonzero(mask.numpy() > 0.5)
    fill = len(xs) / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1))
    assert fill > 0.9  # an axis-aligned square fills its box; a disc fills π/4 ≈ 0.785


def test_decoder_samples_report_what_the_decoder_drew():
    vae = ShapesVAE(internal_size=16, output_size=16, width=16)
    with torch.no_grad():  # square branch, pure blue
        vae.decoder[-1].weight.zero_()
        blue = torch.logit(torch.tensor(shapes.BLUE) / 255)
        vae.decoder[-1].bias.copy_(torch.cat([torch.tensor([20.0, 1, 0, 1, 0, 0, 0, 0]), blue]))
    images, weight, blue = vae.decoder_samples(4, seed=0, size=16)
    assert images.shape == (4, 3, 16, 16)
    assert weight == pytest.approx(1.0, abs=1e-6) and blue == pytest.approx(1.0, abs=1e-4)
    again, _, _ = vae.decoder_samples(4, seed=0, size=16)
    assert torch.equal(images, again)


def test_vae_loads_missing_file_with_advice(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_vae"):
        load_vae(tmp_path / "absent.pt")


def test_vae_training_lowers_the_loss():
    vae = ShapesVAE(internal_size=16, output_size=16, width=16)
    recipe = {**vae_config()["train"], "n_images": 64, "batch_size": 16}
    info = train_vae(vae, steps=30, seed=0, recipe=recipe, progress_bar=False)
    assert np.mean(info["losses"][-5:]) < np.mean(info["losses"][:5])


def test_vae_recipe_missing_a_field_is_named():
    with pytest.raises(ValueError, match="beta"):
        train_vae(ShapesVAE(internal_size=16, width=16), 1, 0, {"n_images": 4, "batch_size": 2, "lr": 1e-3,
                                                                "colour_weight": 1.0, "shape_weight": 1.0})


def test_scorer_training_recipe_is_in_its_cache_key(monkeypatch, tmp_path):
    monkeypatch.setenv("QDGS_CACHE", str(tmp_path))
    shipped = scorer_module.load_config(shapes.SCORER_CONFIG)
    recipe = {**shipped, "train": {**shipped["train"], "batch_size": 8}}
    monkeypatch.setattr(scorer_module, "load_config", lambda name: recipe)
    calls = []
    real = scorer_module.train_clip
    monkeypatch.setattr(scorer_module, "train_clip", lambda *a, **k: calls.append(k["lr"]) or real(*a, **k))
    vae = ShapesVAE(internal_size=16, output_size=32, width=16)
    for _ in range(2):
        shapes.cached_scorer(vae, steps=1, seed=0, size=32, progress_bar=False)
    recipe = {**recipe, "train": {**recipe["train"], "lr": 1e-4}}
    shapes.cached_scorer(vae, steps=1, seed=0, size=32, progress_bar=False)
    assert calls == [shipped["train"]["lr"], 1e-4]  # built once, rebuilt for the new recipe only


def test_the_decoder_keeps_every_shape_inside_the_canvas():
    """Shapes cut by the border are what no render shows; the decoder's centre range rules them out."""
    torch.manual_seed(0)
    vae = ShapesVAE(internal_size=16, width=16, output_size=32)
    for p in vae.decoder.parameters():  # large weights drive every decoder output to its extreme
        p.data.mul_(20)
    masks, weight, _ = vae.decode_shapes(40 * torch.randn(256, 6), 32)
    mask = vae.blend(masks, weight)[:, 0]
    border = torch.cat([mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1]], dim=1)
    assert border.max() < 0.25
    assert mask.amax(dim=(1, 2)).min() > 0.5  # the shapes are still drawn


@pytest.mark.slow
def test_random_samples_inherit_the_training_bias():
    """A VAE trained (default recipe) at colour bias b draws random samples with a colour-shape association.

    The association is P(red | triangle) − P(red | square) of what the decoder draws (the renders
    at b have 2b − 1). The prior must not undo it, or random sampling would already be balanced: the
    balanced VAE's samples stay within 0.15 of 0, and the biased one keeps at least a third of its
    renders' 0.9, as much as the paper's own VAE keeps by the facts file's counts (0.32).
    """
    from qdgs.generators.shapes_vae import cached_vae

    for bias, low, high in ((0.5, -0.15, 0.15), (0.95, 0.3, 0.95)):
        vae, _ = cached_vae(6000, seed=0, output_size=32, bias=bias, progress_bar=False)
        with torch.no_grad():
            _, weight, rgb = vae.decode_shapes(vae.sample_latents(4000, seed=1), 32)
        colour, square = shapes.nearest_colour(rgb.numpy()), weight.numpy() >= 0.5
        named = colour >= 0
        red_given = [np.mean(colour[named & (square == s)] == 0) for s in (False, True)]
        assert low <= red_given[0] - red_given[1] <= high, (bias, red_given)


def test_drawable_groups_reads_what_the_decoder_draws():
    """A decoder fixed to a clean blue square draws blue squares right and every other group wrong."""
    vae = ShapesVAE(internal_size=16, output_size=16, width=16)
    with torch.no_grad():
        vae.decoder[-1].weight.zero_()
        blue = torch.logit(torch.tensor(shapes.BLUE) / 255)
        vae.decoder[-1].bias.copy_(torch.cat([torch.tensor([20.0, 1, 0, 1, 0, 0, 0, 0]), blue]))
    table = shapes.drawable_groups(vae, 40, seed=0, size=16)
    assert list(table.index) == list(shapes.GROUP_NAMES)
    assert table["clean"].tolist() == [1.0] * 4 and table["square weight"].min() > 0.99
    assert table["drawn right"].to_dict() == {"red triangle": 0.0, "red square": 0.0, "blue triangle": 0.0,
                                              "blue square": 1.0}
    with torch.no_grad():  # an overlay: weight 0.5, so no group is drawn clean
        vae.decoder[-1].bias[0] = 0.0
    assert shapes.drawable_groups(vae, 40, seed=0, size=16)["clean"].max() == 0.0
    with pytest.raises(TypeError, match="does not say what it draws"):
        shapes.drawable_groups(torch.nn.Identity(), 4, seed=0, size=16)


def test_a_synthetic_set_with_no_labelled_latent_is_empty_through_a_bounded_view():
    from qdgs.generators.reference_vae import ReferenceShapesVAE
    from qdgs.scoring import BoundedLatent

    gen = BoundedLatent(ReferenceShapesVAE(), 3.0)  # the search's view: no output_size of its own
    images, labels, keep = shapes.synthetic_set(gen, np.zeros((3, 6)), np.full(3, -0.005), zero=0.0, gap=0.01)
    assert images.shape == (0, 3, 128, 128) and len(labels) == 0 and not keep.any()


def test_group_coverage_counts_filled_cells_per_colour_shape_quarter():
    from ribs.archives import GridArchive

    archive = GridArchive(solution_dim=2, dims=[4, 4], ranges=[(-1, 1), (-1, 1)])
    assert shapes.group_coverage(archive, 0.0).tolist() == [0.0] * 4
    # red triangle (colour < 0, shape < 0), blue square, blue triangle: one cell of each 4-cell quarter
    archive.add(np.zeros((3, 2)), np.ones(3), np.array([[-0.9, -0.9], [0.9, 0.9], [0.1, -0.5]]))
    assert shapes.group_coverage(archive, 0.0).to_dict() == {"red triangle": 0.25, "red square": 0.0,
                                                             "blue triangle": 0.25, "blue square": 0.25}
    # the shape boundary is the label rule's zero: at 0.6 only the top row of cells is square (2 blue cells, 1 filled)
    assert shapes.group_coverage(archive, 0.6)["blue square"] == 0.5
