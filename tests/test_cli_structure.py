"""The command-line package's shape: the static command table, the component-option table, light imports."""

import argparse
import inspect
import subprocess
import sys
import warnings

import pytest

from vaekit.cli import build_parser
from vaekit.cli.main import COMMANDS
from vaekit.cli.model_options import COMPONENT_OPTIONS, component_kwargs


def test_every_command_module_has_a_parser_and_a_runner_and_is_in_help_order():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(action.choices) == list(COMMANDS)
    for name, module in COMMANDS.items():
        assert module.NAME == name and callable(module.add_parser) and callable(module.run)


def _fit_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["fit", "--data", "x.csv", *argv])


@pytest.mark.parametrize("argv, likelihood, prior", [
    ((), {}, {}),
    (("--likelihood", "student-t"), {"nu_init": 10.0, "nu_min": 0.5}, {}),
    (("--likelihood", "map", "--variance-floor", "0.1", "--bounded-mean"),
     {"b": 1.0, "variance_floor": 0.1, "bounded_mean": True}, {}),
    (("--likelihood", "gaussian", "--map-b", "3", "--nu-init", "4"), {}, {}),
    (("--prior", "vamp", "--vamp-components", "7", "--ratio-epochs", "2"), {}, {"n_components": 7}),
    (("--prior", "implicit", "--ratio-epochs", "2", "--task-weights", "equal"), {},
     {"ratio_epochs": 2, "task_weights": "equal"}),
    (("--prior", "avb", "--ratio-epochs", "2", "--task-weights", "equal"), {}, {"ratio_epochs": 2}),
])
def test_component_options_reach_only_the_components_that_take_them(argv, likelihood, prior):
    args = _fit_args(*argv)
    assert component_kwargs(args, "likelihood") == likelihood
    assert component_kwargs(args, "prior") == prior


def test_a_component_option_set_for_another_component_is_warned_about():
    """Reviewer-found: `--likelihood gaussian --nu-init 3` trained a Gaussian VAE without a word. Mutation caught:
    the warning dropped, or raised for an option left at its default."""
    args = _fit_args("--likelihood", "gaussian", "--map-b", "3", "--nu-init", "4", "--prior", "vamp",
                     "--ratio-epochs", "2")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        component_kwargs(args, "likelihood")
        component_kwargs(args, "prior")
    assert sorted(str(w.message).split()[0] for w in record) == ["--map-b", "--nu-init", "--ratio-epochs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        component_kwargs(_fit_args("--likelihood", "gaussian"), "likelihood")  # defaults: nothing to say


def test_component_option_defaults_equal_the_defaults_of_their_classes():
    from vaekit.likelihoods import LIKELIHOODS

    checked = 0
    for option in COMPONENT_OPTIONS:
        if option.component != "likelihood" or option.default is None:
            continue
        for name in option.applies_to:
            parameter = inspect.signature(LIKELIHOODS[name]).parameters.get(option.kwarg)
            if parameter is None:  # passed on through **kwargs to the parent class
                parameter = inspect.signature(LIKELIHOODS[name].__mro__[1]).parameters[option.kwarg]
            assert parameter.default == option.default, (option.flag, name)
            checked += 1
    assert checked >= 4


def test_nothing_imports_the_cli_package():
    from pathlib import Path

    import vaekit

    root = Path(vaekit.__file__).parent
    offenders = [str(path.relative_to(root)) for path in root.rglob("*.py")
                 if "cli" not in path.relative_to(root).parts and path.name != "__main__.py"
                 and any(text in path.read_text() for text in ("from .cli", "from ..cli", "vaekit.cli"))]
    assert offenders == []


def test_the_data_registry_and_a_plain_data_set_load_without_torch():
    code = ("import sys, vaekit.data\n"
            "vaekit.data.load_dataset('cancer')\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "torch" not in result.stdout, result.stdout
