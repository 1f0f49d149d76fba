from dataclasses import dataclass, field
from typing import Literal

import pytest

from skiptool.utils.config import load_config, parse_overrides, to_yaml
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write, check_writable


@dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class Cfg:
    name: str = "x"
    batch_size: int = 8
    kind: Literal["a", "b"] = "a"
    optim: Optim = field(default_factory=Optim)


def test_load_config_defaults_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("batch_size: 16\noptim:\n  lr: 2\n")
    cfg = load_config(Cfg, p, parse_overrides(["kind=b", "optim.betas=[0.5, 0.9]"]))
    assert cfg.batch_size == 16 and cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)
    assert cfg.kind == "b" and cfg.optim.betas == [0.5, 0.9]
    assert "batch_size: 16" in to_yaml(cfg)


@pytest.mark.parametrize("text, needle", [
    ("batch_sise: 3\n", "unknown key 'batch_sise'"),
    ("optim:\n  lrr: 3\n", "unknown key 'optim.lrr'"),
    ("batch_size: three\n", "key 'batch_size' must be of type int"),
    ("kind: c\n", "key 'kind' must be one of"),
    ("a: [1, 2\n", "malformed YAML at line"),
    ("- 1\n- 2\n", "must be a YAML mapping"),
])
def test_load_config_errors_name_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SkiptoolError) as e:
        load_config(Cfg, p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as f:
        f.write("whole")
    assert target.read_text() == "whole"
    with pytest.raises(SkiptoolError, match="--overwrite"):
        check_writable(target, overwrite=False)


def test_cli_version_and_unknown_model(cli, tmp_path):
    from tests.conftest import assert_user_error

    r = cli("--version")
    assert r.code == 0 and "skiptool" in r.out
    config = tmp_path / "bad.yaml"
    config.write_text("model: nope\n")
    assert_user_error(cli("train", "--config", str(config), "--exp-dir", str(tmp_path / "exp")),
                      "'nope'", "not a registered model")
