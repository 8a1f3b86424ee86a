"""Two build steps pyproject.toml cannot say.

analyzer._sse, the event-stream interpretation of a whole body (C, no dependencies), is
optional: where it cannot be built, analyzer.sse uses its Python decoder, which gives the same
results more slowly.

The notebooks ship in the package as analyzer/notebooks/*.ipynb (what `chatcap lab` copies
for a user), taken from the repository's notebooks/ (in an sdist too: MANIFEST.in) so there
is one copy of them in git. An editable install reads notebooks/ where it is.
Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildPyWithNotebooks(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not self._notebooks():
            raise FileNotFoundError(f"no notebooks in {NOTEBOOKS}: chatcap's package ships them")
        target = Path(self.build_lib, "analyzer", "notebooks")
        self.mkpath(str(target))
        for notebook in self._notebooks():
            self.copy_file(str(notebook), str(target / notebook.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return [*outputs, *(str(Path(self.build_lib, "analyzer", "notebooks", n.name)) for n in self._notebooks())]

    @staticmethod
    def _notebooks() -> list[Path]:
        return sorted(NOTEBOOKS.glob("*.ipynb"))


setup(
    ext_modules=[Extension("analyzer._sse", ["analyzer/_sse.c"], optional=True)],
    cmdclass={"build_py": BuildPyWithNotebooks},
)
