"""Config loading: inheritance, overrides and rejection of unknown keys and impossible values."""

import pytest

from analysis.errors import InputError
from analysis.inputs.config import CONFIG_DIR, MAX_SEED, PROJECT_ROOT, load_config, user_overrides


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
    assert load_config(sampling={"seed": MAX_SEED}).sampling.seed == MAX_SEED


def test_a_users_data_come_without_the_shipped_companion_files_and_condition():
    """The shipped appraisal, patients, search log and condition name describe the shipped reports only:
    with a user's evidence file they would be silently wrong."""
    assert load_config().names.condition == "Hailey-Hailey disease"
    assert user_overrides(None) == {}
    evidence = PROJECT_ROOT / "data" / "reports.csv"
    config = load_config(**user_overrides(evidence))
    assert config.data.path == str(evidence)
    data = config.data
    assert (data.patients_path, data.appraisal_path, data.search_path, data.excluded_path) == ("", "", "", "")
    assert (config.names.condition, config.names.natural_course) == ("", "")
    assert config.data.companion(config.data.appraisal_path) is None


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
        (f"[sampling]\nseed = {MAX_SEED + 1}\n", f"sampling.seed: Input should be less than or equal to {MAX_SEED}"),
        ("[names]\ncondtion = 'x'\n", "names.condtion: unknown key"),
        ("[bias]\nscenarios = [1.5]\n", "bias.scenarios.0: Input should be less than 1"),
        ("[design]\nbenchmark = 0.0\n", "design.benchmark: Input should be greater than 0"),
        ("[grade]\nstart = 'medium'\n", "grade.start: Input should be 'high', 'moderate', 'low' or 'very low'"),
        ("[grade.indirectness]\njudgement = 'mild'\nreason = 'x'\n", "grade.indirectness.judgement: Input should be"),
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
