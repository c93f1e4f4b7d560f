"""The C backend: BPTT over a grid of settings, printed from a core's stages and compiled.

>>> from numeric.engine.native import native_gradient  # doctest: +SKIP
"""

from .build import cache_folder, compiled, compiler, library_name
from .codegen import source
from .run import native_gradient

__all__ = ["cache_folder", "compiled", "compiler", "library_name", "native_gradient", "source"]
