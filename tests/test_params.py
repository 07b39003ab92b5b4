import pytest

from qdgs.params import Param, ParameterError, describe, resolve

SPEC = [
    Param("iterations", int, {"smoke": 10, "default": 1000, "paper": 70000}, low=1, help="search iterations"),
    Param("backend", str, "vae", choices=("vae", "random")),
    Param("ranges", list, [-0.5, 0.5], low=-1, high=1),
    Param("lr", float, 0.5, low=0),
]


def test_profile_defaults_and_overrides():
    cfg = resolve(SPEC, "smoke", iterations=None, lr=1)
    assert (cfg.profile, cfg.iterations, cfg.backend, cfg.lr) == ("smoke", 10, "vae", 1.0)
    assert resolve(SPEC, "paper").iterations == 70000


@pytest.mark.parametrize(
    "given, needle",
    [
        ({"iteration": 3}, "unknown parameter 'iteration'"),
        ({"iterations": "many"}, "'iterations' must be of type int"),
        ({"iterations": True}, "'iterations' must be of type int"),
        ({"iterations": 0}, "allowed range"),
        ({"backend": "gan"}, "allowed values: 'vae', 'random'"),
        ({"ranges": [-2, 0.5]}, "'ranges' got -2"),
    ],
)
def test_bad_parameters_name_the_parameter(given, needle):
    with pytest.raises(ParameterError, match=needle.replace("(", r"\(")):
        resolve(SPEC, "default", **given)


def test_unknown_profile_lists_profiles():
    with pytest.raises(ParameterError, match="smoke, default, paper"):
        resolve(SPEC, "fast")


def test_describe_shows_profile_values():
    assert "| `iterations` | `70000` | search iterations |" in describe(SPEC, "paper")
