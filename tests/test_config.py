"""Config loading: inheritance, overrides and rejection of unknown keys and impossible values."""

import pytest

from analysis.config import CONFIG_DIR, load_config
from analysis.errors import InputError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path) -> list[str]:
    with pytest.raises(InputError) as err:
        load_config(path)
    return err.value.problems


def test_default_is_the_primary_analysis():
    config = load_config()
    assert config.name == "default"
    assert (config.data.outcome, config.data.drug, config.model.family) == ("any_response", "naltrexone", "beta_binomial")
    assert config.model.prior.kind == "weakly_informative"
    assert config.sampling.chains == 4
    assert (config.diagnostics.rhat_max, config.diagnostics.ess_bulk_min, config.diagnostics.ess_tail_min) == (1.01, 400, 400)


def test_logit_normal_variant_inherits_and_overrides():
    config = load_config(CONFIG_DIR / "logit_normal.toml")
    default = load_config()
    assert config.name == "logit_normal" and config.model.family == "logit_normal"
    assert (config.model.prior.mu_mean, config.model.prior.mu_sd, config.model.prior.tau_scale) == (0.0, 2.0, 1.0)
    assert config.model.prior.tau_dist == "half_normal"
    assert config.data == default.data
    # Its own sampler setting (the non-centred model's curved posterior), the rest inherited.
    assert config.sampling == default.sampling.model_copy(update={"target_accept": 0.99})


def test_child_overrides_single_keys_of_a_parent_table(tmp_path):
    write(tmp_path, "parent.toml", '[sampling]\ndraws = 500\nseed = 7\n[data]\noutcome = "marked"\n')
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\n[sampling]\nseed = 8\n')
    config = load_config(child)
    assert (config.sampling.draws, config.sampling.seed, config.data.outcome) == (500, 8, "marked")
    assert config.name == "child"


def test_command_line_overrides_win():
    assert load_config(sampling={"seed": 5}).sampling.seed == 5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[model]\nfamly = 'logit_normal'\n", "model.famly: unknown key"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[model.beta_binomial]\nu_scael = 1.0\n", "model.beta_binomial.u_scael: unknown key"),
        ("[model]\nfamily = 'probit'\n", "model.family: Input should be 'beta_binomial' or 'logit_normal'"),
        ("[data]\noutcome = 'cured'\n", "data.outcome: Input should be"),
        ("[model.logit_normal]\ntau_scale = -1.0\n", "model.logit_normal.tau_scale: Input should be greater than 0"),
        ("[sampling]\nchains = 'four'\n", "sampling.chains: Input should be a valid integer"),
        ("[diagnostics]\nrhat_max = 0.99\n", "diagnostics.rhat_max: Input should be greater than 1"),
    ],
)
def test_bad_keys_and_values_are_rejected_with_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, "bad.toml", text)
    [line] = errors_of(path)
    assert line.startswith(f"{path}: {expected}")


def test_missing_parent(tmp_path):
    path = write(tmp_path, "child.toml", 'extends = "gone.toml"\n')
    assert errors_of(path) == [f"{path}: extends {tmp_path / 'gone.toml'}: config file not found"]


def test_circular_extends(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    [line] = errors_of(tmp_path / "a.toml")
    assert "circular 'extends' (a.toml -> b.toml -> a.toml)" in line


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "broken.toml", "[model\nfamily = 1\n")
    [line] = errors_of(path)
    assert line.startswith(f"{path}: not valid TOML")


def test_shipped_configs_all_load():
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        assert load_config(path).name == path.stem
