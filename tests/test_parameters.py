"""The per-chapter parameter schemas (certlab.parameters) against the chapters' cells."""

import pytest

from certlab.chapters import existing_chapters
from certlab.parameters import (COLLECTIVE_ARCHITECTURES, SCHEMAS, ParameterError,
                                SlicedRuns, complete_stored_parameters,
                                validate_chapter_parameters, validate_parameters)
from certlab.run import chapter_defaults, _read

CHAPTERS = {c.stem: c for c in existing_chapters()}


def _cells(stem):
    nb = _read(CHAPTERS[stem].path)
    i = next(i for i, c in enumerate(nb.cells)
             if "parameters" in c.get("metadata", {}).get("tags", []))
    j = next(j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code")
    return nb.cells[i].source, nb.cells[j].source


def test_every_chapter_has_a_schema():
    assert set(CHAPTERS) == set(SCHEMAS)


@pytest.mark.parametrize("stem", sorted(SCHEMAS))
def test_schema_lists_the_parameters_cell_names_and_defaults_validate(stem):
    defaults = chapter_defaults(CHAPTERS[stem].path)
    assert list(defaults) == list(SCHEMAS[stem].params), "same names, same order"
    validate_parameters(stem, defaults, base_dir=CHAPTERS[stem].path.parent)


@pytest.mark.parametrize("stem", sorted(s for s in SCHEMAS if SCHEMAS[s].added_later))
def test_parameters_added_later_default_to_what_older_runs_used(stem):
    """A parameter added after runs were stored fills those runs in with the value they used;
    that must be a valid value and the chapter's default (so a sweep spec that does not name
    it plans the same points as before and resumes from the old records)."""
    schema, defaults = SCHEMAS[stem], _defaults(stem)
    for name, value in schema.added_later.items():
        assert name in schema.params
        assert schema.params[name].check(name, value) == value
        assert defaults[name] == value
    old = {k: v for k, v in defaults.items() if k not in schema.added_later}
    assert complete_stored_parameters(stem, old) == defaults
    assert complete_stored_parameters(stem, defaults) == defaults
    assert complete_stored_parameters("no_such_chapter", old) == old
    with pytest.raises(TypeError, match="mapping"):
        complete_stored_parameters(stem, [1])


@pytest.mark.parametrize("stem", sorted(s for s in SCHEMAS if SCHEMAS[s].slices))
def test_sliced_runs_name_parameters_and_an_importable_merge(stem):
    """A chapter whose runs split into slices names two of its integer parameters and a merge
    function that exists (the book's status page calls it when slices are stored)."""
    sliced = SCHEMAS[stem].slices
    defaults = _defaults(stem)
    assert {sliced.start, sliced.count} <= set(defaults)
    assert isinstance(defaults[sliced.start], int) and isinstance(defaults[sliced.count], int)
    assert callable(sliced.merge_function())
    with pytest.raises(ValueError, match="module:function"):
        SlicedRuns("a", "b", "no_colon").merge_function()


@pytest.mark.parametrize("stem", sorted(SCHEMAS))
def test_notebook_validation_cell_is_the_one_call(stem, monkeypatch):
    """Execute the parameters cell and the validation cell as the notebook would."""
    params_source, check_source = _cells(stem)
    code = [line for line in check_source.splitlines() if line.strip()]
    assert code == ["from certlab.parameters import validate_chapter_parameters",
                    f'validate_chapter_parameters("{stem}", globals())']
    monkeypatch.chdir(CHAPTERS[stem].path.parent)  # papermill's working directory
    namespace: dict = {}
    exec(params_source, namespace)
    exec(check_source, namespace)
    if stem != "90_benchmarks":
        import torch

        assert isinstance(namespace["device"], torch.device)
    # a bad value in the parameters cell makes the validation cell fail, naming it
    namespace = {}
    exec(params_source, namespace)
    namespace["seed"] = -1
    with pytest.raises(ParameterError, match="'seed' must be an integer >= 0, got -1"):
        exec(check_source, namespace)


def _defaults(stem):
    return chapter_defaults(CHAPTERS[stem].path)


@pytest.mark.parametrize("stem, changes, message", [
    ("00_introduction", {"n_samples": 0}, "'n_samples' must be an integer >= 1, got 0"),
    ("00_introduction", {"alpha": 1.0}, r"alpha must lie in \(0, 1\)"),
    ("00_introduction", {"true_p": "high"}, "'true_p' must be a probability"),
    ("11_smoothing_certificate", {"toy_dim": 13}, "'toy_dim' must be an integer >= 2 and <= 12"),
    ("11_smoothing_certificate", {"toy_dim": 4, "rd": 3}, "need rd <= toy_dim // 2"),
    ("11_smoothing_certificate", {"max_radius": 0}, "'max_radius' must be an integer >= 1"),
    ("12_smoothing_node_classification", {"n0": 200}, r"n0 \(200\) must not exceed n \(100\)"),
    ("12_smoothing_node_classification", {"models": []}, "'models' must be a list of at least 1"),
    ("12_smoothing_node_classification", {"models": ["gcn", 3]}, r"'models\[1\]' must be a"),
    ("12_smoothing_node_classification", {"lr": 0.0}, "'lr' must be a finite number > 0"),
    ("12_smoothing_node_classification", {"n": True}, "'n' must be an integer"),
    ("12_smoothing_node_classification", {"dataset": 3}, "'dataset' must be a non-empty string"),
    ("13_smoothing_beyond_nodes", {"gin_epochs": 0}, "'gin_epochs' must be an integer >= 1"),
    ("13_smoothing_beyond_nodes", {"mnist_dense_p": 1.5}, "mnist_dense_p must lie in"),
    ("21_ntk_gnn_kernels", {"n_csbm": 49}, "'n_csbm' must be an integer >= 50"),
    ("21_ntk_gnn_kernels", {"real_graph": "pubmed"}, "'real_graph' must be one of 'cora_ml'"),
    ("21_ntk_gnn_kernels", {"svm_C": 1.0}, "'svm_C' must be one of 'paper', 'cv'"),
    ("21_ntk_gnn_kernels", {"widths": [16]}, "'widths' must be a list of at least 2"),
    ("21_ntk_gnn_kernels", {"widths": [16, 0]}, r"'widths\[1\]' must be an integer >= 1"),
    ("22_label_flip_certificates", {"max_flips": 21}, "'max_flips' must be an integer >= 1 and"),
    ("22_label_flip_certificates", {"milp_budgets": [1, 30]}, r"'milp_budgets\[1\]'"),
    ("22_label_flip_certificates", {"citeseer_table": 1}, "'citeseer_table' must be True or"),
    ("22_label_flip_certificates", {"multiclass_max_flips": 29}, "multiclass_max_flips must lie"),
    ("22_label_flip_certificates", {"collective_architectures": ["GCN", "GAT"]},
     r"'collective_architectures\[1\]' must be one of 'GCN'"),
    ("22_label_flip_certificates", {"collective_max_fraction": 0.0}, "collective_max_fraction"),
    ("22_label_flip_certificates", {"beyond_paper_labels": 62}, "multiple of 4, got 62"),
    ("22_label_flip_certificates", {"beyond_paper_labels": 80}, "at most n_csbm / 3"),
    ("22_label_flip_certificates", {"beyond_check_flips": 4}, "'beyond_check_flips' must be"),
    ("22_label_flip_certificates", {"beyond_max_flips": 1}, "beyond_check_flips must be at"),
    ("22_label_flip_certificates", {"beyond_time_limit": 0}, "'beyond_time_limit' must be"),
    ("31_ensemble_certificates", {"n_train": 5}, "n_train must be 0 \\(all\\) or >= 10, got 5"),
    ("31_ensemble_certificates", {"n_train": 50}, "every entry of n_parts must lie in"),
    ("31_ensemble_certificates", {"ridge_sweep": [1.0, -1.0]}, r"'ridge_sweep\[1\]'"),
    ("31_ensemble_certificates", {"milp_train": 61}, "'milp_train' must be an integer >= 4"),
    ("41_bounds_and_bab", {"n_train": 99}, "'n_train' must be an integer >= 100"),
    ("41_bounds_and_bab", {"eps": 1.5}, "'eps' must be a finite number >= 0 and <= 1"),
    ("41_bounds_and_bab", {"timeout": float("nan")}, "'timeout' must be a finite number > 0"),
    ("41_bounds_and_bab", {"hidden": []}, "'hidden' must be a list of at least 1"),
    ("42_linearity_grafting", {"architecture": "convbig"}, "convbig architecture needs image"),
    ("42_linearity_grafting", {"image_size": 14.0}, "'image_size' must be one of 7, 14, 28"),
    ("42_linearity_grafting", {"n_verify": 501}, r"need verify_start \+ n_verify <= n_test"),
    ("42_linearity_grafting", {"verify_start": 490}, r"need verify_start \+ n_verify <= n_test"),
    ("42_linearity_grafting", {"verify_start": -1}, "verify_start"),
    ("42_linearity_grafting", {"n_test": 9950}, "must not exceed the 10000 MNIST test images"),
    ("42_linearity_grafting", {"fractions": [0.3]}, "fractions must contain 0.3, 0.5 and 0.8"),
    ("42_linearity_grafting", {"fractions": [0.5]}, "fractions must contain 0.3, 0.5 and 0.8"),
    ("42_linearity_grafting", {"eps": 1.0}, "'eps' must be a finite number > 0 and < 1"),
    ("90_benchmarks", {"results_dir": "no/such/folder"}, "'no/such/folder' is not a folder"),
    ("90_benchmarks", {"device": "gpu"}, "'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
])
def test_bad_values_are_refused_naming_the_parameter(stem, changes, message):
    values = {**_defaults(stem), **changes}
    with pytest.raises(ParameterError, match=message):
        validate_parameters(stem, values, base_dir=CHAPTERS[stem].path.parent)


def test_unknown_and_missing_names_and_unknown_chapter():
    values = _defaults("00_introduction")
    with pytest.raises(ParameterError, match="unknown parameter.*'n_sample'.*valid parameters"):
        validate_parameters("00_introduction", {**values, "n_sample": 3})
    del values["seed"]
    with pytest.raises(ParameterError, match="missing parameter.*'seed'"):
        validate_parameters("00_introduction", values)
    with pytest.raises(ParameterError, match="missing parameter.*'seed'"):
        validate_chapter_parameters("00_introduction", values)
    with pytest.raises(ParameterError, match="no parameter schema for chapter 'nope'"):
        validate_parameters("nope", {})


def test_normalization_and_device_resolution():
    values = {**_defaults("31_ensemble_certificates"), "n_parts": [5, 1, 5], "ridge_binary": 2}
    out = validate_parameters("31_ensemble_certificates", values)
    assert out["n_parts"] == [1, 5] and out["ridge_binary"] == 2.0
    assert isinstance(out["ridge_binary"], float) and out["device"] == "auto"
    namespace = {**values, "unrelated": object()}
    validate_chapter_parameters("31_ensemble_certificates", namespace)
    assert namespace["n_parts"] == [1, 5] and type(namespace["device"]).__name__ == "device"
    validate_chapter_parameters("31_ensemble_certificates", namespace)  # a re-run cell


def test_cuda_is_refused_where_there_is_none():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    values = {**_defaults("00_introduction"), "device": "cuda"}
    validate_parameters("00_introduction", values)  # the form is valid (a worker may have one)
    with pytest.raises(ParameterError, match="'device'.*no CUDA GPU"):
        validate_parameters("00_introduction", values, resolve_device=True)


def test_collective_architectures_match_the_library():
    from certlab.ntk import PAPER_ARCHITECTURES

    assert tuple(PAPER_ARCHITECTURES) == COLLECTIVE_ARCHITECTURES


def test_paper_scale_values_validate():
    for stem, chapter in CHAPTERS.items():
        values = {**_defaults(stem), **chapter.paper_scale}
        validate_parameters(stem, values, base_dir=chapter.path.parent)
