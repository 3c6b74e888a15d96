# Type stub for the cffi loader that maturin generates here at build time
# (__init__.py, ffi.py and the compiled library are written into this
# folder of the wheel). The declarations are those of include/shopauth.h.
from typing import Any

ffi: Any
lib: Any
