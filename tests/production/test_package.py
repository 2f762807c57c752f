"""The wheel works on its own: built, installed into a fresh virtualenv outside the
checkout, it runs init, the demo and the model with the SQL, migrations and samples it
carries, and it ships no top-level import name beyond its three packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]



def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert done.returncode == 0, f"{cmd}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (path,) = out.glob("crmhub-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_carries_sql_migrations_and_samples_and_three_import_names(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"crmhub", "connectors", "crm_model"}
    for sql in (ROOT / "sql").rglob("*.sql"):
        assert f"crm_model/_sql/{sql.relative_to(ROOT / 'sql').as_posix()}" in names
    assert any(n.startswith("crm_model/migrations/versions/") for n in names)
    assert any(n.startswith("crmhub/demo/samples/") for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import crm_model.paths, crmhub; print(crm_model.paths.sql_dir()); print(crmhub.__file__)"],
                 cwd=work, env=env).stdout.split()
    assert all(str(venv) in line for line in where), where  # nothing read from the checkout
    demo = _run([str(venv / "bin" / "crmhub"), "demo", "--dir", str(work / "demo")], cwd=work, env=env)
    assert "persons" in demo.stdout and "FAILED" not in demo.stdout
    model = _run([str(venv / "bin" / "crmhub"), "model", "--config", str(work / "demo" / "crmhub.yml")],
                 cwd=work, env=env)
    assert model.stdout.startswith("model:")


def test_init_refuses_when_another_distribution_claims_connectors(tmp_path, monkeypatch, capsys):
    import yaml

    from crmhub.cli import main

    site = tmp_path / "site"
    info = site / "acme_connectors-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-connectors\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("connectors\n")
    monkeypatch.syspath_prepend(str(site))
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": f"sqlite:///{tmp_path}/w.db"}}))
    assert main(["init", "--config", str(config)]) == 1
    assert "acme-connectors also provide the top-level package 'connectors'" in capsys.readouterr().err
