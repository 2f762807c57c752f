"""Build step that pyproject.toml cannot express: ship the top-level `sql/` folder.

`sql/` stays at the top of the repository where analysts read it; a wheel carries a
copy as `crm_model/_sql` (found by crm_model.paths.sql_dir()). Everything else about
the package is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSql(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads sql/ in place
        target = Path(self.build_lib) / "crm_model" / "_sql"
        shutil.copytree(Path(__file__).parent / "sql", target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))


setup(cmdclass={"build_py": BuildPyWithSql})
